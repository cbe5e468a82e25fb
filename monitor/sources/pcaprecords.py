"""Classic pcap files: the records after the file header, and where a walk of them stops.

``CaptureReader`` (``monitor.sources.pcap``) iterates ``pcap_frames``; ``monitor.fastscan``
walks the records itself, from ``open_pcap_records``, and calls ``pcap_stopped`` the same way.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from monitor.sources.damage import (
    Damage,
    PcapRules,
    find_pcap_record,
    impossible_caplen_reason,
    pcap_rules,
)
from monitor.sources.layouts import CHUNK_BYTES, LITTLE, PCAP_MAGIC_NANO, new_frame, reading
from monitor.values import Frame

if TYPE_CHECKING:
    from monitor.sources.pcap import CaptureReader

__all__ = [
    "PCAP_HEADER_BYTES",
    "RecordUnpacker",
    "open_pcap_records",
    "pcap_frames",
    "pcap_stopped",
]

PCAP_HEADER_BYTES = 24
_PCAP_RECORD_BYTES = 16

RecordUnpacker = Callable[["bytes | mmap.mmap", int], tuple[int, int, int]]
"""Reads a pcap record header at an offset (in the bytes read, or the mapped file):
seconds, fraction of a second, captured length."""


def open_pcap_records(
    reader: CaptureReader,
) -> tuple[BinaryIO, int, float, RecordUnpacker, PcapRules] | None:
    """For a reader fused with the decoder (``monitor.fastscan``), a classic pcap file:
    the open file positioned at its first record (the caller closes it), the link type,
    the timestamp scale (seconds per fraction unit), the record-header unpacker
    (``(seconds, fraction, captured length)`` at an offset) and the file's rules for
    damage.

    ``None`` when the file shrank below its header since it was opened: ``truncated`` and
    ``damage`` are then set as iteration would set them. The caller walks the records as
    ``_pcap_frames`` does, calls ``pcap_stopped`` where a walk stops early, and keeps
    ``frames_read`` and ``bytes_read`` up to date itreader.
    """
    if reader.format != "pcap":
        raise ValueError(f"{reader.path} is {reader.format}, not pcap")
    layout = reader.layout
    fh = reader.open_file()
    header = fh.read(PCAP_HEADER_BYTES)
    if len(header) < PCAP_HEADER_BYTES:
        fh.close()
        reader.cut(len(header), f"the file ends inside its header ({len(header)} of 24 bytes)")
        return None
    magic, _, _, _, _, snaplen, linktype_field = layout.pcap_header.unpack_from(header)
    nano = magic == PCAP_MAGIC_NANO
    rules = pcap_rules(layout is LITTLE, snaplen, nano)
    # The upper bits of the field carry FCS information, not the link type.
    return (
        fh,
        linktype_field & 0xFFFF,
        1e-9 if nano else 1e-6,
        layout.pcap_record.unpack_from,
        rules,
    )


def pcap_stopped(
    reader: CaptureReader, fd: int, offset: int, size: int, rules: PcapRules, last_ts: float | None
) -> int | None:
    """A walk of a pcap file's records stopped at ``offset``: a header with an impossible
    length, or the end of the file (``size`` bytes) inside a record. Note the damage or the
    cut, and return where the walk resumes (``None``: it ends). ``last_ts``: the time of
    the last frame read, if any (the search for the next record starts from it)."""
    read_at = reading(fd)
    head = read_at(offset, _PCAP_RECORD_BYTES)
    if len(head) < _PCAP_RECORD_BYTES:
        reader.cut(offset, f"the file ends inside a record header ({len(head)} of 16 bytes)")
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
        reader.cut(offset, f"the file ends {left} bytes into a record of {caplen}")
        return None
    reader.damage.append(Damage(offset, reason, resume))
    return resume


def pcap_frames(reader: CaptureReader) -> Iterator[Frame]:
    """The frames of ``reader``'s pcap file, in file order; damage and counters go to ``reader``."""
    opened = open_pcap_records(reader)
    if opened is None:  # the file shrank since it was opened
        return
    fh, linktype, scale, unpack, rules = opened
    max_caplen = rules.max_caplen
    frames = 0
    base = PCAP_HEADER_BYTES  # file offset of buf[0]
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
                    yield new_frame(Frame, (ts, linktype, buf[start:end]))
                    frames += 1
                    pos = end
                reader.frames_read = frames
                reader.bytes_read = base + pos
                if not damaged:
                    continue
            elif pos >= len(buf):
                break  # the end of the file, after a whole record
            # Stopped at an impossible length, or at a record the end of the file cuts.
            fd = fh.fileno()
            resume = pcap_stopped(reader, fd, base + pos, os.fstat(fd).st_size, rules, ts)
            if resume is None:
                break
            fh.seek(resume)
            base, buf, pos = resume, b"", 0
    finally:
        reader.frames_read = frames
        reader.bytes_read = base + pos
        fh.close()


# -- pcapng --------------------------------------------------------------------------------
