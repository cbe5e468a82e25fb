"""``hallmonitor scan --format jsonl`` over a capture file, through the compiled record loop.

Why it exists: the general path (``monitor.scan.write_observations``: reader, ``Decoder``,
``Extractor``, ``render_jsonl``) builds a ``Frame``, a ``Packet`` and an ``Observation`` for
every packet and passes each through a generator and four function calls: about 5 µs a frame
before any parsing. The compiled loop (``monitor.compiled.scanloop``, Cython) walks the
file's records in place (memory-mapped, see ``_Windows``), decides from the header bytes what
each frame needs, renders DNS straight to JSON lines, and hands TCP segments and QUIC
datagrams to the extractor's own state as ``Extractor._feed_tcp`` and ``_feed_udp`` do.

There is one fast loop and it is compiled: without ``monitor.compiled.scanloop`` (no C
compiler when installing; the start of ``scan`` logs it and ``hallmonitor doctor`` shows it),
``can_fast_scan`` is false and ``scan`` takes the general path, with the same output. This
module is the Python half of the compiled loop: the windows of the file, the walk's state and
totals (``RecordWalk``), the rendering of the DNS messages the loop does not read itself
(``dns_entry``), and the rules the loop decides by, as data built from the Python modules'
constants (``loop_rules``): the loop holds no rule of its own, so a change of rule in the
extractor or the parsers changes both paths.

The fast path's rules (every other frame goes to ``Pipeline.process``, unchanged):

- **Which frames**: Ethernet (link type 1) with at most one 802.1Q tag, IPv4 without options
  and not fragmented, or IPv6 without extension headers; UDP or TCP, not on a tunnel port; the
  lengths consistent. These are exactly the frames ``monitor.decode``'s fast path reads; it
  answers "not common" for every other frame, and so does the loop.
- **DNS over UDP** (a DNS port at either end): rendered straight to JSON lines. The parsed
  message, and the JSON of its questions, are remembered by the message's bytes after the ID
  (the key ``dns.parse_dns_message`` caches by); the lines are the same text ``render_jsonl``
  makes of the ``Observation`` values ``Extractor`` would build (``dns_answer_for`` is shared).
- **UDP that cannot bear a name**: an empty payload, or neither DNS, DHCP (``DHCP_PORTS`` both
  ends) nor a QUIC long header (``quic.LONG_HEADER_BITS``): counted as a packet, nothing else.
- **TCP without payload** and without SYN, FIN or RST: counted as a frame only (the decoder
  returns nothing for it). **TCP on a flow the extractor ignores** (no SYN): counted as a
  packet, nothing else (``Decoder.decode_skipping``'s ``SKIPPED``).
- **Everything else on the fast path** (DHCP, QUIC long headers, TCP segments of live flows)
  goes to the extractor's state as ``Extractor.feed`` passes it.

A record header with an impossible length (above ``PcapRules.max_caplen``, which
``monitor.sources.damage`` decides for the file and the loop gets as data in
``RecordWalk.max_caplen``) stops the walk of a window, as it stops the reader; ``_scan_pcap``
then asks the reader (``CaptureReader.pcap_stopped``) to note the damage and find the next
plausible record, and the walk resumes there: the loop, and every process of a shared scan,
resumes at the same record and notes the same damage.

Before anything it handles without the extractor, the loop calls ``Extractor.advance`` when the
packet's time is due for an expiry pass, as ``feed`` would have. Counters (frames, packets,
observations, malformed per stage, internal errors, link types) end as the general path leaves
them; ``tests/monitor/test_fastscan.py`` compares both paths' output and counters on every
golden capture, on generated mixes and on crafted and mutated frames, in one process and in
three sharing the file (``monitor.scanshare``). The compiled loop also takes the frames of
pcapng files from their reader (``walk_frames``).

The interface of the compiled loop, for any caller: make a ``RecordWalk`` for a ``Pipeline``
(it builds the ``LoopRules`` from the Python constants), hand the loop records
(``walk_records``) or ``Frame`` values (``walk_frames``), take ``walk.lines`` after each call,
and call ``walk.add_totals`` at the end. The live daemon (``live_observer``) makes an
observing walk and hands it each socket drain (``observe_frames``): the same decisions, with
every observation handed back as the ``Observation`` value (DNS read by
``Extractor.dns_message_observations``) instead of a JSON line, and the counters moved after
each drain (``RecordWalk.flush_totals``). Every per-frame decision is
``_FrameLoop.frame`` in ``monitor/compiled/scanloop.pyx``; a new entry point goes through it
and takes its rules from ``walk.rules``, never from literals of its own.
"""

