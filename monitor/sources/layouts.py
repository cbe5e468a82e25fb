"""The byte orders and magic numbers of capture files, shared by the pcap and pcapng readers."""

from __future__ import annotations

import os
import struct

from monitor.sources.damage import ReadAt

__all__ = [
    "BIG",
    "CHUNK_BYTES",
    "LITTLE",
    "PCAPNG_BYTE_ORDER_MAGIC",
    "PCAPNG_SHB",
    "PCAP_MAGIC_MICRO",
    "PCAP_MAGIC_NANO",
    "Layout",
    "new_frame",
    "reading",
]
CHUNK_BYTES = 1 << 20
"""How much is read from the file at a time."""

PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

new_frame = tuple.__new__
"""``Frame``'s generated ``__new__`` is Python code; calling tuple's directly halves the cost."""


class Layout:
    """Precompiled structs for one byte order."""

    def __init__(self, order: str) -> None:
        self.u32 = struct.Struct(order + "I")
        self.u16 = struct.Struct(order + "H")
        self.i64 = struct.Struct(order + "q")
        self.pcap_header = struct.Struct(order + "IHHiIII")
        self.pcap_record = struct.Struct(order + "III4x")
        self.block_header = struct.Struct(order + "II")
        # Block type, block length, then the first five words of an Enhanced Packet Block.
        self.epb = struct.Struct(order + "IIIIII")
        self.idb = struct.Struct(order + "HxxI")
        self.pb = struct.Struct(order + "HxxIII")
        self.option = struct.Struct(order + "HH")


LITTLE = Layout("<")
BIG = Layout(">")


def reading(fd: int) -> ReadAt:
    """Reads of an open file at offsets, for the search after damage (none on a pipe)."""

    def read_at(offset: int, length: int) -> bytes:
        try:
            return os.pread(fd, length, offset)
        except OSError:  # not a regular file: nothing can be searched
            return b""

    return read_at
