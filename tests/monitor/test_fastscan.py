"""The compiled scan loop (monitor.fastscan driving monitor.compiled.scanloop) prints and counts
exactly what the general path, its Python original, does.

Each test scans one capture twice, through ``write_observations`` (reader, decoder, extractor,
``render_jsonl``) and through ``scan_capture``, and compares the text written, every pipeline
counter, the per-proto counts and how the reader says the file ended. Every test runs in one
process and in three sharing the file (``monitor.scanshare``). Without the compiled loop the
tests are skipped (and fail under CI): ``scan`` then takes the general path itself.
"""

from __future__ import annotations

import gc
import os
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.decode.decoder import Decoder
from monitor.extract import extractor
from monitor.extract.dns import DNS_PORTS
from monitor.fastscan import SCANLOOP, _Windows, can_fast_scan, scan_capture
from monitor.pipeline import Pipeline
from monitor.scan import render_jsonl, write_observations
from monitor.sources.damage import Damage
from monitor.sources.pcap import read_capture
from monitor.values import Frame, Packet, StageCounters
from tests.bench.make_mix import write_mix
from tests.compiled import compiled_or_skip
from tests.data.damaged import (
    packet_block_indexes,
    pcap_records,
    with_block_length,
    with_pcap_length,
    without_block,
    without_pcap_record,
)
from tests.data.pcapng import as_pcapng
from tests.data.traffic import client_hello_bytes, tls_flow

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


@dataclass
class Loop:
    """How the fused scans of the running test run."""

    jobs: int = 1


_loop = Loop()


@pytest.fixture(autouse=True, params=["one process", "3 processes"])
def record_loop(request: pytest.FixtureRequest) -> None:
    """Run the test with the compiled loop in one process, and in three processes sharing the
    file (monitor.scanshare)."""
    compiled_or_skip(SCANLOOP)
    _loop.jobs = 3 if request.param == "3 processes" else 1


CLASSIC_PCAPS = sorted(PCAPS.glob("*.pcap"))
PCAPNGS = sorted(PCAPS.glob("*.pcapng"))


@dataclass(frozen=True)
class ScanResult:
    text: str
    counters: StageCounters
    by_proto: Counter[str]
    frames_read: int
    bytes_read: int
    truncated: bool
    damage: list[Damage]


def scan(
    path: Path, *, fast: bool, strict: bool = True, dns_ports: Iterable[int] = DNS_PORTS
) -> ScanResult:
    # The general path reads with the Python extractor; the compiled loop with its compiled
    # readers too (monitor.extract.compiled), so that every comparison here holds them to it.
    pipeline = Pipeline(strict=strict, dns_ports=dns_ports, compiled=fast)
    written: list[str] = []
    by_proto: Counter[str] = Counter()
    reader = read_capture(path)
    if fast:
        assert can_fast_scan(reader, pipeline)
        scan_capture(reader, pipeline, written.append, by_proto, jobs=_loop.jobs)
    else:
        write_observations(reader, pipeline, written.append, render_jsonl, by_proto)
    return ScanResult(
        "".join(written),
        pipeline.counters,
        by_proto,
        reader.frames_read,
        reader.bytes_read,
        reader.truncated,
        reader.damage,
    )


def assert_same_scan(
    path: Path, *, strict: bool = True, dns_ports: Iterable[int] = DNS_PORTS
) -> ScanResult:
    general = scan(path, fast=False, strict=strict, dns_ports=dns_ports)
    fused = scan(path, fast=True, strict=strict, dns_ports=dns_ports)
    assert fused.text.splitlines() == general.text.splitlines()
    assert fused == general
    if _loop.jobs > 1:
        assert no_child_processes(), "a process of the shared scan was left behind"
    return fused


def no_child_processes() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def write_frames(
    path: Path, frames: Iterable[bytes], *, linktype: int = 1, tail: bytes = b""
) -> Path:
    """A classic little-endian microsecond pcap of raw frames, one per millisecond."""
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for index, frame in enumerate(frames):
        records.append(struct.pack("<IIII", 1_700_000_000, index * 1000, len(frame), len(frame)))
        records.append(frame)
    path.write_bytes(b"".join(records) + tail)
    return path


