"""Which readers an extractor gets: the compiled twins when built, or what a caller asks for;
and which code runs is never silent (the start of capture, up and scan, and doctor)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

import monitor.compiled
from hallmonitor.cli.root import main
from hallmonitor.doctor.services import judge_compiled
from monitor.extract import compiled, quic, reassembly, tls
from monitor.extract.compiled import (
    COMPILED_MODULES,
    NOT_BUILT,
    ORIGINALS,
    PURE_PYTHON,
    Twin,
    load_twin,
    twin_report,
)
from monitor.extract.extractor import Extractor
from monitor.values import StageCounters
from tests.compiled import compiled_or_skip

ROOT = Path(__file__).resolve().parents[3]
PCAP = ROOT / "tests" / "data" / "pcaps" / "ndpi-instagram.pcap"


def test_python_tracker_when_asked() -> None:
    assert type(compiled.quic_tracker(False)) is quic.QuicInitialTracker


def test_compiled_tracker_when_built() -> None:
    twin = compiled_or_skip("monitor.compiled.quic")
    assert type(compiled.quic_tracker()) is twin.QuicInitialTracker
    assert type(compiled.quic_tracker(True)) is twin.QuicInitialTracker


def test_extractor_takes_the_choice() -> None:
    extractor = Extractor(StageCounters(), compiled=False)
    assert type(extractor.quic) is quic.QuicInitialTracker
    assert type(extractor.streams) is reassembly.StreamReassembler
    assert extractor.hello_readers is tls


def test_the_reassembler_and_the_hello_readers_are_chosen_alike() -> None:
    assert type(compiled.stream_reassembler(False)) is reassembly.StreamReassembler
    assert compiled.hello_readers(False) is tls
    reassembler_twin = compiled_or_skip("monitor.compiled.reassembly")
    assert type(compiled.stream_reassembler()) is reassembler_twin.StreamReassembler
    assert compiled.hello_readers() is compiled_or_skip("monitor.compiled.tls")


@pytest.fixture
def fresh_twins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each twin is imported once per process: forget what was found, before and after (the
    monkeypatched import system is restored after this, so later tests import the real ones)."""
    load_twin.cache_clear()
    yield
    load_twin.cache_clear()


@pytest.fixture
def twin_not_built(monkeypatch: pytest.MonkeyPatch, fresh_twins: None) -> None:
    """As on a machine without a C compiler: the import system finds no twin."""
    monkeypatch.setitem(sys.modules, "monitor.compiled.quic", None)
    assert importlib.util.find_spec("monitor.extract.quic") is not None


BROKEN_QUIC = "from monitor.extract.quic import _renamed_since_the_build\n"
"""A twin built against yesterday's Python module: a name it imports was renamed since."""


@pytest.fixture
def twin_broken(monkeypatch: pytest.MonkeyPatch, fresh_twins: None, tmp_path: Path) -> None:
    """A ``monitor.compiled.quic`` that is there but fails to import: found first on the
    package's path, as a stale build beside the source would be."""
    (tmp_path / "quic.py").write_text(BROKEN_QUIC)
    monkeypatch.setattr(monitor.compiled, "__path__", [str(tmp_path), *monitor.compiled.__path__])
    monkeypatch.delitem(sys.modules, "monitor.compiled.quic", raising=False)
    importlib.invalidate_caches()


@pytest.mark.usefixtures("twin_not_built")
def test_without_the_twin_the_python_tracker_is_used() -> None:
    assert type(compiled.quic_tracker()) is quic.QuicInitialTracker


@pytest.mark.usefixtures("twin_not_built")
def test_asking_for_a_twin_that_was_not_built_says_so() -> None:
    with pytest.raises(ImportError, match=r"monitor\.compiled\.quic was not built"):
        compiled.quic_tracker(True)


