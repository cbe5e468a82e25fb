"""Specification of monitor.sources.pcap: capture files as frames, their damage named."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import CaptureFileError
from monitor.sources.damage import Damage
from monitor.sources.pcap import CaptureReader, capture_size, read_capture
from monitor.values import Frame
from tests.data.damaged import (
    packet_block_indexes,
    pcap_records,
    pcapng_blocks,
    with_block_length,
    with_pcap_length,
    without_block,
)
from tests.monitor.sources.capturefiles import (
    US,
    assert_same_frames,
    block,
    epb,
    idb,
    pcap_bytes,
    scapy_frames,
    shb,
    two_section_pcapng,
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