from __future__ import annotations

import functools
import mmap
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from json.encoder import encode_basestring_ascii
from types import ModuleType
from typing import Any, BinaryIO

from monitor.decode.decoder import Decoder
from monitor.decode.wire import TUNNEL_PORTS
from monitor.extract import dns, tls
from monitor.extract import extractor as extract
from monitor.extract.compiled import compiled_module
from monitor.extract.extractor import (
    DHCP_PORTS,
    DNS_ENCRYPTED,
    DNS_FLAG_SETS,
    DOH_RESOLVER_NAMES,
    LOCAL_DNS_PORTS,
    Extractor,
    dns_answer_for,
)
from monitor.pipeline import Pipeline
from monitor.scan import render_flags
from monitor.sources.damage import MAX_RECORD_BYTES
from monitor.sources.layouts import CHUNK_BYTES
from monitor.sources.pcap import CaptureReader
from monitor.values import Frame, Observation

SCANLOOP = "monitor.compiled.scanloop"

_FILE_HEADER_BYTES = 24
RECORD_HEADER_BYTES = 16
"""A classic pcap record's header: seconds, fraction, captured and original length."""

_DNS_ENTRY_CACHE_ENTRIES = 8192
"""DNS messages remembered with their rendered questions; a full cache is emptied."""
_DNS_ENTRY_MAX_BYTES = 512
"""Longer messages are not remembered (as in ``dns.parse_dns_message``)."""

_DnsEntry = tuple[bool, tuple[tuple[str, int, str], ...]]
"""A DNS message for rendering: is it a response, and per question the JSON of its name, its
encrypted-DNS flag bit and the JSON of its ``cnames`` and ``addresses`` members."""

_encode = encode_basestring_ascii


def can_fast_scan(reader: CaptureReader, pipeline: Pipeline) -> bool:
    """Whether ``scan_capture`` gives the same output as the general path for this pair: the
    compiled loop loaded, the stock decoder and extractor (tests substitute others), and a
    classic pcap or a pcapng file."""
    return reader.format in ("pcap", "pcapng") and can_observe(pipeline)


NO_ANSWER_JSON = '"cnames":[],"addresses":[]'


def dns_entry(message: dns.DnsMessage) -> _DnsEntry:
    """The rendering of a parsed DNS message the loop keeps and writes lines from (the
    compiled loop reads the common message itself, to the same entry)."""
    is_response = message.is_response
    answered = is_response and (message.cnames or message.addresses)
    questions = []
    for name in message.questions:
        answer = NO_ANSWER_JSON
        if answered:
            cnames, addresses = dns_answer_for(message, name)
            if cnames or addresses:
                # Address texts are digits, hex digits, dots and colons: nothing to escape.
                answer = (
                    f'"cnames":[{",".join(map(_encode, cnames))}],'
                    f'"addresses":[{_quoted_list(addresses)}]'
                )
        encrypted = DNS_ENCRYPTED if name in DOH_RESOLVER_NAMES else 0
        questions.append((_encode(name), encrypted, answer))
    return is_response, tuple(questions)


def _quoted_list(texts: tuple[str, ...]) -> str:
    return '"' + '","'.join(texts) + '"' if texts else ""


_Window = tuple["bytes | mmap.mmap", int, int, int, int]
"""A stretch of the records for the compiled loop: the buffer, the file offset of its first byte,
where the next record starts in it, its size, and the last offset a record may start at."""


