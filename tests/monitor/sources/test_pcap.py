"""Capture files: every reference capture, both pcap flavours, pcapng interfaces, damage."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapNgReader, RawPcapReader

from monitor.errors import CaptureFileError
from monitor.sources.damage import Damage
from monitor.sources.pcap import CHUNK_BYTES, CaptureReader, capture_size, read_capture
from monitor.values import Frame
from tests.data.damaged import (
    packet_block_indexes,
    pcap_records,
    pcapng_blocks,
    with_block_length,
    with_pcap_length,
    without_block,
)

PCAPS = Path(__file__).parents[2] / "data" / "pcaps"
CAPTURES = sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))

LINK_TYPES = {
    "ether": {1},
    "null": {0},
    "rawip": {101, 12, 14},
    "rawip4": {228},
    "rawip6": {229},
    "linux-sll": {113},
    "linux-sll2": {276},
    "ppp": {9, 50},  # td-dns-over-ppp.pcap is PPP in HDLC framing (LINKTYPE_PPP_HDLC)
    "pktap": {258},
    "ieee-802-11-radiotap": {127},
}


def expected(capture: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((PCAPS / "expected" / f"{capture.stem}.json").read_text())
    return data


def scapy_frames(path: Path) -> list[Frame]:
    """The same file as scapy's raw readers see it."""
    frames = []
    reader: Any = RawPcapReader(str(path))
    meta: Any
    try:
        if isinstance(reader, RawPcapNgReader):
            for data, meta in reader:
                ticks = (meta.tshigh << 32) | meta.tslow
                frames.append(Frame(ticks / meta.tsresol, meta.linktype, data))
        else:
            scale = 1e-9 if reader.nano else 1e-6
            for data, meta in reader:
                frames.append(Frame(meta.sec + meta.usec * scale, reader.linktype, data))
    finally:
        reader.close()
    return frames


def assert_same_frames(ours: list[Frame], theirs: list[Frame]) -> None:
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.data == b.data, f"frame {index}"
        assert a.linktype == b.linktype, f"frame {index}"
        assert a.ts == pytest.approx(b.ts, abs=1e-6), f"frame {index}"


# -- the reference captures --------------------------------------------------------------------


def test_reference_captures_are_all_present() -> None:
    assert len(CAPTURES) == len(list((PCAPS / "expected").glob("*.json"))) > 100


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_read_capture_reads_every_reference_capture(capture: Path) -> None:
    facts = expected(capture)
    reader = read_capture(capture)
    frames = list(reader)
    assert len(frames) == facts["packets"]
    assert {frame.linktype for frame in frames} <= LINK_TYPES[str(facts["link_type"])]
    assert reader.format == facts["file_format"]
    assert (reader.truncated, reader.damage, reader.skipped) == (False, [], 0)
    assert reader.frames_read == len(frames)
    assert reader.bytes_read == reader.size == capture_size(capture) == facts["size_bytes"]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_read_capture_agrees_with_scapy(capture: Path) -> None:
    assert_same_frames(list(read_capture(capture)), scapy_frames(capture))


def test_read_capture_can_be_iterated_again() -> None:
    reader = read_capture(CAPTURES[0])
    assert list(reader) == list(reader)


# -- pcap: byte orders, timestamp precision, chunk boundaries ----------------------------------

TS = (1_700_000_000, 123_456_789)  # seconds, nanoseconds


def pcap_bytes(
    order: str, nano: bool, frames: list[bytes], linktype: int = 1, snaplen: int = 65535
) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for index, data in enumerate(frames):
        frac = TS[1] if nano else TS[1] // 1000
        # Record header: seconds, fraction, captured length, original length.
        out.append(struct.pack(order + "IIII", TS[0] + index, frac, len(data), len(data) + 4))
        out.append(data)
    return b"".join(out)


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


# -- pcapng: sections, interfaces, block kinds -------------------------------------------------


def block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str) -> bytes:
    # Byte-order magic, version 1.0, section length unknown (-1), no options.
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, *options: bytes, snaplen: int = 0) -> bytes:
    end = struct.pack(order + "HH", 0, 0) if options else b""
    return block(
        order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + b"".join(options) + end
    )


