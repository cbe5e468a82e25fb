"""Specification of monitor.sources.pcaprecords: classic pcap records."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.sources.layouts import CHUNK_BYTES
from monitor.sources.pcap import read_capture
from tests.monitor.sources.capturefiles import (
    TS,
    assert_same_frames,
    pcap_bytes,
    scapy_frames,
)


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nano", [False, True], ids=["microseconds", "nanoseconds"])
def test_pcap_timestamps_in_either_byte_order_and_precision(
    tmp_path: Path, order: str, nano: bool
) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pcap_bytes(order, nano, [b"\x01" * 60, b"\x02" * 70], linktype=113))
    frames = list(read_capture(path))
    assert [(f.linktype, f.data) for f in frames] == [(113, b"\x01" * 60), (113, b"\x02" * 70)]
    exact = TS[0] + (TS[1] if nano else TS[1] // 1000 * 1000) / 1e9
    assert frames[0].ts == pytest.approx(exact, abs=1e-6)
    assert frames[1].ts == pytest.approx(exact + 1, abs=1e-6)
    assert_same_frames(frames, scapy_frames(path))


def test_pcap_linktype_field_ignores_the_fcs_bits(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    path.write_bytes(pcap_bytes("<", False, [b"x" * 20], linktype=(0x1 << 28) | (1 << 26) | 1))
    assert [f.linktype for f in read_capture(path)] == [1]


def test_pcap_frames_across_chunk_boundaries_and_larger_than_a_chunk(tmp_path: Path) -> None:
    sizes = [1, 1500, 9000, CHUNK_BYTES + 5000, 60, *range(40, 3000, 7)] * 3
    frames = [bytes([index % 256]) * size for index, size in enumerate(sizes)]
    path = tmp_path / "big.pcap"
    # A record longer than 262,144 bytes needs a file whose snaplen allows it (as in libpcap).
    path.write_bytes(pcap_bytes("<", False, frames, snaplen=2 * CHUNK_BYTES))
    reader = read_capture(path)
    assert [f.data for f in reader] == frames
    assert reader.bytes_read == path.stat().st_size
