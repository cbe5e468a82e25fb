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

The readers of the two formats are ``monitor.sources.pcaprecords`` (classic pcap) and
``monitor.sources.pcapng``; their shared byte orders are in ``monitor.sources.layouts``. This
module opens the file, tells the format from its header and keeps what the reading found.

A file whose header is broken raises ``CaptureFileError``. Damage further in (a record or block
header with an impossible length) is noted in ``CaptureReader.damage`` with its offset, and
reading resumes at the next plausible record or block, or stops there when none follows
(``monitor.sources.damage`` has the rules, shared with the compiled loop). A file that ends in
the middle of a record (a cut-off download, a capture still being written) yields every
complete frame and then ends, with ``CaptureReader.truncated`` set and the cut in ``damage``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO

from monitor.errors import CaptureFileError
from monitor.sources import pcaprecords
from monitor.sources.damage import MAX_RECORD_BYTES, Damage, PcapRules, damage_report
from monitor.sources.layouts import (
    BIG,
    LITTLE,
    PCAP_MAGIC_MICRO,
    PCAP_MAGIC_NANO,
    PCAPNG_SHB,
    Layout,
)
from monitor.sources.pcapng import pcapng_frames, shb_layout
from monitor.sources.pcaprecords import PCAP_HEADER_BYTES, RecordUnpacker, pcap_frames
from monitor.values import Frame


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
    layout: Layout
    """The structs of the byte order of the file header (of its first section, for pcapng)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.frames_read = 0
        self.bytes_read = 0
        self.truncated = False
        self.damage = []
        self.skipped = 0
        head, self.size = self._read_head()
        self.layout, self.format = self._check_header(head)

    @property
    def little_endian(self) -> bool:
        """Whether the file's headers are little-endian (the writer's byte order)."""
        return self.layout is LITTLE

    def __iter__(self) -> Iterator[Frame]:
        if self.format == "pcap":
            return pcap_frames(self)
        return pcapng_frames(self)

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

    def open_file(self) -> BinaryIO:
        try:
            return open(self.path, "rb", buffering=0)  # the caller closes it
        except OSError as e:
            raise CaptureFileError(self.path, _os_reason(e)) from e

    def _read_head(self) -> tuple[bytes, int]:
        with self.open_file() as fh:
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

    def _check_header(self, head: bytes) -> tuple[Layout, str]:
        if not head:
            raise CaptureFileError(self.path, "empty file (0 bytes)")
        if len(head) < 4:
            raise CaptureFileError(self.path, f"too short to be a capture ({len(head)} bytes)")
        magic = head[:4]
        for layout in (LITTLE, BIG):
            value = layout.u32.unpack_from(magic)[0]
            if value in (PCAP_MAGIC_MICRO, PCAP_MAGIC_NANO):
                if len(head) < PCAP_HEADER_BYTES:
                    raise CaptureFileError(
                        self.path,
                        f"file ends inside the pcap file header ({len(head)} of 24 bytes)",
                    )
                return layout, "pcap"
        if int.from_bytes(magic, "little") == PCAPNG_SHB:
            layout_or_reason = shb_layout(head)
            if isinstance(layout_or_reason, str):
                raise CaptureFileError(
                    self.path, f"damaged pcapng section header: {layout_or_reason}"
                )
            return layout_or_reason, "pcapng"
        shown = " ".join(f"{byte:02x}" for byte in magic)
        hint = "; it is gzip-compressed: gunzip it first" if magic[:2] == b"\x1f\x8b" else ""
        raise CaptureFileError(self.path, f"not a pcap or pcapng file (starts with {shown}){hint}")

    # -- pcap ----------------------------------------------------------------------------------

    # -- what the format readers call ---------------------------------------------------------

    def open_pcap_records(
        self,
    ) -> tuple[BinaryIO, int, float, RecordUnpacker, PcapRules] | None:
        """``monitor.sources.pcaprecords.open_pcap_records`` of this file."""
        return pcaprecords.open_pcap_records(self)

    def pcap_stopped(
        self, fd: int, offset: int, size: int, rules: PcapRules, last_ts: float | None
    ) -> int | None:
        """``monitor.sources.pcaprecords.pcap_stopped`` of this file."""
        return pcaprecords.pcap_stopped(self, fd, offset, size, rules, last_ts)

    def cut(self, offset: int, reason: str) -> None:
        self.truncated = True
        self.damage.append(Damage(offset, reason, cut=True))


def _os_reason(error: OSError) -> str:
    """A one-line reason for a file that cannot be opened or read."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a capture file"
    if isinstance(error, PermissionError):
        return "permission denied (run as a user who can read it)"
    return error.strerror or str(error)
