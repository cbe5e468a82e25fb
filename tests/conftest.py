"""Shared fixtures: every test starts from a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.packaging import Built, build_package


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


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The release build, made once per session (minutes: it compiles the Cython modules) and
    shared by tests/test_packaging.py and the deploy/install tests of tests/test_deploy.py."""
    return build_package(tmp_path_factory.mktemp("dist"))