def epb(order: str, interface: int, ticks: int, data: bytes, *, comment: bytes = b"") -> bytes:
    header = struct.pack(
        order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    padded = data + b"\x00" * (-len(data) % 4)
    options = option(order, 1, comment) + struct.pack(order + "HH", 0, 0) if comment else b""
    return block(order, 6, header + padded + options)


def spb(order: str, data: bytes) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data)) + data)


def obsolete_pb(order: str, interface: int, ticks: int, data: bytes) -> bytes:
    header = struct.pack(
        order + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(order, 2, header + data)


NS = 1_700_000_000_123_456_789  # nanoseconds since the epoch
US = NS // 1000


def two_section_pcapng() -> tuple[bytes, list[Frame]]:
    """A little-endian section with three interfaces, then a big-endian one with one."""
    tsresol_ns = option("<", 9, b"\x09")
    tsresol_2_20 = option("<", 9, b"\x94")  # high bit: 2**-20 s
    tsoffset = option("<", 14, struct.pack("<q", 1000))
    data = [bytes([n]) * (40 + n) for n in range(8)]
    content = b"".join(
        [
            shb("<"),
            idb("<", 1),  # interface 0: Ethernet, microseconds (the default)
            idb("<", 101, tsresol_ns, option("<", 2, b"tun0")),  # 1: raw IP, nanoseconds
            idb("<", 113, tsresol_2_20, tsoffset, snaplen=45),  # 2: SLL, 2**-20 s, +1000 s
            epb("<", 0, US, data[0], comment=b"first"),
            epb("<", 1, NS, data[1]),
            epb("<", 2, 1 << 20, data[2]),
            block("<", 0x0BAD, b"an unknown block type is skipped"),
            spb("<", data[3]),  # interface 0, no timestamp: the previous one is kept
            obsolete_pb("<", 1, NS + 5_000_000_000, data[4]),
            epb("<", 7, US, data[5]),  # no interface 7: skipped
            shb(">"),
            idb(">", 228, option(">", 9, b"\x03")),  # milliseconds
            epb(">", 0, 1_700_000_001_500, data[6]),
            epb(">", 1, 1, data[7]),  # interface 1 belonged to the previous section: skipped
        ]
    )
    frames = [
        Frame(US / 1e6, 1, data[0]),
        Frame(NS / 1e9, 101, data[1]),
        Frame(1.0 + 1000, 113, data[2]),
        Frame(1.0 + 1000, 1, data[3]),
        Frame(NS / 1e9 + 5, 101, data[4]),
        Frame(1_700_000_001.5, 228, data[6]),
    ]
    return content, frames


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


# -- truncation and damage ---------------------------------------------------------------------


def record_ends(content: bytes, header: int, fmt: str) -> set[int]:
    """Offsets where a record (or block) ends."""
    ends = {header}
    pos = header
    order = "<"
    while pos < len(content):
        if fmt == "pcap":
            pos += 16 + struct.unpack_from("<I", content, pos + 8)[0]
        else:
            if content[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
                order = "<" if content[pos + 8] == 0x4D else ">"
            pos += struct.unpack_from(order + "I", content, pos + 4)[0]
        ends.add(pos)
    return ends


def cut_cases() -> list[tuple[str, bytes, int]]:
    pcap = (PCAPS / "td-dns-udp.pcap").read_bytes()
    pcapng, _ = two_section_pcapng()
    return [("pcap", pcap, 24), ("pcapng", pcapng, 28)]


@pytest.mark.parametrize(("fmt", "content", "header"), cut_cases(), ids=["pcap", "pcapng"])
def test_capture_cut_at_every_byte_yields_complete_frames_then_ends(
    tmp_path: Path, fmt: str, content: bytes, header: int
) -> None:
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(content)
    full = list(read_capture(path))
    ends = record_ends(content, header, fmt)
    for cut in range(len(content)):
        path.write_bytes(content[:cut])
        try:
            reader = read_capture(path)
        except CaptureFileError:
            assert cut < header, f"cut at {cut}: only a broken header may raise"
            continue
        frames = list(reader)
        assert frames == full[: len(frames)], f"cut at {cut}"
        assert reader.truncated is (cut not in ends), f"cut at {cut}"
        if reader.truncated:
            assert [(d.cut, d.offset) for d in reader.damage] == [(True, reader.bytes_read)]
        else:
            assert reader.damage == []
        assert reader.bytes_read <= cut


def test_pcap_impossible_record_length_with_nothing_after_it_ends_reading_with_a_reason(
    tmp_path: Path,
) -> None:
    content = pcap_bytes("<", False, [b"a" * 60, b"b" * 60])
    damaged = content + struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 0x7FFFFFFF) + b"c" * 100
    path = tmp_path / "damaged.pcap"
    path.write_bytes(damaged)
    reader = read_capture(path)
    assert [f.data for f in reader] == [b"a" * 60, b"b" * 60]
    assert reader.damage == [
        Damage(len(content), "the record header claims 2147483647 captured bytes (at most 262144)")
    ]
    assert reader.truncated is False
    assert reader.bytes_read == len(content)


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (struct.pack("<II", 6, 10) + b"\x00" * 8, "impossible block length 10"),
        (struct.pack("<II", 6, 15) + b"\x00" * 8, "impossible block length 15"),
        (struct.pack("<III", 6, 12, 16), "the block's trailing length is not its length 12"),
        (
            block("<", 6, struct.pack("<IIIII", 0, 0, 0, 500, 500)),
            "a packet block of 32 bytes claims 500 captured",
        ),
        (block("<", 1, b"\x01\x00"), "an interface block of 16 bytes is too short"),
        (
            block("<", 0x0A0D0D0A, b"\x00\x00\x00\x00"),
            "damaged section header: unknown byte-order magic 00 00 00 00",
        ),
    ],
)
def test_pcapng_damaged_block_with_nothing_after_it_ends_reading_with_a_reason(
    tmp_path: Path, tail: bytes, problem: str
) -> None:
    good = shb("<") + idb("<", 1) + epb("<", 0, US, b"a" * 60)
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(good + tail)
    reader = read_capture(path)
    assert [f.data for f in reader] == [b"a" * 60]
    assert reader.damage == [Damage(len(good), problem, None, unit="block")]