class _Windows:
    """The records' bytes, one window of about ``CHUNK_BYTES`` at a time.

    A regular file is memory-mapped and walked in place: no copy of the bulk of the file into
    the process (about a tenth of the scan time of a bulk capture), and the pages walked are
    dropped from the mapping as the walk moves on, so memory stays flat. Anything that cannot
    be mapped is read in chunks, a record cut by a chunk carried over to the next.

    Reading a mapped page that a truncation took away kills the process (SIGBUS), so each
    window first checks that the file still has its mapped size and ends the walk, as cut,
    when it shrank (a capture ring overwriting the file). What is left is a truncation within
    one window's walk (about a millisecond).

    After damage, ``resume_at`` moves the walk on to the next plausible record.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._buf = b""
        self._base = _FILE_HEADER_BYTES
        self._last = -1
        self._started = False
        self._resume: int | None = None
        self._dropped = 0
        try:
            self._mapped: mmap.mmap | None = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not a regular file
            self._mapped = None

    @property
    def size(self) -> int:
        """The size of the file now (never more than is mapped)."""
        size = os.fstat(self._fh.fileno()).st_size
        return size if self._mapped is None else min(size, len(self._mapped))

    def resume_at(self, offset: int) -> tuple[int, int]:
        """Make the next window start at the record at file offset ``offset``; returns the
        walk's new ``base`` and ``pos`` (as a window would give them)."""
        self._resume = offset
        if self._mapped is not None:
            return 0, offset
        self._fh.seek(offset)
        self._buf = b""
        self._base = offset
        return offset, 0

    def next(self, pos: int) -> _Window | None:
        """The next window, given where the walk of the previous one stopped (``None``: the
        end; the walk then stopped at the end of the file or at a record cut by it)."""
        mapped = self._mapped
        resume, self._resume = self._resume, None
        if mapped is None:
            more = self._fh.read(CHUNK_BYTES)
            if not more:
                return None
            if resume is None:
                self._base += pos
            buf = self._buf = self._buf[pos:] + more if pos < len(self._buf) else more
            return buf, self._base, 0, len(buf), len(buf) - RECORD_HEADER_BYTES
        size = len(mapped)
        if not self._started:  # the first window, even without a whole record in it
            self._started = True
            pos = _FILE_HEADER_BYTES
        elif resume is not None:
            pos = resume
        elif (
            pos <= self._last  # a record runs past the end of the file
            or pos > size - RECORD_HEADER_BYTES
            or os.fstat(self._fh.fileno()).st_size < size
        ):
            return None
        walked = pos - pos % mmap.PAGESIZE
        if walked > self._dropped:
            mapped.madvise(mmap.MADV_DONTNEED, self._dropped, walked - self._dropped)
            self._dropped = walked
        self._last = min(pos + CHUNK_BYTES, size - RECORD_HEADER_BYTES)
        return mapped, 0, pos, size, self._last

    def close(self) -> None:
        if self._mapped is not None:
            self._mapped.close()


PORT_DNS, PORT_TUNNEL, PORT_DHCP, PORT_LOCAL_DNS = 1, 2, 4, 8
"""The bits of ``LoopRules.port_kinds``: what a UDP or TCP port is to the loop."""
STREAM_SERVER_RECORD, STREAM_HANDSHAKE_RECORD = 1, 2
"""The bits of ``LoopRules.stream_starts``: what the first two bytes of a TCP stream are."""


@dataclass(frozen=True, slots=True)
class LoopRules:
    """The rules the compiled loop decides by, as data: built by ``loop_rules`` from the
    constants of the Python modules that state them, when a walk starts."""

    port_kinds: bytes
    """One byte per port: ``PORT_*`` bits (the DNS ports of the extractor, ``TUNNEL_PORTS``,
    ``DHCP_PORTS``, ``LOCAL_DNS_PORTS``)."""
    stream_starts: bytes
    """One byte per first two bytes of a TCP stream (big-endian): ``STREAM_SERVER_RECORD``
    for ``extractor.TLS_SERVER_RECORD_STARTS``, ``STREAM_HANDSHAKE_RECORD`` for
    ``tls.HANDSHAKE_RECORD_START``."""
    plain_name_bytes: bytes
    """One byte per byte of a DNS label: its lowercase self when ``dns.NAME_BYTE_TEXT`` writes
    it as itself and JSON needs no escape for it, else 0 (the name goes to Python)."""
    flags_json: tuple[str, ...]
    """The JSON of ``DNS_FLAG_SETS``, by the same bits."""
    doh_resolver_names: frozenset[str]
    no_answer_json: str


