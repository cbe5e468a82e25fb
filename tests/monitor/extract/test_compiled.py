"""Which readers an extractor gets: the compiled twins when built, or what a caller asks for."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from monitor.extract import compiled, quic, reassembly, tls
from monitor.extract.extractor import Extractor
from monitor.values import StageCounters
from tests.compiled import compiled_or_skip


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
def twin_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without a C compiler: importing the twin fails."""
    monkeypatch.setitem(sys.modules, "monitor.extract._quic", None)
    assert importlib.util.find_spec("monitor.extract.quic") is not None


@pytest.mark.usefixtures("twin_not_built")
def test_without_the_twin_the_python_tracker_is_used() -> None:
    assert type(compiled.quic_tracker()) is quic.QuicInitialTracker


@pytest.mark.usefixtures("twin_not_built")
def test_asking_for_a_twin_that_was_not_built_says_so() -> None:
    with pytest.raises(ImportError, match=r"monitor\.extract\._quic was not built"):
        compiled.quic_tracker(True)
