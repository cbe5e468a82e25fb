"""Capture files built byte by byte, shared by the tests of monitor.sources' readers."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from scapy.utils import RawPcapNgReader, RawPcapReader

from monitor.values import Frame


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