# --- every golden capture -------------------------------------------------------------------


@pytest.mark.parametrize("path", CLASSIC_PCAPS, ids=lambda path: path.stem)
def test_fused_scan_equals_general_scan_on_golden_capture(path: Path) -> None:
    assert_same_scan(path)


def test_fused_scan_equals_general_scan_with_an_extra_dns_port() -> None:
    for path in CLASSIC_PCAPS[:40]:
        assert_same_scan(path, dns_ports=DNS_PORTS | {8053, 443, 80})


@pytest.mark.parametrize("path", PCAPNGS, ids=lambda path: path.stem)
def test_fused_scan_equals_general_scan_on_golden_pcapng_capture(path: Path) -> None:
    assert_same_scan(path)


def test_fused_scan_follows_the_extractors_tls_server_record_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The loop decides by the extractor's constants, handed over as data: a flow whose first
    bytes are an alert record is given up on by both paths, and, with the alert taken out of
    ``TLS_SERVER_RECORD_STARTS``, searched for a ClientHello by both (the alert's body
    holds one), so both find its name."""
    alert = b"\x15\x03\x03\x00\x02\x02\x28"
    frames = [
        ethernet(ipv4(6, tcp(50000, 443, b"", flags=0x02, seq=99))),
        ethernet(
            ipv4(6, tcp(50000, 443, alert + client_hello_bytes("after-alert.example"), seq=100))
        ),
    ]
    path = write_frames(tmp_path / "alert.pcap", frames)
    assert "after-alert.example" not in assert_same_scan(path).text
    monkeypatch.setattr(extractor, "TLS_SERVER_RECORD_STARTS", (b"\x14\x03", b"\x17\x03"))
    assert "after-alert.example" in assert_same_scan(path).text


def test_fused_scan_is_not_offered_with_a_substitute_decoder() -> None:
    class Recording(Decoder):
        def decode(self, frame: Frame) -> Packet | None:
            return super().decode(frame)

    pipeline = Pipeline(decoder=Recording())
    assert not can_fast_scan(read_capture(CLASSIC_PCAPS[0]), pipeline)


# --- generated mixes ------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["dense", "bulk"])
def test_fused_scan_equals_general_scan_on_generated_mix(profile: str, tmp_path: Path) -> None:
    path = tmp_path / f"{profile}.pcap"
    manifest = write_mix(path, profile, 4000, seed=3)
    result = assert_same_scan(path)
    assert result.counters.frames == manifest["packets"]
    assert result.by_proto["dns"] > 0
    as_pcapng_result = assert_same_scan(as_pcapng(path, tmp_path / f"{profile}.pcapng"))
    assert as_pcapng_result.by_proto == result.by_proto


@pytest.mark.parametrize("cut", [1, 7, 16, 17, 60, 500])
def test_fused_scan_equals_general_scan_on_a_file_cut_mid_record(cut: int, tmp_path: Path) -> None:
    whole = tmp_path / "whole.pcap"
    write_mix(whole, "dense", 300, seed=5)
    data = whole.read_bytes()
    cut_file = tmp_path / "cut.pcap"
    cut_file.write_bytes(data[: len(data) - cut])
    result = assert_same_scan(cut_file)
    assert result.truncated


def test_fused_scan_equals_general_scan_on_an_impossible_record_length(tmp_path: Path) -> None:
    path = write_frames(
        tmp_path / "damaged.pcap",
        [bytes(60)],
        tail=struct.pack("<IIII", 1_700_000_001, 0, 1 << 30, 1 << 30) + bytes(100),
    )
    result = assert_same_scan(path)
    assert [(place.reason, place.resumed_at) for place in result.damage] == [
        ("the record header claims 1073741824 captured bytes (at most 262144)", None)
    ]


def damaged_copy(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("index", [0, 1, 400, 845, 846])
def test_fused_scan_equals_general_scan_past_an_impossible_length_in_a_real_capture(
    index: int, tmp_path: Path
) -> None:
    """Every loop resumes at the same record after the damage, and prints what the file
    without the damaged record prints."""
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    damaged = assert_same_scan(damaged_copy(tmp_path, "d.pcap", with_pcap_length(data, index)))
    without = scan(damaged_copy(tmp_path, "w.pcap", without_pcap_record(data, index)), fast=True)
    assert damaged.text == without.text
    offset, caplen = pcap_records(data)[index]
    assert [(d.offset, d.resumed_at) for d in damaged.damage] == [
        (offset, None if index == 846 else offset + 16 + caplen)
    ]


def test_fused_scan_equals_general_scan_when_nothing_plausible_follows_the_damage(
    tmp_path: Path,
) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, _ = pcap_records(data)[400]
    damaged = assert_same_scan(damaged_copy(tmp_path, "d.pcap", data[:offset] + b"\xff" * 20_000))
    before = scan(damaged_copy(tmp_path, "before.pcap", data[:offset]), fast=True)
    assert damaged.text == before.text
    assert (damaged.bytes_read, damaged.damage[0].resumed_at) == (offset, None)


def test_fused_scan_equals_general_scan_on_damage_in_a_later_window(tmp_path: Path) -> None:
    """Damage past the first mapped window, and records found past it in the next one."""
    whole = tmp_path / "bulk.pcap"
    write_mix(whole, "bulk", 2500, seed=4)
    data = whole.read_bytes()
    records = pcap_records(data)
    index = next(i for i, (offset, _) in enumerate(records) if offset > (1 << 20) - 600)
    damaged = assert_same_scan(damaged_copy(tmp_path, "d.pcap", with_pcap_length(data, index)))
    without = scan(damaged_copy(tmp_path, "w.pcap", without_pcap_record(data, index)), fast=True)
    assert damaged.text == without.text
    assert len(damaged.damage) == 1


def test_fused_scan_equals_general_scan_on_a_real_capture_cut_in_its_last_record(
    tmp_path: Path,
) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, _ = pcap_records(data)[-1]
    result = assert_same_scan(damaged_copy(tmp_path, "cut.pcap", data[: offset + 30]))
    assert result.truncated and [d.cut for d in result.damage] == [True]


def test_fused_scan_equals_general_scan_past_a_damaged_pcapng_block(tmp_path: Path) -> None:
    data = (PCAPS / "ndpi-viber.pcapng").read_bytes()
    index = packet_block_indexes(data)[50]
    damaged = assert_same_scan(
        damaged_copy(tmp_path, "d.pcapng", with_block_length(data, index, 0x7FFF0001))
    )
    without = scan(damaged_copy(tmp_path, "w.pcapng", without_block(data, index)), fast=True)
    assert damaged.text == without.text
    assert [d.resumed_at is not None for d in damaged.damage] == [True]
    cut = assert_same_scan(damaged_copy(tmp_path, "cut.pcapng", data[: len(data) - 30]))
    assert cut.truncated and [d.cut for d in cut.damage] == [True]


@pytest.mark.parametrize("kept", [1, 10, 16, 17, 59])
def test_fused_scan_equals_general_scan_on_a_file_cut_in_its_first_record(
    kept: int, tmp_path: Path
) -> None:
    path = write_frames(tmp_path / "whole.pcap", [bytes(60)])
    path.write_bytes(path.read_bytes()[: 24 + kept])
    assert assert_same_scan(path).truncated


def test_fused_scan_equals_general_scan_on_a_header_only_file(tmp_path: Path) -> None:
    path = write_frames(tmp_path / "empty.pcap", [])
    assert assert_same_scan(path).counters.frames == 0


def test_fused_scan_equals_general_scan_on_frames_cut_at_every_length(tmp_path: Path) -> None:
    """Every prefix of real frames: the fast path must hand the short ones to the general one."""
    whole = tmp_path / "whole.pcap"
    write_mix(whole, "dense", 120, seed=11)
    frames = [frame.data for frame in read_capture(whole)]
    cut = [frame[:length] for frame in frames[:60] for length in range(0, len(frame), 3)]
    assert_same_scan(write_frames(tmp_path / "cut.pcap", cut))


def test_fused_scan_equals_general_scan_for_other_link_types(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pcap"
    write_mix(whole, "dense", 100, seed=2)
    raw_ip = [frame.data[14:] for frame in read_capture(whole)]
    assert_same_scan(write_frames(tmp_path / "raw.pcap", raw_ip, linktype=101))
    result = assert_same_scan(write_frames(tmp_path / "wifi.pcap", raw_ip, linktype=105))
    assert result.counters.unsupported_linktypes == {105: 100}
    raw = as_pcapng(write_frames(tmp_path / "raw.pcap", raw_ip, linktype=101), tmp_path / "r")
    assert_same_scan(raw)


# --- mapped and read windows ---------------------------------------------------------------


def walk_windows(fh: BinaryIO) -> tuple[list[bytes], bool]:
    """The records ``_Windows`` hands out, walked as ``scan_capture`` walks them, and whether
    the walk ended before the end of the data (a record cut by the end of the file)."""
    windows = _Windows(fh)
    records: list[bytes] = []
    pos = size = 0
    try:
        while (window := windows.next(pos)) is not None:
            buf, _, pos, size, last = window
            while pos <= last:
                (caplen,) = struct.unpack_from("<I", buf, pos + 8)
                end = pos + 16 + caplen
                if end > size:
                    break
                records.append(bytes(buf[pos + 16 : end]))
                pos = end
    finally:
        windows.close()
    return records, pos < size


def walk_file(path: Path) -> tuple[list[bytes], bool]:
    with path.open("rb", buffering=0) as fh:
        fh.read(24)  # the file header, as ``open_pcap_records`` leaves the file
        return walk_windows(fh)


def walk_pipe(data: bytes) -> tuple[list[bytes], bool]:
    """The same records sent through a pipe, which cannot be memory-mapped."""
    read_end, write_end = os.pipe()

    def send() -> None:
        with open(write_end, "wb") as sink:
            sink.write(data[24:])

    writer = threading.Thread(target=send)
    writer.start()
    try:
        with open(read_end, "rb", buffering=0) as fh:
            return walk_windows(fh)
    finally:
        writer.join()


@pytest.mark.parametrize("cut", [0, 5, 700])
def test_a_capture_that_cannot_be_mapped_is_walked_in_read_chunks_to_the_same_records(
    cut: int, tmp_path: Path
) -> None:
    path = tmp_path / "bulk.pcap"
    write_mix(path, "bulk", 2500, seed=4)  # several read chunks and mapped windows
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    mapped = walk_file(path)
    assert mapped == walk_pipe(path.read_bytes())
    records, ended_early = mapped
    expected = [frame.data for frame in read_capture(path)]
    assert records == expected
    assert ended_early == (cut > 0)


def test_a_mapped_capture_that_shrinks_during_the_walk_ends_as_cut(tmp_path: Path) -> None:
    """Reading mapped pages a truncation removed would kill the process: stop instead."""
    path = tmp_path / "bulk.pcap"
    write_mix(path, "bulk", 2500, seed=4)
    with path.open("rb", buffering=0) as fh:
        fh.read(24)
        windows = _Windows(fh)
        try:
            window = windows.next(0)
            assert window is not None
            _, _, _, size, last = window
            with path.open("r+b") as shrink:
                shrink.truncate(size // 2)
            assert windows.next(last + 1) is None
        finally:
            windows.close()


# --- crafted frames at the edges of the fast path -------------------------------------------

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("0200000000fe")


def ethernet(payload: bytes, ethertype: int = 0x0800, *, vlan: int | None = None) -> bytes:
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan)
    return MAC_B + MAC_A + tag + struct.pack("!H", ethertype) + payload


def ipv4(
    protocol: int,
    payload: bytes,
    *,
    src: bytes = bytes([10, 0, 0, 5]),
    dst: bytes = bytes([10, 0, 0, 1]),
    fragment: int = 0,
    options: bytes = b"",
    total: int | None = None,
) -> bytes:
    ihl = 5 + len(options) // 4
    length = total if total is not None else 4 * ihl + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, fragment, 64, protocol, 0, src, dst
    )
    return header + options + payload


def ipv6(next_header: int, payload: bytes, *, length: int | None = None) -> bytes:
    src = bytes.fromhex("fd000000000000000000000000000015")
    dst = bytes.fromhex("fd000000000000000000000000000001")
    size = len(payload) if length is None else length
    return struct.pack("!IHBB16s16s", 0x60000000, size, next_header, 64, src, dst) + payload


def udp(sport: int, dport: int, payload: bytes, *, length: int | None = None) -> bytes:
    return (
        struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length, 0)
        + payload
    )


def tcp(
    sport: int, dport: int, payload: bytes, *, flags: int = 0x18, seq: int = 1, offset: int = 5
) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, flags, 65535, 0, 0)
    return header + bytes(max(0, 4 * offset - 20)) + payload


def dns_message(
    *names: bytes, response: bool = False, answers: bytes = b"", ancount: int = 0
) -> bytes:
    flags = 0x8180 if response else 0x0100
    header = struct.pack("!HHHHHH", 0x1234, flags, len(names), ancount, 0, 0)
    return header + b"".join(name + b"\x00\x00\x01\x00\x01" for name in names) + answers


def wire(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"


WEIRD_NAME = b'\x03a.b\x04\\x\x01\x7f\x05\xff\x00"\xe9q' + b"\x00"
CNAME_ANSWER = (
    b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c"
    + struct.pack("!H", len(wire("edge.example.net")))
    + wire("edge.example.net")
    + b"\xc0\x2a\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22"
)

CRAFTED = {
    "dns query": ethernet(ipv4(17, udp(40000, 53, dns_message(wire("www.example.com"))))),
    "dns query tagged": ethernet(ipv4(17, udp(40000, 53, dns_message(wire("a.example")))), vlan=20),
    "dns priority tag": ethernet(ipv4(17, udp(40000, 53, dns_message(wire("a.example")))), vlan=0),
    "dns two questions": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("a.b"), wire("dns.google"))))
    ),
    "dns weird name": ethernet(ipv4(17, udp(40000, 53, dns_message(WEIRD_NAME)))),
    "dns response cname": ethernet(
        ipv4(
            17,
            udp(
                53,
                40000,
                dns_message(
                    wire("www.example.com"), response=True, answers=CNAME_ANSWER, ancount=2
                ),
            ),
        ),
    ),
    "dns response no answers": ethernet(
        ipv4(17, udp(53, 40000, dns_message(wire("x.y"), response=True)))
    ),
    "dns no questions": ethernet(ipv4(17, udp(40000, 53, dns_message()))),
    "dns malformed": ethernet(ipv4(17, udp(40000, 53, b"\x12\x34\x01\x00\x00\x05"))),
    "dns empty payload": ethernet(ipv4(17, udp(40000, 53, b""))),
    "mdns": ethernet(ipv4(17, udp(5353, 5353, dns_message(wire("printer.local"))))),
    "llmnr from client port": ethernet(ipv4(17, udp(5355, 53, dns_message(wire("host"))))),
    "dns over ipv6": ethernet(ipv6(17, udp(40000, 53, dns_message(wire("v6.example")))), 0x86DD),
    "dns over ipv6 tagged": ethernet(
        ipv6(17, udp(40000, 53, dns_message(wire("v6.example")))), 0x86DD, vlan=7
    ),
    "ipv6 response": ethernet(
        ipv6(17, udp(53, 40000, dns_message(wire("v6.example"), response=True))), 0x86DD
    ),
    "ipv6 zero length": ethernet(ipv6(17, udp(40000, 53, b"\x00" * 20), length=0), 0x86DD),
    "ipv6 length past frame": ethernet(ipv6(17, udp(40000, 53, b"\x00" * 20), length=900), 0x86DD),
    "ipv6 hop by hop": ethernet(
        ipv6(0, bytes([17, 0]) + bytes(6) + udp(40000, 53, dns_message(wire("h.example")))), 0x86DD
    ),
    "ipv4 options": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("o.example"))), options=bytes(4))
    ),
    "ipv4 first fragment": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("f.example"))), fragment=0x2000)
    ),
    "ipv4 dont fragment": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("df.example"))), fragment=0x4000)
    ),
    "ipv4 length past frame": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("l.example"))), total=600)
    ),
    "ipv4 length short": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("s.example"))), total=10)
    ),
    "udp length short": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("u.example")), length=4))
    ),
    "udp length long": ethernet(
        ipv4(17, udp(40000, 53, dns_message(wire("u.example")), length=400))
    ),
    "udp trailing ethernet padding": ethernet(ipv4(17, udp(40000, 53, b"")) + bytes(18)),
    "vxlan port": ethernet(ipv4(17, udp(40000, 4789, bytes(30)))),
    "dhcp": ethernet(ipv4(17, udp(68, 67, bytes(240)))),
    "rtp-like": ethernet(ipv4(17, udp(30000, 30002, b"\x80" + bytes(40)))),
    "quic-like": ethernet(ipv4(17, udp(50000, 443, b"\xc3\x00\x00\x00\x01" + bytes(40)))),
    "short quic-like": ethernet(ipv4(17, udp(50000, 443, b"\xc3\x00"))),
    "tcp ack": ethernet(ipv4(6, tcp(50000, 443, b"", flags=0x10))),
    "tcp syn": ethernet(ipv4(6, tcp(50000, 443, b"", flags=0x02, seq=99))),
    "tcp data": ethernet(ipv4(6, tcp(50000, 443, b"\x16\x03\x01\x00\x05hello", seq=100))),
    "tcp fin": ethernet(ipv4(6, tcp(50000, 443, b"", flags=0x11, seq=110))),
    "tcp server data": ethernet(ipv4(6, tcp(443, 50000, b"\x17\x03\x03\x00\x10" + bytes(16)))),
    "tcp server data again": ethernet(
        ipv4(6, tcp(443, 50000, b"\x17\x03\x03\x00\x10" + bytes(16), seq=22))
    ),
    "tcp bad offset": ethernet(ipv4(6, tcp(50000, 443, b"abc", offset=3))),
    "tcp offset past packet": ethernet(ipv4(6, tcp(50000, 443, b"abc", offset=15))),
    "tcp options": ethernet(ipv4(6, tcp(50000, 443, b"data", offset=8))),
    "tcp dns": ethernet(
        ipv4(6, tcp(40000, 53, struct.pack("!H", 29) + dns_message(wire("t.example")), seq=5))
    ),
    "tcp over ipv6": ethernet(ipv6(6, tcp(50000, 443, b"\x16\x03\x01")), 0x86DD),
    "tcp over ipv6 ack": ethernet(ipv6(6, tcp(50000, 443, b"", flags=0x10)), 0x86DD),
    "icmp": ethernet(ipv4(1, bytes(20))),
    "arp": ethernet(bytes(28), 0x0806),
    "qinq": MAC_B
    + MAC_A
    + struct.pack("!HHHH", 0x88A8, 5, 0x8100, 6)
    + struct.pack("!H", 0x0800)
    + ipv4(17, udp(40000, 53, dns_message(wire("q.example")))),
    "tagged short": ethernet(bytes(26), vlan=3),
    "runt": bytes(20),
}


def test_fused_scan_equals_general_scan_on_crafted_frames(tmp_path: Path) -> None:
    frames = list(CRAFTED.values())
    result = assert_same_scan(write_frames(tmp_path / "crafted.pcap", frames))
    assert result.by_proto["dns"] >= 10
    assert result.counters.malformed
    pcapng = as_pcapng(tmp_path / "crafted.pcap", tmp_path / "crafted.pcapng")
    assert assert_same_scan(pcapng).by_proto == result.by_proto


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_fused_scan_equals_general_scan_on_each_crafted_frame(name: str, tmp_path: Path) -> None:
    frame = CRAFTED[name]
    assert_same_scan(write_frames(tmp_path / "one.pcap", [frame, frame]), strict=False)


def test_fused_scan_writes_addresses_of_every_digit_count_as_the_decoder_does(
    tmp_path: Path,
) -> None:
    """The compiled loop writes IPv4 addresses itself: 0, 9, 10, 99, 100 and 255 in every
    position, in DNS lines (both directions) and in flow keys (QUIC)."""
    query = udp(40000, 53, dns_message(wire("www.example.com")))
    octets = [0, 9, 10, 99, 100, 255]
    frames = []
    for turn in range(len(octets)):
        src = bytes(octets[(turn + i) % len(octets)] for i in range(4))
        dst = bytes(octets[(turn + i + 2) % len(octets)] for i in range(4))
        frames.append(ethernet(ipv4(17, query, src=src, dst=dst)))
        frames.append(ethernet(ipv4(17, udp(443, 40000, b"\xc3" + bytes(40)), src=dst, dst=src)))
    text = assert_same_scan(write_frames(tmp_path / "addresses.pcap", frames)).text
    assert '"client_ip":"0.9.10.99"' in text and '"server_ip":"10.99.100.255"' in text


def write_timed(path: Path, frames: list[tuple[float, bytes]]) -> Path:
    records = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for ts, frame in frames:
        seconds = int(ts)
        records.append(
            struct.pack("<IIII", seconds, round((ts - seconds) * 1e6), len(frame), len(frame))
        )
        records.append(frame)
    path.write_bytes(b"".join(records))
    return path


def test_fused_scan_runs_expiry_at_the_dns_packets_as_feed_does(tmp_path: Path) -> None:
    """An expiry pass that only a DNS packet can trigger (at 61 s) drops a ClientHello's flow
    idle for 61 s; the next segment, a second later, then finds no ClientHello to complete."""
    syn, first_half, second_half = (
        bytes(packet) for packet in tls_flow("late.example", split_at=60)
    )
    other_flow = ethernet(ipv4(6, tcp(50001, 443, b"\x16\x03\x01\x00\x05hello", seq=100)))
    query = CRAFTED["dns query"]
    path = write_timed(
        tmp_path / "expiry.pcap",
        [
            (0.0, syn),
            (0.001, first_half),
            (50.0, query),
            (55.0, other_flow),
            (61.0, query),
            (62.0, second_half),
        ],
    )
    result = assert_same_scan(path)
    assert result.by_proto == Counter({"dns": 2})
    expired_too_late = write_timed(
        tmp_path / "kept.pcap",
        [(0.0, syn), (0.001, first_half), (55.0, other_flow), (62.0, second_half)],
    )
    assert assert_same_scan(expired_too_late).by_proto == Counter({"tls": 1})


FRAME_TEMPLATES = [
    CRAFTED["dns query"],
    CRAFTED["dns response cname"],
    CRAFTED["dns over ipv6"],
    CRAFTED["tcp data"],
    CRAFTED["quic-like"],
    CRAFTED["dns query tagged"],
]


@st.composite
def mutated_frames(draw: st.DrawFn) -> list[bytes]:
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        frame = bytearray(draw(st.sampled_from(FRAME_TEMPLATES)))
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(frame) - 1))
            frame[at] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(frame)))
        frames.append(bytes(frame[: len(frame) - cut // 4]))
    return frames


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frames=mutated_frames())
def test_fused_scan_equals_general_scan_on_mutated_frames(
    frames: list[bytes], tmp_path: Path
) -> None:
    pcap = write_frames(tmp_path / "mutated.pcap", frames)
    assert_same_scan(pcap, strict=False)
    assert_same_scan(as_pcapng(pcap, tmp_path / "mutated.pcapng"), strict=False)


# --- memory ---------------------------------------------------------------------------------


def test_scanning_makes_no_reference_cycles() -> None:
    """``hallmonitor scan`` turns the cycle collector off (it only cost time): that is safe
    because the scan, fused or general, leaves nothing for it to collect."""
    gc.collect()
    gc.disable()
    try:
        for path in sorted(PCAPS.iterdir()):
            if path.suffix in (".pcap", ".pcapng"):
                scan(path, fast=False, strict=False)
                if path.suffix == ".pcap":
                    scan(path, fast=True, strict=False)
        assert gc.collect() == 0
    finally:
        gc.enable()
