"""Damaged capture files: what a record or block header may say, and where reading resumes.

Why: a capture copied off a failing disk, cut by a full disk or patched by hand can hold one
record header with an impossible length in the middle; stopping there silently loses the rest
of the evidence, and reading on from the bad length reads garbage. Every reader of capture
files (``monitor.sources.pcap``, the compiled loop ``monitor/compiled/scanloop.pyx`` that
``monitor.fastscan`` drives, each process of ``monitor.scanshare``) stops at the same
header by the same rule and asks this module where the next plausible record starts, as a
forensic reader (pcapfix) does, so that they all agree on what was read and what was skipped.

The rules, all here (the compiled loop gets ``PcapRules.max_caplen`` as data):

- **Impossible** (the walk stops): a pcap record whose captured length is more than
  ``max_caplen``: the file's snaplen, or libpcap's and Wireshark's largest record
  (``MAX_SNAPLEN``) if that is larger, never more than ``MAX_RECORD_BYTES``; a pcapng block
  whose length is under 12, not a multiple of 4, over ``MAX_RECORD_BYTES`` or unlike its
  trailing copy (``monitor.sources.pcap`` names each).
- **Plausible** (reading resumes there): a pcap record header whose seconds are within
  ``RESYNC_WINDOW_S`` of the last record read (or of the damaged header's own, when nothing
  was read before it), whose fraction is under one second, whose captured length is at most
  the snaplen and the original length (which is not 0), which fits in the file, and which is
  followed by the end of the file or by another header plausible after it; a pcapng block of
  a known type whose length is sound and matches its trailing copy. Records need not be
  aligned: a lost or extra byte moves everything after it.

Only the search reads the file, through a ``ReadAt`` the reader passes (``os.pread`` on its
descriptor), so the rules are tested on bytes alone.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MAX_RECORD_BYTES = 1 << 24
"""A record or block claiming more bytes than this is damage, not a packet."""

MAX_SNAPLEN = 262_144
"""The longest record libpcap and Wireshark accept for the link types read here (their
``max_snaplen_for_dlt``): a longer one is damage unless the file's snaplen allows it."""

RESYNC_WINDOW_S = 86_400
"""How far (seconds) a record found after damage may be from the last one read (pcapfix's day)."""

SEARCH_CHUNK_BYTES = 1 << 20
"""How much of the file the search reads at a time."""

PCAP_RECORD_BYTES = 16
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_KNOWN_BLOCKS = frozenset(
    {
        0x00000001,  # Interface Description
        0x00000002,  # Packet (obsolete)
        0x00000003,  # Simple Packet
        0x00000004,  # Name Resolution
        0x00000005,  # Interface Statistics
        0x00000006,  # Enhanced Packet
        0x00000007,  # IRIG Timestamp
        0x00000008,  # ARINC 429
        0x00000009,  # systemd Journal Export
        0x0000000A,  # Decryption Secrets
        0x00000BAD,  # Custom, may be copied
        0x40000BAD,  # Custom, not to be copied
        PCAPNG_SHB,  # Section Header (its byte order is its own)
    }
)
"""Block types of the pcapng specification: reading resumes only at one of these."""

_SHB_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_SHB_MIN_BYTES = 28
_PCAPNG_MIN_BYTES = 12

ReadAt = Callable[[int, int], bytes]
"""Reads up to ``length`` bytes of the file at ``offset`` (fewer at its end)."""


@dataclass(frozen=True, slots=True)
class PcapRules:
    """What a record header of one classic pcap file may say."""

    little_endian: bool
    snaplen: int
    """Captured lengths of plausible records are at most this."""
    max_caplen: int
    """A captured length above this is impossible: the walk stops there."""
    fraction_units: int
    """Units of the timestamp's fraction in a second (microseconds or nanoseconds)."""

    @property
    def record(self) -> struct.Struct:
        """Seconds, fraction, captured length, original length."""
        return _RECORD[self.little_endian]


_RECORD = {True: struct.Struct("<IIII"), False: struct.Struct(">IIII")}


def pcap_rules(little_endian: bool, snaplen: int, nano: bool) -> PcapRules:
    """The rules for a pcap file whose header says ``snaplen``. A snaplen of 0 or beyond
    ``MAX_RECORD_BYTES`` (some writers put anything there) counts as ``MAX_SNAPLEN``."""
    if not 0 < snaplen <= MAX_RECORD_BYTES:
        snaplen = MAX_SNAPLEN
    return PcapRules(little_endian, snaplen, max(snaplen, MAX_SNAPLEN), 10**9 if nano else 10**6)


def plausible_pcap_header(
    rules: PcapRules, sec: int, frac: int, caplen: int, origlen: int, anchor: int
) -> bool:
    """Whether a record header found after damage may be a real one (see the module)."""
    return (
        abs(sec - anchor) <= RESYNC_WINDOW_S
        and frac < rules.fraction_units
        and caplen <= rules.snaplen
        and origlen > 0
        and caplen <= origlen
    )


def impossible_caplen_reason(rules: PcapRules, caplen: int) -> str:
    return f"the record header claims {caplen} captured bytes (at most {rules.max_caplen})"


