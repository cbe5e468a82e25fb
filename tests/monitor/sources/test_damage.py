"""The rules for damaged captures: what is impossible, what is plausible, where reading resumes."""

from __future__ import annotations

import struct

import pytest

from monitor.sources.damage import (
    MAX_DAMAGE_LINES,
    MAX_RECORD_BYTES,
    MAX_SNAPLEN,
    RESYNC_WINDOW_S,
    SEARCH_CHUNK_BYTES,
    Damage,
    ReadAt,
    damage_report,
    find_pcap_record,
    find_pcapng_block,
    pcap_rules,
    plausible_pcap_header,
)

T0 = 1_700_000_000
RULES = pcap_rules(True, 65535, False)


def reading(data: bytes) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return read_at


def record(sec: int, data: bytes, *, frac: int = 0, origlen: int | None = None) -> bytes:
    origlen = len(data) if origlen is None else origlen
    return struct.pack("<IIII", sec, frac, len(data), origlen) + data


def find(data: bytes, start: int = 0, anchor: int = T0) -> int | None:
    return find_pcap_record(reading(data), start, len(data), RULES, anchor)


# -- impossible lengths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snaplen", "plausible", "impossible_above"),
    [
        (65535, 65535, MAX_SNAPLEN),
        (0, MAX_SNAPLEN, MAX_SNAPLEN),  # some writers leave it 0
        (1 << 21, 1 << 21, 1 << 21),  # a file may declare more than libpcap's largest
        (0xFFFFFFFF, MAX_SNAPLEN, MAX_SNAPLEN),  # but never more than MAX_RECORD_BYTES
    ],
)
def test_a_captured_length_is_impossible_above_the_snaplen_or_libpcaps_largest_record(
    snaplen: int, plausible: int, impossible_above: int
) -> None:
    rules = pcap_rules(True, snaplen, nano=False)
    assert (rules.snaplen, rules.max_caplen) == (plausible, impossible_above)
    assert rules.max_caplen <= MAX_RECORD_BYTES


def test_nanosecond_files_allow_fractions_up_to_a_billion() -> None:
    assert pcap_rules(False, 65535, nano=True).fraction_units == 10**9
    assert RULES.fraction_units == 10**6


# -- plausible record headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sec", "frac", "caplen", "origlen", "plausible"),
    [
        (T0, 0, 60, 60, True),
        (T0 + RESYNC_WINDOW_S, 999_999, 60, 1500, True),
        (T0 - RESYNC_WINDOW_S, 0, 0, 1, True),
        (T0 + RESYNC_WINDOW_S + 1, 0, 60, 60, False),  # a day after the last record
        (T0 - RESYNC_WINDOW_S - 1, 0, 60, 60, False),
        (T0, 1_000_000, 60, 60, False),  # a fraction of a second or more
        (T0, 0, 65536, 65536, False),  # more than the snaplen
        (T0, 0, 61, 60, False),  # more captured than sent
        (T0, 0, 0, 0, False),  # nothing sent: zeroed bytes
    ],
)
def test_a_plausible_record_header_is_close_in_time_and_consistent_in_length(
    sec: int, frac: int, caplen: int, origlen: int, plausible: bool
) -> None:
    assert plausible_pcap_header(RULES, sec, frac, caplen, origlen, T0) is plausible


def test_the_search_finds_the_next_record_after_garbage_at_any_byte() -> None:
    for garbage in (b"", b"\xff", b"\xff" * 3, b"\xaa" * 1001):
        data = garbage + record(T0 + 1, b"a" * 60) + record(T0 + 2, b"b" * 60)
        assert find(data) == len(garbage)


def test_the_search_skips_a_header_that_is_not_followed_by_a_plausible_one() -> None:
    fake = struct.pack("<IIII", T0, 0, 4, 4) + b"\xff" * 20  # what follows it is garbage
    real = record(T0 + 1, b"a" * 60) + record(T0 + 2, b"b" * 60)
    assert find(fake + real) == len(fake)


