"""pcapng files: sections, interfaces and packet blocks, and where a walk of them stops."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from monitor.sources.damage import MAX_RECORD_BYTES, Damage, find_pcapng_block
from monitor.sources.layouts import BIG, CHUNK_BYTES, LITTLE, PCAPNG_SHB, Layout, new_frame, reading
from monitor.values import Frame

if TYPE_CHECKING:
    from monitor.sources.pcap import CaptureReader

__all__ = ["parse_idb", "pcapng_frames", "pcapng_stopped", "shb_layout"]

_BLOCK_IDB = 1
_BLOCK_PB = 2
_BLOCK_SPB = 3
_BLOCK_EPB = 6

_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

_SHB_MIN_BYTES = 28

_Interface = tuple[int, int, int, int]
"""A pcapng interface: link type, ticks per second, seconds to add (if_tsoffset), snaplen."""


def pcapng_frames(reader: CaptureReader) -> Iterator[Frame]:
    """The frames of ``reader``'s pcapng file, in file order; damage and counters go to ``reader``."""
    # Over 80 lines on purpose: the per-block loop. Measured (2026-12, machine busy): 650 ns a
    # packet over 200,000 Enhanced Packet Blocks; a function call per block costs about 60 ns
    # (10%), so every block kind is read inline, with the loop's locals.
    layout = reader.layout
    fh = reader.open_file()
    frames = 0
    base = 0  # file offset of buf[0]
    buf = b""
    pos = 0
    # The interfaces of the current section.
    interfaces: list[_Interface] = []
    last_ts = 0.0
    try:
        while True:
            damage: str | None = None
            if more := fh.read(CHUNK_BYTES):
                base += pos
                buf = buf[pos:] + more if pos < len(buf) else more
                pos = 0
                size = len(buf)
                epb = layout.epb.unpack_from
                u32 = layout.u32.unpack_from
                while pos + 12 <= size:
                    if pos + 28 <= size:
                        btype, blen, iface, high, low, caplen = epb(buf, pos)
                        end = pos + blen
                        # The common case first: a sound Enhanced Packet Block, all in hand.
                        # (Its trailing length is not compared here, to save 70 ns a packet:
                        # a block whose lengths disagree is followed by its leading one.)
                        if (
                            btype == _BLOCK_EPB
                            and end <= size
                            and iface < len(interfaces)
                            and blen >= 32
                            and caplen <= blen - 32
                            and not blen & 3
                        ):
                            linktype, divisor, offset, _ = interfaces[iface]
                            last_ts = (high * 4294967296 + low) / divisor + offset
                            yield new_frame(
                                Frame, (last_ts, linktype, buf[pos + 28 : pos + 28 + caplen])
                            )
                            frames += 1
                            pos = end
                            continue
                    else:
                        btype, blen = layout.block_header.unpack_from(buf, pos)
                        iface = high = low = caplen = 0
                    if btype == PCAPNG_SHB:
                        # Its own byte order; the type reads the same in both.
                        found = shb_layout(buf[pos : pos + _SHB_MIN_BYTES])
                        if isinstance(found, str):
                            damage = f"damaged section header: {found}"
                            break
                        layout = found
                        epb = layout.epb.unpack_from
                        u32 = layout.u32.unpack_from
                        blen = u32(buf, pos + 4)[0]
                        if blen > size - pos:
                            if blen > MAX_RECORD_BYTES:
                                damage = f"impossible section header length {blen}"
                            break
                        interfaces = []
                        pos += blen
                        continue
                    if blen < 12 or blen % 4 or blen > MAX_RECORD_BYTES:
                        damage = f"impossible block length {blen}"
                        break
                    end = pos + blen
                    if end > size:
                        break
                    if u32(buf, end - 4)[0] != blen:
                        damage = f"the block's trailing length is not its length {blen}"
                        break
                    if btype == _BLOCK_EPB:
                        if blen < 32 or caplen > blen - 32:
                            damage = f"a packet block of {blen} bytes claims {caplen} captured"
                            break
                        if iface < len(interfaces):
                            linktype, divisor, offset, _ = interfaces[iface]
                            last_ts = ((high << 32) | low) / divisor + offset
                            data = buf[pos + 28 : pos + 28 + caplen]
                            yield new_frame(Frame, (last_ts, linktype, data))
                            frames += 1
                        else:
                            reader.skipped += 1
                    elif btype == _BLOCK_IDB:
                        interface = parse_idb(layout, buf[pos + 8 : end - 4])
                        if interface is None:
                            damage = f"an interface block of {blen} bytes is too short"
                            break
                        interfaces.append(interface)
                    elif btype == _BLOCK_SPB:
                        # No interface id (always the first) and no timestamp: keep the last.
                        if interfaces and blen >= 16:
                            wirelen = u32(buf, pos + 8)[0]
                            linktype, _, _, snaplen = interfaces[0]
                            caplen = min(wirelen, blen - 16, snaplen or wirelen)
                            data = buf[pos + 12 : pos + 12 + caplen]
                            yield new_frame(Frame, (last_ts, linktype, data))
                            frames += 1
                        else:
                            reader.skipped += 1
                    elif btype == _BLOCK_PB:
                        if blen < 32:
                            damage = f"a packet block of {blen} bytes is too short"
                            break
                        iface, high, low, caplen = layout.pb.unpack_from(buf, pos + 8)
                        if iface < len(interfaces) and caplen <= blen - 32:
                            linktype, divisor, offset, _ = interfaces[iface]
                            last_ts = ((high << 32) | low) / divisor + offset
                            data = buf[pos + 28 : pos + 28 + caplen]
                            yield new_frame(Frame, (last_ts, linktype, data))
                            frames += 1
                        else:
                            reader.skipped += 1
                    pos = end
                reader.frames_read = frames
                reader.bytes_read = base + pos
                if damage is None:
                    continue
            elif pos >= len(buf):
                break  # the end of the file, after a whole block
            # Stopped at a damaged block, or at a block the end of the file cuts.
            resume = pcapng_stopped(reader, fh.fileno(), base + pos, layout, damage)
            if resume is None:
                break
            fh.seek(resume)
            base, buf, pos = resume, b"", 0
    finally:
        reader.frames_read = frames
        reader.bytes_read = base + pos
        fh.close()