@pytest.mark.usefixtures("twin_not_built")
def test_a_twin_that_was_not_built_is_said_at_info() -> None:
    twin = load_twin("monitor.compiled.quic")
    assert (twin.module, twin.problem) == (None, NOT_BUILT)
    [(level, text)] = twin_report([twin])
    assert level == logging.INFO
    assert text.startswith("running the Python code of monitor.extract.quic (not compiled here")


@pytest.mark.usefixtures("twin_broken")
def test_a_twin_that_is_there_but_fails_to_import_is_a_warning_with_the_import_error() -> None:
    twin = load_twin("monitor.compiled.quic")
    assert twin.module is None
    assert twin.problem is not None and "_renamed_since_the_build" in twin.problem
    [(level, text)] = twin_report([twin])
    assert level == logging.WARNING
    assert text.startswith("monitor.compiled.quic is there but cannot be loaded, so the Python ")
    assert "ImportError: cannot import name '_renamed_since_the_build'" in text
    assert type(compiled.quic_tracker()) is quic.QuicInitialTracker  # it still works
    with pytest.raises(ImportError, match="cannot be loaded: ImportError: cannot import name"):
        compiled.quic_tracker(True)


def test_nothing_is_said_when_every_twin_loaded() -> None:
    loaded = [Twin(name, sys) for name in COMPILED_MODULES]
    assert twin_report(loaded) == []


def test_a_twin_built_before_its_source_changed_is_a_warning(tmp_path: Path) -> None:
    built = tmp_path / "tls.cpython-311-x86_64-linux-gnu.so"
    built.write_bytes(b"")
    (tmp_path / "tls.pyx").write_text("")
    os.utime(built, (1_000_000_000, 1_000_000_000))
    module = ModuleType("monitor.compiled.tls")
    module.__file__ = str(built)
    assert compiled._older_than_source(module)
    [(level, text)] = twin_report([Twin("monitor.compiled.tls", module, stale=True)])
    assert level == logging.WARNING
    assert "built before its source changed" in text
    module.__file__ = str(tmp_path / "elsewhere" / built.name)  # an install without sources
    assert not compiled._older_than_source(module)


def test_a_module_compiled_from_python_is_stale_when_its_pxd_or_its_python_source_changed(
    tmp_path: Path,
) -> None:
    built = tmp_path / "reassembly.cpython-311-x86_64-linux-gnu.so"
    built.write_bytes(b"")
    declarations = tmp_path / "reassembly.pxd"
    declarations.write_text("")
    module = ModuleType("monitor.compiled.reassembly")
    module.__file__ = str(built)
    python = Path(reassembly.__file__)
    assert compiled.sources(module.__name__, built) == [declarations, python]
    os.utime(declarations, (python.stat().st_mtime - 5,) * 2)
    os.utime(built, (python.stat().st_mtime - 1,) * 2)
    assert compiled._older_than_source(module)  # the Python module changed after the build
    os.utime(built, (python.stat().st_mtime + 10,) * 2)
    assert not compiled._older_than_source(module)
    os.utime(declarations, (python.stat().st_mtime + 20,) * 2)
    assert compiled._older_than_source(module)  # the declarations did


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose capture cannot start (no such interface): start-up only."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[capture]\ninterfaces = ["hm-absent0"]\n[database]\ndata_dir = "{tmp_path / "d"}"\n'
    )
    return path


@pytest.mark.usefixtures("twin_broken")
@pytest.mark.parametrize(
    "command", [["scan", str(PCAP)], ["capture"], ["up", "--port", "0"]], ids=lambda c: c[0]
)
def test_capture_up_and_scan_say_at_start_that_a_twin_cannot_be_loaded(
    command: list[str], config: Path
) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), *command])
    [line] = [line for line in result.stderr.splitlines() if "monitor.compiled.quic" in line]
    assert " WARNING monitor.extract.compiled: monitor.compiled.quic is there but " in line
    assert "cannot import name '_renamed_since_the_build'" in line


