"""The compiled modules (Cython ``.pyx``) keep the import contracts of pyproject.toml too.

import-linter reads only ``.py`` files, so a ``.pyx`` could import what its package may not
(``monitor/compiled/tls.pyx`` importing ``monitor.runner``, say) and ``lint-imports`` would
pass. Here the ``.pyx`` files' imports (``import``, ``from ... import`` and ``cimport``, at any
indentation) are added to the graph import-linter builds, and every contract of pyproject.toml
is checked on it, by import-linter itself: the rules stay in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from importlinter.adapters.building import GraphBuilder
from importlinter.application import use_cases
from importlinter.application.app_config import settings
from importlinter.configuration import configure

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hallmonitor", "api", "monitor")
CYTHON_BUILTIN = {"cython", "cpython", "libc", "libcpp", "posix"}
"""What ``cimport`` reads from Cython's own declarations: C, not Python modules."""

_STATEMENT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<source>\.*[\w.]*)[ \t]+c?import[ \t]+(?P<names>\(?[^#\n]*)"
    r"|c?import[ \t]+(?P<modules>[^#\n]+))",
    re.MULTILINE,
)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def pyx_imports(module: str, text: str) -> Iterator[tuple[str, int, str]]:
    """(imported module, line number, line) for each import statement of a ``.pyx`` file."""
    package = module.rpartition(".")[0]
    for match in _STATEMENT.finditer(text):
        line_number = text.count("\n", 0, match.start()) + 1
        line = match.group(0).strip()
        source = match.group("source")
        if source is None:
            names = [part.split()[0] for part in match.group("modules").split(",") if part.strip()]
        elif source.startswith("."):
            dots = len(source) - len(source.lstrip("."))
            base = package.rsplit(".", dots - 1)[0] if dots > 1 else package
            names = [f"{base}.{source.lstrip('.')}".rstrip(".")]
        else:
            names = [source]
        for name in names:
            if name.partition(".")[0] not in CYTHON_BUILTIN:
                yield name, line_number, line


def compiled_modules() -> dict[str, str]:
    return {
        module_name(path): path.read_text()
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.pyx"))
    }


class WithCompiledModules(GraphBuilder):
    """import-linter's graph, plus the compiled modules and what they import."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources

    def build(self, *args: Any, **kwargs: Any) -> Any:
        graph = super().build(*args, **kwargs)
        for module, text in self.sources.items():
            graph.add_module(module)
            for imported, line_number, line in pyx_imports(module, text):
                if imported.partition(".")[0] not in PACKAGES:
                    imported = imported.partition(".")[0]  # external: import-linter squashes
                    graph.add_module(imported, is_squashed=True)
                graph.add_import(
                    importer=module,
                    imported=imported,
                    line_number=line_number,
                    line_contents=line,
                )
        return graph


def broken_contracts(sources: dict[str, str]) -> list[str]:
    """The names of the pyproject.toml contracts broken once ``sources`` (module -> Cython
    text) are in the graph."""
    configure()
    saved = settings.copy()
    settings.configure(GRAPH_BUILDER=WithCompiledModules(sources))
    try:
        options = use_cases.read_user_options(str(ROOT / "pyproject.toml"))
        use_cases._register_contract_types(options)
        report = use_cases.create_report(options, cache_dir=None)
    finally:
        settings.configure(**saved._config)
    assert not report.invalid_contract_options
    return [
        contract.name for contract, check in report.get_contracts_and_checks() if not check.kept
    ]


def test_every_compiled_module_keeps_every_contract() -> None:
    sources = compiled_modules()
    assert "monitor.compiled.scanloop" in sources and "monitor.compiled.tls" in sources
    assert broken_contracts(sources) == []


def test_the_imports_of_a_pyx_file_are_read_wherever_they_are() -> None:
    text = (
        "from libc.stdint cimport uint8_t\n"
        "from monitor.values import (\n    Frame,\n)\n"
        "cdef int f():\n"
        "    import monitor.decode as decode, socket\n"
        "    from .tls import MAX_RECORD_LEN\n"
        "    from ..hostnames cimport fold\n"
    )
    assert [(name, line) for name, line, _ in pyx_imports("monitor.extract._x", text)] == [
        ("monitor.values", 2),
        ("monitor.decode", 6),
        ("socket", 6),
        ("monitor.extract.tls", 7),
        ("monitor.hostnames", 8),
    ]


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "monitor.extract._late",
            "from monitor.classify import Classifier\n",
            "monitor's stages import only the stages below them",
        ),
        ("monitor.extract._late", "import socket\n", "pure stages do no IO"),
        (
            "monitor._late",
            "    from api.app import create_app\n",
            "hallmonitor (the entry points) sits above api, api above monitor",
        ),
    ],
)
def test_a_pyx_import_that_breaks_a_contract_is_caught(
    module: str, line: str, contract: str
) -> None:
    assert broken_contracts({**compiled_modules(), module: line}) == [contract]