def test_the_search_accepts_a_last_record_or_one_the_end_cuts_after_it() -> None:
    assert find(b"\xff" * 7 + record(T0, b"a" * 60)) == 7
    assert find(b"\xff" * 7 + record(T0, b"a" * 60) + record(T0, b"b" * 60)[:20]) == 7


def test_the_search_finds_nothing_in_garbage_zeros_or_records_from_another_day() -> None:
    assert find(b"\xff" * 5000) is None
    assert find(bytes(5000)) is None
    far = record(T0 + 2 * RESYNC_WINDOW_S, b"a" * 60) * 2
    assert find(far) is None
    assert find(record(T0, b"a" * 60)[:-1]) is None  # a record must fit in the file


def test_the_search_works_across_its_reading_chunks_in_either_byte_order() -> None:
    for shift in range(-20, 20, 3):
        garbage = b"\xff" * (SEARCH_CHUNK_BYTES + shift)
        assert find(garbage + record(T0, b"a" * 60) * 2) == len(garbage)
    big = pcap_rules(False, 65535, False)
    data = b"\xff" * 9 + (struct.pack(">IIII", T0, 5, 3, 3) + b"abc") * 2
    assert find_pcap_record(reading(data), 0, len(data), big, T0) == 9


def test_the_search_starts_where_it_is_told() -> None:
    data = record(T0, b"a" * 60) * 3
    assert find(data, start=1) == 76


# -- plausible pcapng blocks -------------------------------------------------------------------


def block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def test_a_plausible_block_has_a_known_type_and_its_length_at_both_ends() -> None:
    good = block(6, b"x" * 40)
    unknown = block(0x77, b"y" * 8)
    mismatched = struct.pack("<II", 6, 20) + bytes(8) + struct.pack("<I", 24)
    data = b"\xff" * 3 + unknown + mismatched + good
    assert find_pcapng_block(reading(data), 0, len(data), "<") == len(data) - len(good)


def test_a_section_header_is_found_in_its_own_byte_order() -> None:
    shb = block(0x0A0D0D0A, b"\x1a\x2b\x3c\x4d" + struct.pack(">HHq", 1, 0, -1), order=">")
    data = b"\xee" * 5 + shb
    assert find_pcapng_block(reading(data), 0, len(data), "<") == 5


def test_no_plausible_block_in_garbage() -> None:
    data = b"\x06\x00\x00\x00" + b"\xff" * 100 + b"\x01\x00\x00\x00\x10\x00\x00\x00"
    assert find_pcapng_block(reading(data), 0, len(data), "<") is None


# -- how damage is told ------------------------------------------------------------------------


def test_damage_names_the_offset_the_damage_and_what_was_skipped() -> None:
    assert Damage(100, "bad", 180).describe(1000) == (
        "damaged at byte 100: bad; skipped 80 bytes to the next plausible record at byte 180"
    )
    assert Damage(100, "bad", None, unit="block").describe(1000) == (
        "damaged at byte 100: bad; nothing plausible follows: reading stopped there, "
        "900 bytes unread"
    )
    assert Damage(100, "ends", cut=True).describe(1000) == "cut short at byte 100: ends"


def test_a_report_of_many_damaged_places_names_the_first_and_sums_up_the_rest() -> None:
    places = [Damage(offset, "bad", offset + 10) for offset in range(0, 1000, 20)]
    lines = damage_report("f.pcap", 2000, places)
    assert len(lines) == MAX_DAMAGE_LINES + 1
    assert lines[0].startswith("f.pcap: damaged at byte 0: bad; skipped 10 bytes")
    assert (
        lines[-1]
        == f"f.pcap: {len(places) - MAX_DAMAGE_LINES} more damaged places, 400 more bytes skipped"
    )
    assert damage_report("f.pcap", 2000, []) == []
