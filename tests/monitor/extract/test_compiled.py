"""Which readers an extractor gets: the compiled twins when built, or what a caller asks for;
and which code runs is never silent (the start of capture, up and scan, and doctor)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

import monitor.extract
from hallmonitor.cli import main
from hallmonitor.doctor import judge_compiled
from monitor.extract import compiled, quic, reassembly, tls
from monitor.extract.compiled import COMPILED_MODULES, NOT_BUILT, Twin, load_twin, twin_report
from monitor.extract.extractor import Extractor
from monitor.values import StageCounters
from tests.compiled import compiled_or_skip

ROOT = Path(__file__).resolve().parents[3]
PCAP = ROOT / "tests" / "data" / "pcaps" / "ndpi-instagram.pcap"


def test_python_tracker_when_asked() -> None:
    assert type(compiled.quic_tracker(False)) is quic.QuicInitialTracker


def test_compiled_tracker_when_built() -> None:
    twin = compiled_or_skip("monitor.extract._quic")
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
    reassembler_twin = compiled_or_skip("monitor.extract._reassembly")
    assert type(compiled.stream_reassembler()) is reassembler_twin.StreamReassembler
    assert compiled.hello_readers() is compiled_or_skip("monitor.extract._tls")


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
    monkeypatch.setitem(sys.modules, "monitor.extract._quic", None)
    assert importlib.util.find_spec("monitor.extract.quic") is not None


BROKEN_QUIC = "from monitor.extract.quic import _renamed_since_the_build\n"
"""A twin built against yesterday's Python module: a name it imports was renamed since."""


@pytest.fixture
def twin_broken(monkeypatch: pytest.MonkeyPatch, fresh_twins: None, tmp_path: Path) -> None:
    """A ``monitor.extract._quic`` that is there but fails to import: found first on the
    package's path, as a stale build beside the source would be."""
    (tmp_path / "_quic.py").write_text(BROKEN_QUIC)
    monkeypatch.setattr(monitor.extract, "__path__", [str(tmp_path), *monitor.extract.__path__])
    monkeypatch.delitem(sys.modules, "monitor.extract._quic", raising=False)
    importlib.invalidate_caches()


@pytest.mark.usefixtures("twin_not_built")
def test_without_the_twin_the_python_tracker_is_used() -> None:
    assert type(compiled.quic_tracker()) is quic.QuicInitialTracker


@pytest.mark.usefixtures("twin_not_built")
def test_asking_for_a_twin_that_was_not_built_says_so() -> None:
    with pytest.raises(ImportError, match=r"monitor\.extract\._quic was not built"):
        compiled.quic_tracker(True)


@pytest.mark.usefixtures("twin_not_built")
def test_a_twin_that_was_not_built_is_said_at_info() -> None:
    twin = load_twin("monitor.extract._quic")
    assert (twin.module, twin.problem) == (None, NOT_BUILT)
    [(level, text)] = twin_report([twin])
    assert level == logging.INFO
    assert text.startswith("running the Python code of monitor.extract.quic (not compiled here")


@pytest.mark.usefixtures("twin_broken")
def test_a_twin_that_is_there_but_fails_to_import_is_a_warning_with_the_import_error() -> None:
    twin = load_twin("monitor.extract._quic")
    assert twin.module is None
    assert twin.problem is not None and "_renamed_since_the_build" in twin.problem
    [(level, text)] = twin_report([twin])
    assert level == logging.WARNING
    assert text.startswith("monitor.extract._quic is there but cannot be loaded, so the Python ")
    assert "ImportError: cannot import name '_renamed_since_the_build'" in text
    assert type(compiled.quic_tracker()) is quic.QuicInitialTracker  # it still works
    with pytest.raises(ImportError, match="cannot be loaded: ImportError: cannot import name"):
        compiled.quic_tracker(True)


def test_nothing_is_said_when_every_twin_loaded() -> None:
    loaded = [Twin(name, sys) for name in COMPILED_MODULES]
    assert twin_report(loaded) == []


def test_a_twin_built_before_its_source_changed_is_a_warning(tmp_path: Path) -> None:
    built = tmp_path / "_tls.cpython-311-x86_64-linux-gnu.so"
    built.write_bytes(b"")
    (tmp_path / "_tls.pyx").write_text("")
    os.utime(built, (1_000_000_000, 1_000_000_000))
    module = ModuleType("monitor.extract._tls")
    module.__file__ = str(built)
    assert compiled._older_than_source(module)
    [(level, text)] = twin_report([Twin("monitor.extract._tls", module, stale=True)])
    assert level == logging.WARNING
    assert "built before its source changed" in text
    module.__file__ = str(tmp_path / "elsewhere" / built.name)  # an install without sources
    assert not compiled._older_than_source(module)


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
    [line] = [line for line in result.stderr.splitlines() if "monitor.extract._quic" in line]
    assert " WARNING monitor.extract.compiled: monitor.extract._quic is there but " in line
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
        Twin("monitor._scanloop", sys),
        Twin("monitor.extract._quic", None, NOT_BUILT),
        Twin("monitor.extract._reassembly", sys),
        Twin("monitor.extract._tls", sys),
    ]
    result = judge_compiled(found)
    assert result.ok
    assert result.detail.startswith(
        "compiled: monitor._scanloop, monitor.extract._reassembly, monitor.extract._tls; "
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
    assert "monitor.extract._quic cannot be loaded (ImportError: cannot import name" in first