# -- files that are not captures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"\xd4\xc3", "too short to be a capture (2 bytes)"),
        (b"PK\x03\x04" + bytes(40), "not a pcap or pcapng file (starts with 50 4b 03 04)"),
        (
            b"\x1f\x8b\x08\x00" + bytes(40),
            "not a pcap or pcapng file (starts with 1f 8b 08 00); it is gzip-compressed: gunzip it first",
        ),
        (b"\xd4\xc3\xb2\xa1" + bytes(10), "file ends inside the pcap file header (14 of 24 bytes)"),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00",
            "damaged pcapng section header: file ends inside it (6 bytes)",
        ),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x11\x22\x33\x44" + bytes(16),
            "damaged pcapng section header: unknown byte-order magic 11 22 33 44",
        ),
        (
            b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x02\x00" + bytes(14),
            "damaged pcapng section header: version 2 is not 1",
        ),
    ],
)
def test_read_capture_refuses_what_is_not_a_capture(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    with pytest.raises(CaptureFileError) as caught:
        read_capture(path)
    assert caught.value.reason == reason
    assert str(caught.value) == f"{path}: {reason}"


def test_read_capture_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError, match="no such file"):
        read_capture(tmp_path / "absent.pcap")
    with pytest.raises(CaptureFileError, match="no such file"):
        capture_size(tmp_path / "absent.pcap")


def test_read_capture_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError) as caught:
        read_capture(tmp_path)
    assert caught.value.reason == "is a directory, not a capture file"


def test_capture_reader_is_a_context_manager() -> None:
    with CaptureReader(str(CAPTURES[0])) as reader:
        assert sum(1 for _ in reader) == reader.frames_read > 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600), header=st.sampled_from(["pcap", "pcapng", "none"]))
def test_read_capture_arbitrary_bytes_never_raise_past_the_header(
    tmp_path: Path, body: bytes, header: str
) -> None:
    prefix = {"pcap": pcap_bytes("<", False, []), "pcapng": shb("<") + idb("<", 1), "none": b""}[
        header
    ]
    path = tmp_path / "fuzz.cap"
    path.write_bytes(prefix + body)
    try:
        reader = read_capture(path)
    except CaptureFileError:
        assert header == "none"
        return
    frames = list(reader)
    assert all(isinstance(frame, Frame) for frame in frames)
    assert reader.bytes_read <= len(prefix) + len(body)


# -- damaged real captures: named, and read on from the next plausible record ----------------


