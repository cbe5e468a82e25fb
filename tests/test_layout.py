"""Every module has a test file at the mirrored path, and every test file a module; every class
name is defined in one module only.

Compiled modules (Cython ``.pyx``, and the ``.pxd`` of a Python module compiled as it is)
count too; a module's leading underscore is not mirrored
(``monitor/compiled/scanloop.pyx`` is tested in ``tests/monitor/compiled/test_scanloop.py``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hallmonitor", "monitor", "api")
NOT_MODULES = {"__init__.py", "__main__.py"}
TEST_FILES_WITHOUT_MODULE = {
    "tests/monitor/test_scan_golden.py",  # golden tests of `hallmonitor scan` over real captures
    "tests/monitor/test_trust.py",  # two capture daemons of a trust sharing one PostgreSQL database
    "tests/monitor/test_damaged_captures.py",  # damaged captures through scan and scan --record
    "tests/monitor/test_lifecycle.py",  # an incident's life through the live daemon and the app
    "tests/api/test_routes_roles.py",  # every route x role, across the page and API modules
    "tests/api/test_browser.py",  # the review app in a real browser
    "tests/api/test_app_scheduler.py",  # api/app.py's lifespan running the report scheduler
    "tests/api/test_openapi.py",  # the OpenAPI schema and schemathesis against it
    "tests/api/routes/test_common.py",  # checks shared by every API route module
    "tests/api/routes/test_roles.py",  # every API route x role
    "tests/api/test_evidence_explained.py",  # packets -> store -> pages, API, CSV, weekly email
    "tests/api/test_read_model.py",  # dashboard, weekly email and governors' report agree
}


def source_modules() -> set[Path]:
    return {
        path.relative_to(ROOT)
        for package in PACKAGES
        for pattern in ("*.py", "*.pyx", "*.pxd")
        for path in (ROOT / package).rglob(pattern)
        if path.name not in NOT_MODULES
    }


def mirrored_test(module: Path) -> Path:
    return Path("tests") / module.parent / f"test_{module.stem.lstrip('_')}.py"


def test_every_module_has_a_test_file() -> None:
    missing = sorted(
        str(mirrored_test(module))
        for module in source_modules()
        if not (ROOT / mirrored_test(module)).exists()
    )
    assert missing == []


def test_every_test_file_mirrors_a_module() -> None:
    expected = {str(mirrored_test(module)) for module in source_modules()}
    test_files = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / "tests" / package).rglob("test_*.py")
    }
    assert sorted(test_files - expected - TEST_FILES_WITHOUT_MODULE) == []


def test_test_directories_are_packages() -> None:
    for directory in (ROOT / "tests").rglob("*"):
        if directory.is_dir() and any(directory.glob("test_*.py")):
            assert (directory / "__init__.py").exists(), directory


def test_no_class_name_is_defined_in_two_modules() -> None:
    """Two classes of one name are two meanings of one word (the .pyi stubs of the compiled
    modules, not read here, repeat their twins' names on purpose)."""
    defined: defaultdict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    defined[node.name].add(str(path.relative_to(ROOT)))
    assert {name: sorted(paths) for name, paths in defined.items() if len(paths) > 1} == {}
