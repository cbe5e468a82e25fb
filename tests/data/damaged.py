"""Real captures with one damaged place, and the same captures without the damaged record.

The damage is what a failing disk or a bad copy does to a capture file: one record header's
captured length turned impossible, a pcapng block length changed, a byte lost, the end cut off.
Each helper takes the bytes of a little-endian capture and returns new bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

PCAPS = Path(__file__).resolve().parent / "pcaps"

IMPOSSIBLE_LENGTH = 0x7FFFFFFF


def pcap_records(data: bytes) -> list[tuple[int, int]]:
    """(offset, captured length) of each record of a little-endian classic pcap file."""
    records = []
    pos = 24
    while pos + 16 <= len(data):
        (caplen,) = struct.unpack_from("<I", data, pos + 8)
        records.append((pos, caplen))
        pos += 16 + caplen
    return records


def pcapng_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, length) of each block of a little-endian pcapng file."""
    blocks = []
    pos = 0
    while pos + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        blocks.append((pos, kind, length))
        pos += length
    return blocks


def with_pcap_length(data: bytes, index: int, caplen: int = IMPOSSIBLE_LENGTH) -> bytes:
    """Record ``index``'s captured length set to ``caplen``."""
    offset, _ = pcap_records(data)[index]
    damaged = bytearray(data)
    struct.pack_into("<I", damaged, offset + 8, caplen)
    return bytes(damaged)


def without_pcap_record(data: bytes, index: int) -> bytes:
    offset, caplen = pcap_records(data)[index]
    return data[:offset] + data[offset + 16 + caplen :]


def with_block_length(data: bytes, index: int, length: int) -> bytes:
    """Block ``index``'s leading length set to ``length``."""
    offset, _, _ = pcapng_blocks(data)[index]
    damaged = bytearray(data)
    struct.pack_into("<I", damaged, offset + 4, length)
    return bytes(damaged)


def without_block(data: bytes, index: int) -> bytes:
    offset, _, length = pcapng_blocks(data)[index]
    return data[:offset] + data[offset + length :]


def packet_block_indexes(data: bytes) -> list[int]:
    """Indexes (in ``pcapng_blocks``) of the Enhanced Packet Blocks."""
    return [index for index, (_, kind, _) in enumerate(pcapng_blocks(data)) if kind == 6]