def test_an_impossible_record_length_in_a_real_capture_is_skipped_to_the_next_record(
    tmp_path: Path,
) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, caplen = pcap_records(data)[400]
    path = tmp_path / "damaged.pcap"
    path.write_bytes(with_pcap_length(data, 400))
    reader = read_capture(path)
    frames = list(reader)
    intact = list(read_capture(PCAPS / "ndpi-instagram.pcap"))
    assert frames == intact[:400] + intact[401:]
    assert reader.damage == [
        Damage(
            offset,
            "the record header claims 2147483647 captured bytes (at most 262144)",
            offset + 16 + caplen,
        )
    ]
    assert (reader.truncated, reader.bytes_read, reader.frames_read) == (False, len(data), 846)
    assert reader.damage_report() == [
        f"{path}: damaged at byte {offset}: the record header claims 2147483647 captured bytes "
        f"(at most 262144); skipped {16 + caplen} bytes to the next plausible record at byte "
        f"{offset + 16 + caplen}",
        f"{path}: 846 frames read, up to byte {len(data)} of {len(data)}",
    ]


def test_a_lost_byte_in_a_real_capture_is_found_past(tmp_path: Path) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, caplen = pcap_records(data)[300]
    path = tmp_path / "lost.pcap"
    path.write_bytes(data[: offset + 5] + data[offset + 6 :])  # in the captured length
    reader = read_capture(path)
    frames = list(reader)
    intact = list(read_capture(PCAPS / "ndpi-instagram.pcap"))
    assert frames[:300] == intact[:300]
    assert frames[-400:] == intact[-400:]
    assert len(reader.damage) == 1 and reader.damage[0].resumed_at is not None


def test_a_real_capture_with_nothing_plausible_after_the_damage_stops_there(
    tmp_path: Path,
) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, _ = pcap_records(data)[400]
    path = tmp_path / "damaged.pcap"
    path.write_bytes(data[:offset] + b"\xff" * 20_000)
    reader = read_capture(path)
    assert list(reader) == list(read_capture(PCAPS / "ndpi-instagram.pcap"))[:400]
    assert [(d.offset, d.resumed_at, d.cut) for d in reader.damage] == [(offset, None, False)]
    assert reader.bytes_read == offset
    assert (
        "nothing plausible follows: reading stopped there, 20000 bytes unread"
        in (reader.damage_report()[0])
    )


def test_a_real_capture_cut_in_its_last_record_says_where(tmp_path: Path) -> None:
    data = (PCAPS / "ndpi-instagram.pcap").read_bytes()
    offset, caplen = pcap_records(data)[-1]
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: offset + 16 + 10])
    reader = read_capture(path)
    assert list(reader) == list(read_capture(PCAPS / "ndpi-instagram.pcap"))[:-1]
    assert reader.truncated
    assert reader.damage == [
        Damage(offset, f"the file ends 10 bytes into a record of {caplen}", cut=True)
    ]


@pytest.mark.parametrize(
    ("length", "reason"),
    [
        (0x7FFF0001, "impossible block length 2147418113"),
        (17, "impossible block length 17"),
        (4, "impossible block length 4"),
    ],
)
def test_a_damaged_block_length_in_a_real_pcapng_is_skipped_to_the_next_block(
    tmp_path: Path, length: int, reason: str
) -> None:
    data = (PCAPS / "ndpi-viber.pcapng").read_bytes()
    index = packet_block_indexes(data)[50]
    offset, _, block_length = pcapng_blocks(data)[index]
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(with_block_length(data, index, length))
    reader = read_capture(path)
    assert list(reader) == list(read_capture(write(tmp_path, without_block(data, index))))
    assert reader.damage == [Damage(offset, reason, offset + block_length, unit="block")]


def test_a_pcapng_block_length_that_disagrees_with_its_trailing_copy_is_damage(
    tmp_path: Path,
) -> None:
    data = (PCAPS / "ndpi-viber.pcapng").read_bytes()
    index = pcapng_blocks(data).index(next(b for b in pcapng_blocks(data) if b[1] == 1))
    offset, _, block_length = pcapng_blocks(data)[index]  # the interface block: no fast path
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(with_block_length(data, index, block_length + 4))
    reader = read_capture(path)
    assert len(list(reader)) > 400
    assert reader.damage[:1] == [
        Damage(
            offset,
            f"the block's trailing length is not its length {block_length + 4}",
            offset + block_length,
            unit="block",
        )
    ]


def write(tmp_path: Path, content: bytes, name: str = "expected.pcapng") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path
