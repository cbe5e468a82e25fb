"""The compiled twins of Python code (Cython modules that setup.py builds), for their tests.

A twin is tested by running the Python module's tests on it too. On a machine without a C
compiler the twins are not built and those runs are skipped, except under CI (``CI=true``),
where a missing twin fails: CI installs the compiler.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from monitor.extract.compiled import sources

ROOT = Path(__file__).resolve().parents[1]


def compiled_or_skip(name: str) -> ModuleType:
    """The compiled module ``name`` (``monitor.compiled.quic``); skips (or fails under CI) the
    calling test when it was not built."""
    if importlib.util.find_spec(name) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} was not built: run scripts/setup", pytrace=False)
        pytest.skip(f"{name} was not built (no C compiler when installing)")
    return importlib.import_module(name)


def assert_built_from_current_source(name: str) -> None:
    """A stale build would test (and run) yesterday's code: scripts/setup rebuilds a compiled
    module whenever one of its sources changes."""
    module = compiled_or_skip(name)
    assert module.__file__ is not None and module.__file__.endswith(".so"), module.__file__
    built = Path(module.__file__)
    for source in sources(name, built):
        assert built.stat().st_mtime >= source.stat().st_mtime, (
            f"{source.relative_to(ROOT)} changed since it was built: run scripts/setup"
        )
