"""Shared fixtures: every test starts from a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Tests never read the operator's HALLMONITOR_* settings."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("HALLMONITOR_")}
    for key in saved:
        del os.environ[key]
    yield
    for key in [key for key in os.environ if key.startswith("HALLMONITOR_")]:
        del os.environ[key]
    os.environ.update(saved)