def find_pcap_record(
    read_at: ReadAt, start: int, size: int, rules: PcapRules, anchor: int
) -> int | None:
    """The offset of the first plausible record header at or after ``start`` in a file of
    ``size`` bytes, ``anchor`` being the seconds of the last record read; ``None`` if none."""
    record = rules.record
    unpack = record.unpack_from
    # Candidates first by the upper half of their seconds (bytes 2-3 little-endian, 0-1
    # big-endian), found by the regular expression engine: the rest is checked in Python.
    lead = 2 if rules.little_endian else 0
    low = max(0, anchor - RESYNC_WINDOW_S) >> 16
    high = min(0xFFFFFFFF, anchor + RESYNC_WINDOW_S) >> 16
    order: Literal["little", "big"] = "little" if rules.little_endian else "big"
    halves = [half.to_bytes(2, order) for half in range(low, high + 1)]
    pattern = re.compile(b"(?=" + b"|".join(re.escape(half) for half in halves) + b")")
    chunk_start = start
    while chunk_start + PCAP_RECORD_BYTES <= size:
        chunk = read_at(chunk_start, SEARCH_CHUNK_BYTES + PCAP_RECORD_BYTES)
        for match in pattern.finditer(chunk, lead, SEARCH_CHUNK_BYTES + lead):
            at = match.start() - lead
            if at + PCAP_RECORD_BYTES > len(chunk):
                return None
            sec, frac, caplen, origlen = unpack(chunk, at)
            offset = chunk_start + at
            after = offset + PCAP_RECORD_BYTES + caplen
            if after > size or not plausible_pcap_header(rules, sec, frac, caplen, origlen, anchor):
                continue
            following = read_at(after, PCAP_RECORD_BYTES)
            if len(following) < PCAP_RECORD_BYTES:
                return offset  # the end of the file, or a record it cuts
            next_sec, next_frac, next_caplen, next_origlen = unpack(following)
            if plausible_pcap_header(rules, next_sec, next_frac, next_caplen, next_origlen, sec):
                return offset
        chunk_start += SEARCH_CHUNK_BYTES
    return None


def _block_pattern(order: str) -> re.Pattern[bytes]:
    byte_order: Literal["little", "big"] = "little" if order == "<" else "big"
    types = [
        block.to_bytes(4, byte_order if block != PCAPNG_SHB else "little")
        for block in sorted(PCAPNG_KNOWN_BLOCKS)
    ]
    return re.compile(b"(?=" + b"|".join(re.escape(text) for text in types) + b")")


_BLOCK_PATTERNS = {order: _block_pattern(order) for order in ("<", ">")}
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}


def find_pcapng_block(read_at: ReadAt, start: int, size: int, order: str) -> int | None:
    """The offset of the first plausible block (see the module) at or after ``start`` in a
    pcapng file of ``size`` bytes whose current section has byte order ``order`` (``"<"`` or
    ``">"``); ``None`` if there is none."""
    pattern = _BLOCK_PATTERNS[order]
    chunk_start = start
    while chunk_start + _PCAPNG_MIN_BYTES <= size:
        chunk = read_at(chunk_start, SEARCH_CHUNK_BYTES + _SHB_MIN_BYTES)
        for match in pattern.finditer(chunk, 0, SEARCH_CHUNK_BYTES):
            at = match.start()
            offset = chunk_start + at
            head = chunk[at : at + 12]
            if len(head) < 12:
                return None
            block_order = order
            minimum = _PCAPNG_MIN_BYTES
            if head[:4] == b"\x0a\x0d\x0d\x0a":
                found_order = _SHB_ORDER.get(head[8:12])
                if found_order is None:
                    continue
                block_order, minimum = found_order, _SHB_MIN_BYTES
            u32 = _U32[block_order]
            length = u32.unpack_from(head, 4)[0]
            if (
                length < minimum
                or length % 4
                or length > MAX_RECORD_BYTES
                or offset + length > size
            ):
                continue
            trailing = read_at(offset + length - 4, 4)
            if len(trailing) == 4 and u32.unpack(trailing)[0] == length:
                return offset
        chunk_start += SEARCH_CHUNK_BYTES
    return None


@dataclass(frozen=True, slots=True)
class Damage:
    """One damaged place in a capture file: where, what, and where reading resumed."""

    offset: int
    """File offset of the damaged record or block header."""
    reason: str
    resumed_at: int | None = None
    """Where the next plausible record starts; ``None``: nothing plausible follows, reading
    stopped here."""
    cut: bool = False
    """The file ends inside this record (a cut-off copy, a capture still being written)."""
    unit: str = "record"
    """What the file is made of: pcap records, or pcapng blocks."""

    @property
    def skipped(self) -> int:
        """Bytes skipped to the next plausible record (0 when reading stopped)."""
        return 0 if self.resumed_at is None else self.resumed_at - self.offset

    def describe(self, size: int) -> str:
        """One line, without the file name, for a file of ``size`` bytes."""
        if self.cut:
            return f"cut short at byte {self.offset}: {self.reason}"
        text = f"damaged at byte {self.offset}: {self.reason}; "
        if self.resumed_at is None:
            return (
                text
                + f"nothing plausible follows: reading stopped there, {size - self.offset} bytes unread"
            )
        return (
            text
            + f"skipped {self.skipped} bytes to the next plausible {self.unit} at byte {self.resumed_at}"
        )


MAX_DAMAGE_LINES = 10
"""Damaged places named one by one; the rest are summed up in one line."""


def damage_report(path: str, size: int, damage: list[Damage]) -> list[str]:
    """The lines that name a file's damage, for stderr (empty when it had none)."""
    lines = [f"{path}: {place.describe(size)}" for place in damage[:MAX_DAMAGE_LINES]]
    rest = damage[MAX_DAMAGE_LINES:]
    if rest:
        skipped = sum(place.skipped for place in rest)
        lines.append(f"{path}: {len(rest)} more damaged places, {skipped} more bytes skipped")
    return lines