@pytest.mark.usefixtures("twin_not_built")
@pytest.mark.parametrize(
    "command", [["scan", str(PCAP)], ["capture"], ["up", "--port", "0"]], ids=lambda c: c[0]
)
def test_capture_up_and_scan_say_at_start_which_python_code_runs(
    command: list[str], config: Path
) -> None:
    result = CliRunner().invoke(main, ["--log-level", "INFO", "--config", str(config), *command])
    [line] = [line for line in result.stderr.splitlines() if "running the Python code" in line]
    assert (
        " INFO monitor.extract.compiled: running the Python code of monitor.extract.quic (" in line
    )


def test_doctor_notes_which_modules_are_compiled_and_passes() -> None:
    found = [
        Twin("monitor.compiled.scanloop", sys),
        Twin("monitor.compiled.quic", None, NOT_BUILT),
        Twin("monitor.compiled.reassembly", sys),
        Twin("monitor.compiled.tls", sys),
    ]
    result = judge_compiled(found)
    assert result.ok
    assert result.detail.startswith(
        "compiled: monitor.compiled.scanloop, monitor.compiled.reassembly, monitor.compiled.tls; "
        "running as Python: monitor.extract.quic (not compiled here"
    )


@pytest.mark.usefixtures("twin_broken")
def test_doctor_passes_with_the_import_error_of_a_twin_that_cannot_be_loaded(
    config: Path,
) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "doctor", "--check", "compiled"])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("OK   compiled     compiled: ")
    assert "running as Python: monitor.extract.quic" in first
    assert "monitor.compiled.quic cannot be loaded (ImportError: cannot import name" in first


# -- every compiled function names its Python original, and every original its twin ----------


def public_names(module: ModuleType) -> set[str]:
    """The functions and classes a compiled module defines (not those it imports)."""
    return {
        f"{module.__name__}.{name}"
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    }


def resolve(qualified: str) -> object:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(COMPILED_MODULES))
def test_every_public_function_of_a_compiled_module_names_its_python_original(name: str) -> None:
    module = compiled_or_skip(name)
    registered = {twin for twin in ORIGINALS if twin.rpartition(".")[0] == name}
    assert public_names(module) == registered


@pytest.mark.parametrize("twin", sorted(ORIGINALS))
def test_every_original_is_python_code_with_its_twin_in_a_compiled_module(twin: str) -> None:
    original = resolve(ORIGINALS[twin])
    assert inspect.isfunction(original) or inspect.isclass(original), ORIGINALS[twin]
    source = inspect.getsourcefile(original)
    assert source is not None and source.endswith(".py"), source
    module = compiled_or_skip(twin.rpartition(".")[0])
    assert callable(getattr(module, twin.rpartition(".")[2], None)), twin


def test_a_compiled_module_imports_no_private_name_of_the_python_modules() -> None:
    """A ``.pyx`` that imports a private name breaks when the name is renamed (the Python code
    then runs instead, said only in the start-up log): the compiled code uses public names."""
    for name in set(COMPILED_MODULES) - set(PURE_PYTHON):
        source = (ROOT / (name.replace(".", "/") + ".pyx")).read_text()
        for group, line in re.findall(
            r"^from monitor\S* import (?:\(([^)]*)\)|(.*))$", source, re.M
        ):
            imported = [part.split(" as ")[0].strip() for part in (group or line).split(",")]
            assert not [each for each in imported if each.startswith("_")], (name, imported)


def test_a_module_compiled_as_it_is_has_no_twin_source() -> None:
    """Cython's pure-Python mode: the compiled module is built from its original's own source,
    typed by a .pxd, with no .pyx to keep in step."""
    for name, original in PURE_PYTHON.items():
        assert COMPILED_MODULES[name] == original
        stem = ROOT / name.replace(".", "/")
        assert stem.with_suffix(".pxd").is_file()
        assert not stem.with_suffix(".pyx").exists()