def pcapng_stopped(
    reader: CaptureReader, fd: int, offset: int, layout: Layout, damage: str | None
) -> int | None:
    """Reading stopped at the block at ``offset``: ``damage`` says why, or ``None``: the
    end of the file is inside it. Note it, and return where reading resumes (or ``None``)."""
    read_at = reading(fd)
    size = os.fstat(fd).st_size
    order = "<" if layout is LITTLE else ">"
    resume = find_pcapng_block(read_at, offset + 1, size, order)
    if damage is None:
        head = read_at(offset, 8)
        left = size - offset
        if resume is None:
            if len(head) < 8:
                reader.cut(offset, f"the file ends inside a block header ({left} of 8 bytes)")
                return None
            length = layout.u32.unpack_from(head, 4)[0]
            reader.cut(offset, f"the file ends {left} bytes into a block of {length}")
            return None
        length = layout.u32.unpack_from(head, 4)[0]
        damage = f"the block header claims {length} bytes, more than the {left} left"
    reader.damage.append(Damage(offset, damage, resume, unit="block"))
    return resume


def shb_layout(head: bytes) -> Layout | str:
    """The byte order a Section Header Block declares, or why it cannot be read."""
    if len(head) < 12:
        return f"file ends inside it ({len(head)} bytes)"
    order_magic = head[8:12]
    if order_magic == b"\x4d\x3c\x2b\x1a":
        layout = LITTLE
    elif order_magic == b"\x1a\x2b\x3c\x4d":
        layout = BIG
    else:
        shown = " ".join(f"{byte:02x}" for byte in order_magic)
        return f"unknown byte-order magic {shown}"
    length = layout.u32.unpack_from(head, 4)[0]
    if length < _SHB_MIN_BYTES or length % 4:
        return f"impossible length {length}"
    if len(head) >= 14:
        major = layout.u16.unpack_from(head, 12)[0]
        if major != 1:
            return f"version {major} is not 1"
    return layout


def parse_idb(layout: Layout, body: bytes) -> _Interface | None:
    """An Interface Description Block body, or ``None`` if it is too short."""
    if len(body) < 8:
        return None
    linktype, snaplen = layout.idb.unpack_from(body)
    divisor = 1_000_000
    offset = 0
    pos = 8
    while pos + 4 <= len(body):
        code, length = layout.option.unpack_from(body, pos)
        if code == _OPT_END:
            break
        value = body[pos + 4 : pos + 4 + length]
        if code == _OPT_IF_TSRESOL and length == 1:
            # High bit set: a power of two; otherwise a power of ten.
            exponent = value[0] & 0x7F
            divisor = (2 if value[0] & 0x80 else 10) ** exponent
        elif code == _OPT_IF_TSOFFSET and length == 8:
            offset = layout.i64.unpack_from(value)[0]
        pos += 4 + length + (-length % 4)
    return (linktype, divisor, offset, snaplen)
