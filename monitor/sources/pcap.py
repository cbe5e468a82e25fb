"""Capture files (pcap and pcapng) as a stream of ``Frame`` values.

``hallmonitor scan`` replays capture files through the same pipeline as live capture, and it
must stay several times faster than tshark, so this reader costs about a microsecond per
packet. That is why it does not use scapy's readers, although scapy is our library for
packets: scapy's ``RawPcapReader`` and ``RawPcapNgReader`` (which skip dissection) were
measured against this reader on this project's 2-core machine (shared and noisy), over 500,000
Ethernet frames copied from the reference captures (245 MB, in the page cache), best of 3:

================================================  ==========  ==========
reader                                            pcap        pcapng
================================================  ==========  ==========
scapy ``RawPcap(Ng)Reader``, bytes + metadata     1.9 µs/pkt  3.9 µs/pkt
the same, turned into ``Frame`` values            2.4 µs/pkt  4.5 µs/pkt
this reader (1 MiB reads + ``struct.Struct``)     0.7 µs/pkt  1.1 µs/pkt
================================================  ==========  ==========

An ``mmap`` version was no faster than buffered 1 MiB reads, and a file that shrinks under a
mapping kills the process with SIGBUS, so the reader uses plain reads. Scapy also forgets to
reset interfaces at a new pcapng section and ignores ``if_tsoffset``; this reader does both.

What is read: pcap in both byte orders, with microsecond (``a1b2c3d4``) or nanosecond
(``a1b23c4d``) timestamps; pcapng with any number of sections (each with its own byte order)
and interfaces (each with its own link type, ``if_tsresol``, decimal or power-of-2, and
``if_tsoffset``), and Enhanced, Simple and obsolete Packet blocks. Other blocks are skipped.

``hallmonitor scan --format jsonl`` reads classic pcap files through ``monitor.fastscan``
instead when the compiled loop was built: it walks the records the same way in its own loop
(``open_pcap_records``) and decodes them in place, without a ``Frame`` each.

A file whose header is broken raises ``CaptureFileError``. Damage further in (a record or block
header with an impossible length) is noted in ``CaptureReader.damage`` with its offset, and
reading resumes at the next plausible record or block, or stops there when none follows
(``monitor.sources.damage`` has the rules, shared with the compiled loop). A file that ends in
the middle of a record (a cut-off download, a capture still being written) yields every
complete frame and then ends, with ``CaptureReader.truncated`` set and the cut in ``damage``.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import BinaryIO

from monitor.errors import CaptureFileError
from monitor.sources.damage import (
    MAX_RECORD_BYTES,
    Damage,
    PcapRules,
    ReadAt,
    damage_report,
    find_pcap_record,
    find_pcapng_block,
    impossible_caplen_reason,
    pcap_rules,
)
from monitor.values import Frame

CHUNK_BYTES = 1 << 20
"""How much is read from the file at a time."""

PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_BLOCK_IDB = 1
_BLOCK_PB = 2
_BLOCK_SPB = 3
_BLOCK_EPB = 6

_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

_PCAP_HEADER_BYTES = 24
_PCAP_RECORD_BYTES = 16
_SHB_MIN_BYTES = 28

_new_frame = tuple.__new__
"""``Frame``'s generated ``__new__`` is Python code; calling tuple's directly halves the cost."""

RecordUnpacker = Callable[["bytes | mmap.mmap", int], tuple[int, int, int]]
"""Reads a pcap record header at an offset (in the bytes read, or the mapped file):
seconds, fraction of a second, captured length."""

_Interface = tuple[int, int, int, int]
"""A pcapng interface: link type, ticks per second, seconds to add (if_tsoffset), snaplen."""


class _Layout:
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


_LITTLE = _Layout("<")
_BIG = _Layout(">")


def capture_size(path: str | os.PathLike[str]) -> int:
    """The size of a capture file in bytes (for a progress bar against ``bytes_read``)."""
    try:
        return os.stat(path).st_size
    except OSError as e:
        raise CaptureFileError(os.fspath(path), _os_reason(e)) from e


def read_capture(path: str | os.PathLike[str]) -> CaptureReader:
    """The frames of a pcap or pcapng file, in file order.

    The header is checked at once (``CaptureFileError`` if the file cannot be a capture);
    iterate the result for ``Frame`` values, then look at ``truncated`` and ``damage``.
    """
    return CaptureReader(path)


class CaptureReader:
    """One capture file: iterate it for frames; afterwards it says how the file ended.

    Counters (``frames_read``, ``bytes_read``) advance a chunk at a time while frames are
    read, and are exact once the iteration has ended.
    """

    path: str
    format: str
    """``"pcap"`` or ``"pcapng"``."""
    size: int
    """File size in bytes when it was opened."""
    frames_read: int
    bytes_read: int
    """Bytes of the file consumed so far, up to the end of the last complete record."""
    truncated: bool
    """The file ended in the middle of a record (its complete frames were all yielded)."""
    damage: list[Damage]
    """Damaged places in file order, each with where reading resumed (or that it stopped),
    and the cut at the end of a truncated file."""
    skipped: int
    """Packet records that could not become frames (unknown interface, no interface yet)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.frames_read = 0
        self.bytes_read = 0
        self.truncated = False
        self.damage = []
        self.skipped = 0
        head, self.size = self._read_head()
        self._layout, self.format = self._check_header(head)

    @property
    def little_endian(self) -> bool:
        """Whether the file's headers are little-endian (the writer's byte order)."""
        return self._layout is _LITTLE

    def __iter__(self) -> Iterator[Frame]:
        if self.format == "pcap":
            return self._pcap_frames()
        return self._pcapng_frames()

    def close(self) -> None:
        """Nothing stays open between iterations; kept for symmetry with live sources."""

    def damage_report(self) -> list[str]:
        """One line per damaged place (file, offset, damage, what was skipped), then how far
        reading got, for stderr; empty for a sound file. Exact once the iteration has ended."""
        lines = damage_report(self.path, self.size, self.damage)
        if lines:
            lines.append(
                f"{self.path}: {self.frames_read:,} frames read, up to byte {self.bytes_read} "
                f"of {self.size}"
            )
        return lines

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb", buffering=0)  # the caller closes it
        except OSError as e:
            raise CaptureFileError(self.path, _os_reason(e)) from e

    def _read_head(self) -> tuple[bytes, int]:
        with self._open() as fh:
            try:
                size = os.fstat(fh.fileno()).st_size
                head = fh.read(4096)
            except OSError as e:
                raise CaptureFileError(self.path, _os_reason(e)) from e
            if len(head) >= 12 and int.from_bytes(head[:4], "little") == PCAPNG_SHB:
                # The first Section Header Block may carry long options: read all of it.
                length_field = head[4:8]
                order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
                length = int.from_bytes(length_field, "little" if order == "<" else "big")
                if len(head) < length <= MAX_RECORD_BYTES:
                    head += fh.read(length - len(head))
        return head, size

    def _check_header(self, head: bytes) -> tuple[_Layout, str]:
        if not head:
            raise CaptureFileError(self.path, "empty file (0 bytes)")
        if len(head) < 4:
            raise CaptureFileError(self.path, f"too short to be a capture ({len(head)} bytes)")
        magic = head[:4]
        for layout in (_LITTLE, _BIG):
            value = layout.u32.unpack_from(magic)[0]
            if value in (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO):
                if len(head) < _PCAP_HEADER_BYTES:
                    raise CaptureFileError(
                        self.path,
                        f"file ends inside the pcap file header ({len(head)} of 24 bytes)",
                    )
                return layout, "pcap"
        if int.from_bytes(magic, "little") == PCAPNG_SHB:
            layout_or_reason = _shb_layout(head)
            if isinstance(layout_or_reason, str):
                raise CaptureFileError(
                    self.path, f"damaged pcapng section header: {layout_or_reason}"
                )
            return layout_or_reason, "pcapng"
        shown = " ".join(f"{byte:02x}" for byte in magic)
        hint = "; it is gzip-compressed: gunzip it first" if magic[:2] == b"\x1f\x8b" else ""
        raise CaptureFileError(self.path, f"not a pcap or pcapng file (starts with {shown}){hint}")

    # -- pcap ----------------------------------------------------------------------------------

    def open_pcap_records(
        self,
    ) -> tuple[BinaryIO, int, float, RecordUnpacker, PcapRules] | None:
        """For a reader fused with the decoder (``monitor.fastscan``), a classic pcap file:
        the open file positioned at its first record (the caller closes it), the link type,
        the timestamp scale (seconds per fraction unit), the record-header unpacker
        (``(seconds, fraction, captured length)`` at an offset) and the file's rules for
        damage.

        ``None`` when the file shrank below its header since it was opened: ``truncated`` and
        ``damage`` are then set as iteration would set them. The caller walks the records as
        ``_pcap_frames`` does, calls ``pcap_stopped`` where a walk stops early, and keeps
        ``frames_read`` and ``bytes_read`` up to date itself.
        """
        if self.format != "pcap":
            raise ValueError(f"{self.path} is {self.format}, not pcap")
        layout = self._layout
        fh = self._open()
        header = fh.read(_PCAP_HEADER_BYTES)
        if len(header) < _PCAP_HEADER_BYTES:
            fh.close()
            self._cut(len(header), f"the file ends inside its header ({len(header)} of 24 bytes)")
            return None
        magic, _, _, _, _, snaplen, linktype_field = layout.pcap_header.unpack_from(header)
        nano = magic == PCAP_MAGIC_NANO
        rules = pcap_rules(layout is _LITTLE, snaplen, nano)
        # The upper bits of the field carry FCS information, not the link type.
        return (
            fh,
            linktype_field & 0xFFFF,
            1e-9 if nano else 1e-6,
            layout.pcap_record.unpack_from,
            rules,
        )

    def pcap_stopped(
        self, fd: int, offset: int, size: int, rules: PcapRules, last_ts: float | None
    ) -> int | None:
        """A walk of a pcap file's records stopped at ``offset``: a header with an impossible
        length, or the end of the file (``size`` bytes) inside a record. Note the damage or the
        cut, and return where the walk resumes (``None``: it ends). ``last_ts``: the time of
        the last frame read, if any (the search for the next record starts from it)."""
        read_at = _reading(fd)
        head = read_at(offset, _PCAP_RECORD_BYTES)
        if len(head) < _PCAP_RECORD_BYTES:
            self._cut(offset, f"the file ends inside a record header ({len(head)} of 16 bytes)")
            return None
        sec, _, caplen, _ = rules.record.unpack(head)
        anchor = sec if last_ts is None else int(last_ts)
        resume = find_pcap_record(read_at, offset + 1, size, rules, anchor)
        left = size - offset - _PCAP_RECORD_BYTES
        if caplen > rules.max_caplen:
            reason = impossible_caplen_reason(rules, caplen)
        elif resume is not None:
            reason = f"the record header claims {caplen} captured bytes, more than the {left} left"
        else:
            self._cut(offset, f"the file ends {left} bytes into a record of {caplen}")
            return None
        self.damage.append(Damage(offset, reason, resume))
        return resume

    def _cut(self, offset: int, reason: str) -> None:
        self.truncated = True
        self.damage.append(Damage(offset, reason, cut=True))

    def _pcap_frames(self) -> Iterator[Frame]:
        opened = self.open_pcap_records()
        if opened is None:  # the file shrank since it was opened
            return
        fh, linktype, scale, unpack, rules = opened
        max_caplen = rules.max_caplen
        frames = 0
        base = _PCAP_HEADER_BYTES  # file offset of buf[0]
        buf = b""
        pos = 0
        ts: float | None = None
        try:
            while True:
                if more := fh.read(CHUNK_BYTES):
                    base += pos
                    buf = buf[pos:] + more if pos < len(buf) else more
                    pos = 0
                    size = len(buf)
                    last = size - _PCAP_RECORD_BYTES
                    damaged = False
                    while pos <= last:
                        sec, frac, caplen = unpack(buf, pos)
                        start = pos + _PCAP_RECORD_BYTES
                        end = start + caplen
                        if end > size or caplen > max_caplen:
                            damaged = caplen > max_caplen
                            break
                        ts = sec + frac * scale
                        yield _new_frame(Frame, (ts, linktype, buf[start:end]))
                        frames += 1
                        pos = end
                    self.frames_read = frames
                    self.bytes_read = base + pos
                    if not damaged:
                        continue
                elif pos >= len(buf):
                    break  # the end of the file, after a whole record
                # Stopped at an impossible length, or at a record the end of the file cuts.
                fd = fh.fileno()
                resume = self.pcap_stopped(fd, base + pos, os.fstat(fd).st_size, rules, ts)
                if resume is None:
                    break
                fh.seek(resume)
                base, buf, pos = resume, b"", 0
        finally:
            self.frames_read = frames
            self.bytes_read = base + pos
            fh.close()

    # -- pcapng --------------------------------------------------------------------------------

    def _pcapng_frames(self) -> Iterator[Frame]:
        layout = self._layout
        fh = self._open()
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
                                yield _new_frame(
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
                            found = _shb_layout(buf[pos : pos + _SHB_MIN_BYTES])
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
                                yield _new_frame(Frame, (last_ts, linktype, data))
                                frames += 1
                            else:
                                self.skipped += 1
                        elif btype == _BLOCK_IDB:
                            interface = _parse_idb(layout, buf[pos + 8 : end - 4])
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
                                yield _new_frame(Frame, (last_ts, linktype, data))
                                frames += 1
                            else:
                                self.skipped += 1
                        elif btype == _BLOCK_PB:
                            if blen < 32:
                                damage = f"a packet block of {blen} bytes is too short"
                                break
                            iface, high, low, caplen = layout.pb.unpack_from(buf, pos + 8)
                            if iface < len(interfaces) and caplen <= blen - 32:
                                linktype, divisor, offset, _ = interfaces[iface]
                                last_ts = ((high << 32) | low) / divisor + offset
                                data = buf[pos + 28 : pos + 28 + caplen]
                                yield _new_frame(Frame, (last_ts, linktype, data))
                                frames += 1
                            else:
                                self.skipped += 1
                        pos = end
                    self.frames_read = frames
                    self.bytes_read = base + pos
                    if damage is None:
                        continue
                elif pos >= len(buf):
                    break  # the end of the file, after a whole block
                # Stopped at a damaged block, or at a block the end of the file cuts.
                resume = self._pcapng_stopped(fh.fileno(), base + pos, layout, damage)
                if resume is None:
                    break
                fh.seek(resume)
                base, buf, pos = resume, b"", 0
        finally:
            self.frames_read = frames
            self.bytes_read = base + pos
            fh.close()

    def _pcapng_stopped(
        self, fd: int, offset: int, layout: _Layout, damage: str | None
    ) -> int | None:
        """Reading stopped at the block at ``offset``: ``damage`` says why, or ``None``: the
        end of the file is inside it. Note it, and return where reading resumes (or ``None``)."""
        read_at = _reading(fd)
        size = os.fstat(fd).st_size
        order = "<" if layout is _LITTLE else ">"
        resume = find_pcapng_block(read_at, offset + 1, size, order)
        if damage is None:
            head = read_at(offset, 8)
            left = size - offset
            if resume is None:
                if len(head) < 8:
                    self._cut(offset, f"the file ends inside a block header ({left} of 8 bytes)")
                    return None
                length = layout.u32.unpack_from(head, 4)[0]
                self._cut(offset, f"the file ends {left} bytes into a block of {length}")
                return None
            length = layout.u32.unpack_from(head, 4)[0]
            damage = f"the block header claims {length} bytes, more than the {left} left"
        self.damage.append(Damage(offset, damage, resume, unit="block"))
        return resume


def _shb_layout(head: bytes) -> _Layout | str:
    """The byte order a Section Header Block declares, or why it cannot be read."""
    if len(head) < 12:
        return f"file ends inside it ({len(head)} bytes)"
    order_magic = head[8:12]
    if order_magic == b"\x4d\x3c\x2b\x1a":
        layout = _LITTLE
    elif order_magic == b"\x1a\x2b\x3c\x4d":
        layout = _BIG
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


def _parse_idb(layout: _Layout, body: bytes) -> _Interface | None:
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


def _reading(fd: int) -> ReadAt:
    """Reads of an open file at offsets, for the search after damage (none on a pipe)."""

    def read_at(offset: int, length: int) -> bytes:
        try:
            return os.pread(fd, length, offset)
        except OSError:  # not a regular file: nothing can be searched
            return b""

    return read_at


def _os_reason(error: OSError) -> str:
    """A one-line reason for a file that cannot be opened or read."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a capture file"
    if isinstance(error, PermissionError):
        return "permission denied (run as a user who can read it)"
    return error.strerror or str(error)