def loop_rules(dns_ports: frozenset[int]) -> LoopRules:
    """The compiled loop's rules, from the Python modules' constants as they are now."""
    return LoopRules(
        port_kinds=_table(
            65536,
            (dns_ports, PORT_DNS),
            (TUNNEL_PORTS, PORT_TUNNEL),
            (DHCP_PORTS, PORT_DHCP),
            (LOCAL_DNS_PORTS, PORT_LOCAL_DNS),
        ),
        stream_starts=_table(
            65536,
            (map(_two_bytes, extract.TLS_SERVER_RECORD_STARTS), STREAM_SERVER_RECORD),
            ((_two_bytes(tls.HANDSHAKE_RECORD_START),), STREAM_HANDSHAKE_RECORD),
        ),
        plain_name_bytes=bytes(
            ord(text) if len(text) == 1 and _encode(text) == f'"{text}"' else 0
            for text in dns.NAME_BYTE_TEXT
        ),
        flags_json=tuple(render_flags(flags) for flags in DNS_FLAG_SETS),
        doh_resolver_names=DOH_RESOLVER_NAMES,
        no_answer_json=NO_ANSWER_JSON,
    )


def _table(size: int, *kinds: tuple[Iterable[int], int]) -> bytes:
    table = bytearray(size)
    for values, bit in kinds:
        for value in values:
            table[value] |= bit
    return bytes(table)


def _two_bytes(start: bytes) -> int:
    if len(start) != 2:
        raise ValueError(f"the compiled loop reads 2-byte stream starts, not {start!r}")
    return int.from_bytes(start, "big")


