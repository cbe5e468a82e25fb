"""Specification of monitor.sources.pcapng: sections, interfaces and packet blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.sources.pcap import read_capture
from tests.monitor.sources.capturefiles import (
    NS,
    US,
    assert_same_frames,
    epb,
    idb,
    option,
    scapy_frames,
    shb,
    spb,
    two_section_pcapng,
)


def test_pcapng_interfaces_sections_and_block_kinds(tmp_path: Path) -> None:
    content, frames = two_section_pcapng()
    path = tmp_path / "two.pcapng"
    path.write_bytes(content)
    reader = read_capture(path)
    got = list(reader)
    assert [(f.linktype, f.data) for f in got] == [(f.linktype, f.data) for f in frames]
    assert [f.ts for f in got] == pytest.approx([f.ts for f in frames], abs=1e-6)
    assert got[1].ts == 1_700_000_000.1234567  # division of exact integers, rounded once
    assert (reader.skipped, reader.truncated, reader.damage) == (2, False, [])
    assert reader.bytes_read == len(content)


def test_pcapng_simple_packet_block_is_cut_to_the_snaplen(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    path.write_bytes(shb("<") + idb("<", 1, snaplen=10) + spb("<", bytes(range(30))))
    assert [f.data for f in read_capture(path)] == [bytes(range(10))]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_nanosecond_interface_agrees_with_scapy(tmp_path: Path, order: str) -> None:
    path = tmp_path / "ns.pcapng"
    path.write_bytes(
        shb(order)
        + idb(order, 1, option(order, 9, b"\x09"))
        + idb(order, 101)
        + epb(order, 0, NS, b"a" * 50)
        + epb(order, 1, US, b"b" * 51)
    )
    frames = list(read_capture(path))
    assert [f.linktype for f in frames] == [1, 101]
    assert frames[0].ts == pytest.approx(NS / 1e9, abs=1e-6)
    assert frames[1].ts == pytest.approx(US / 1e6, abs=1e-6)
    assert_same_frames(frames, scapy_frames(path))
