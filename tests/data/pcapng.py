"""Classic pcap captures rewritten as pcapng, to run the same frames through the pcapng reader."""

from __future__ import annotations

import struct
from pathlib import Path

from monitor.sources.pcap import read_capture


def pcapng_block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def as_pcapng(pcap: Path, path: Path) -> Path:
    """The frames of a classic pcap file as a pcapng file: one section, one interface (the
    pcap's link type, microseconds), an Enhanced Packet Block per frame."""
    reader = read_capture(pcap)
    with open(pcap, "rb") as fh:
        linktype = struct.unpack("<I", fh.read(24)[20:24])[0] & 0xFFFF
    blocks = [
        pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
        pcapng_block(1, struct.pack("<HHI", linktype, 0, 0)),
    ]
    for frame in reader:
        ticks = round(frame.ts * 1e6)
        header = struct.pack(
            "<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame.data), len(frame.data)
        )
        blocks.append(pcapng_block(6, header + frame.data))
    path.write_bytes(b"".join(blocks))
    return path