class RecordWalk:
    """What the compiled record loop reads and keeps from one window of the file to the next
    (``monitor.compiled.scanloop.walk_records`` and ``walk_frames``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        linktype: int = 0,
        scale: float = 1e-6,
        little_endian: bool = True,
        *,
        share: int = 0,
        shares: int = 1,
        max_caplen: int = MAX_RECORD_BYTES,
        observing: bool = False,
    ) -> None:
        """``linktype``, ``scale``, ``little_endian`` and the largest possible captured length (``PcapRules.max_caplen``) describe a classic pcap
        file's records (``walk_records``); frames (``walk_frames``) carry their own. ``share``
        and ``shares``: this process's part of a shared scan (``monitor.scanshare``).
        ``observing``: for ``observe_frames`` (the live daemon), ``lines`` holds the
        ``Observation`` values instead of JSON lines."""
        extractor = pipeline.extractor
        self.pipeline = pipeline
        self.extractor = extractor
        self.linktype = linktype
        self.scale = scale
        self.little_endian = little_endian
        self.max_caplen = max_caplen
        self.rules = loop_rules(extractor.dns_ports)
        self.observing = observing
        self.next_expiry = extractor.next_expiry
        self.dns_entries: dict[bytes, _DnsEntry] = {}
        self.lines: list[Any] = []  # str, or Observation when observing
        """JSON lines of the window walked last, for the caller to write (observing: the
        ``Observation`` values of the frames walked last)."""
        self.share = share
        self.shares = shares
        self.line_frames: list[int] = []
        """In a shared scan, the number of the frame each line came from."""
        self.counts: dict[str, int] = {}
        """Observations per proto that went through the pipeline (DNS lines are ``dns_lines``)."""
        self.frames = 0
        self.fast_frames = 0
        self.fast_packets = 0
        self.dns_lines = 0
        self.pos = 0
        """Where the walk of the last window stopped."""
        self.damaged = False
        """The walk stopped at a record header with an impossible length (at ``pos``)."""
        self.last_ts: float | None = None
        """The time of the last record walked (where the search after damage starts from)."""

    def add_totals(self, by_proto: Counter[str]) -> None:
        """Add what the walk counted to the pipeline's counters and to ``by_proto``: once,
        when the walk ends."""
        counters = self.pipeline.counters
        counters.frames += self.fast_frames
        counters.packets += self.fast_packets
        counters.observations += self.dns_lines
        counts = self.counts
        if self.dns_lines:
            counts["dns"] = counts.get("dns", 0) + self.dns_lines
        for proto, count in counts.items():
            by_proto[proto] += count

    def flush_totals(self) -> None:
        """Move what the walk counted into the pipeline's counters, for a walk that never ends
        (``observe_frames``: after each batch, so that the daemon's figures move)."""
        self.add_totals(Counter())
        self.counts.clear()
        self.fast_frames = self.fast_packets = self.dns_lines = 0

    def dns_entry(self, message: bytes) -> _DnsEntry | None:
        """The rendering of a DNS message not seen lately, remembered; ``None`` (counted as
        malformed, or as an internal error) when it cannot be read."""
        malformed = self.pipeline.counters.malformed
        try:
            parsed = dns.parse_dns_message(message)
        except ValueError:
            malformed["dns"] = malformed.get("dns", 0) + 1
            return None
        except Exception as e:
            self.pipeline.count_bug("extract", e)
            return None
        try:
            entry = dns_entry(parsed)
        except ValueError:
            malformed["extract"] = malformed.get("extract", 0) + 1
            return None
        except Exception as e:
            self.pipeline.count_bug("extract", e)
            return None
        self.remember(message, entry)
        return entry

    def remember(self, message: bytes, entry: _DnsEntry) -> None:
        """Keep ``entry`` for the next message with these bytes after the ID (short ones)."""
        if len(message) <= _DNS_ENTRY_MAX_BYTES:
            entries = self.dns_entries
            if len(entries) >= _DNS_ENTRY_CACHE_ENTRIES:
                entries.clear()
            entries[message[2:]] = entry


def scan_capture(
    reader: CaptureReader,
    pipeline: Pipeline,
    write: Callable[[str], object],
    by_proto: Counter[str],
    *,
    jobs: int = 1,
) -> None:
    """Scan a capture file and ``write`` its observations as JSON lines, a batch at a time;
    what ``write_observations(reader, pipeline, write, render_jsonl, by_proto)`` does, faster
    (see the module docstring). Needs ``can_fast_scan(reader, pipeline)``: an ``ImportError``
    when the compiled loop is not loaded.

    A classic pcap file is walked in place; the frames of a pcapng file, read by its
    ``CaptureReader``, go through the same per-frame decisions. ``jobs`` processes share the
    work (``monitor.scanshare``), with the same output.

    The pipeline's counters and ``by_proto`` are complete when it returns (or raises); the
    reader's ``frames_read``, ``bytes_read``, ``truncated`` and ``damage`` are set as
    iterating it would set them.
    """
    if jobs > 1:
        compiled_loop()  # the ImportError here, not in the processes
        from monitor.scanshare import scan_shared

        scan_shared(reader, pipeline, write, by_proto, jobs)
        return
    walk_capture(reader, pipeline, by_proto, _writing(write))


Emit = Callable[["RecordWalk"], None]
"""Called after each stretch of the file with the walk: takes (and clears) its ``lines`` and
their ``line_frames``."""


def _writing(write: Callable[[str], object]) -> Emit:
    def emit(walk: RecordWalk) -> None:
        lines = walk.lines
        if lines:
            lines.append("")
            write("\n".join(lines))
            lines.clear()

    return emit


def walk_capture(
    reader: CaptureReader,
    pipeline: Pipeline,
    by_proto: Counter[str],
    emit: Emit,
    *,
    share: int = 0,
    shares: int = 1,
) -> None:
    """The loop of ``scan_capture``, handing each stretch's lines to ``emit``; as process
    ``share`` of ``shares`` (``monitor.scanshare``) when ``shares`` > 1."""
    loop = compiled_loop()
    if reader.format == "pcap":
        _scan_pcap(reader, pipeline, by_proto, loop.walk_records, emit, share, shares)
    else:
        _scan_frames(reader, pipeline, by_proto, loop.walk_frames, emit, share, shares)


WalkRecords = Callable[[RecordWalk, "bytes | mmap.mmap", int, int, int, int], None]


def _scan_pcap(
    reader: CaptureReader,
    pipeline: Pipeline,
    by_proto: Counter[str],
    walk_window: WalkRecords,
    emit: Emit,
    share: int,
    shares: int,
) -> None:
    opened = reader.open_pcap_records()
    if opened is None:
        return
    fh, linktype, scale, _, rules = opened
    walk = RecordWalk(
        pipeline,
        linktype,
        scale,
        rules.little_endian,
        share=share,
        shares=shares,
        max_caplen=rules.max_caplen,
    )
    base = _FILE_HEADER_BYTES  # file offset of buf[0]: the records follow the file header
    pos = size = 0
    windows = _Windows(fh)
    try:
        while True:
            while (window := windows.next(pos)) is not None:
                buf, base, pos, size, last = window
                walk_window(walk, buf, base, pos, size, last)
                pos = walk.pos
                reader.frames_read = walk.frames
                reader.bytes_read = base + pos
                emit(walk)  # once per window
                if walk.damaged:
                    break
            if not walk.damaged and pos >= size:
                break  # the end of the file, after a whole record
            # Stopped at an impossible length, or at a record the end of the file cuts.
            walk.damaged = False
            resume = reader.pcap_stopped(fh.fileno(), base + pos, windows.size, rules, walk.last_ts)
            if resume is None:
                break
            base, pos = windows.resume_at(resume)
            walk.pos = pos
    finally:
        windows.close()
        fh.close()
        reader.frames_read = walk.frames
        reader.bytes_read = base + walk.pos
        walk.add_totals(by_proto)


_FRAMES_PER_BATCH = 4096
"""Frames handed to the compiled loop at a time, their lines written after each batch."""


def _scan_frames(
    reader: CaptureReader,
    pipeline: Pipeline,
    by_proto: Counter[str],
    walk_frames: Callable[[RecordWalk, list[Frame]], None],
    emit: Emit,
    share: int,
    shares: int,
) -> None:
    walk = RecordWalk(pipeline, share=share, shares=shares)
    frames = iter(reader)
    try:
        while batch := list(islice(frames, _FRAMES_PER_BATCH)):
            walk_frames(walk, batch)
            emit(walk)
    finally:
        walk.add_totals(by_proto)


Observe = Callable[[list[Frame]], list[Observation]]
"""The live daemon's step: a batch of frames (one socket drain) to its observations."""


def general_observations(pipeline: Pipeline, frames: list[Frame]) -> list[Observation]:
    """The observations of ``frames``, in order, through the general path
    (``Pipeline.batches``): the Python original of the compiled ``observe_frames``."""
    return [each for observations in pipeline.batches(frames) for each in observations]


def can_observe(pipeline: Pipeline) -> bool:
    """Whether the compiled loop gives this pipeline's observations: the loop loaded, with the
    stock decoder and extractor (tests substitute others)."""
    decoder = pipeline.decoder
    return (
        type(decoder).decode is Decoder.decode
        and type(decoder).decode_skipping is Decoder.decode_skipping
        and type(pipeline.extractor) is Extractor
        and compiled_loop_built()
    )


def live_observer(pipeline: Pipeline) -> Observe:
    """How the live daemon (``monitor.runner``, ``monitor.workers``) turns each batch of
    frames into observations: the compiled loop's ``observe_frames`` on one observing
    ``RecordWalk`` when ``can_observe``, else the general path, with the same observations and
    counters (``tests/monitor/test_fastscan.py`` compares them on the golden captures)."""
    if not can_observe(pipeline):
        return functools.partial(general_observations, pipeline)
    walk = RecordWalk(pipeline, observing=True)
    return functools.partial(compiled_loop().observe_frames, walk)


def compiled_loop_built() -> bool:
    """Whether ``monitor.compiled.scanloop`` is loaded (built by setup.py when a C compiler
    was there, and loadable: ``monitor.extract.compiled`` says why not)."""
    return compiled_module(SCANLOOP) is not None


def compiled_loop() -> ModuleType:
    """``monitor.compiled.scanloop``; an ``ImportError`` saying why when it is not loaded."""
    loop = compiled_module(SCANLOOP, True)
    assert loop is not None  # compiled_module(..., True) raises instead
    return loop
