"""``hallmonitor scan --format jsonl`` over a capture file, in one fused loop.

Why it exists: the general path builds a ``Frame``, a ``Packet`` and an ``Observation`` for
every packet and passes each through a generator and four function calls: about 5 µs a frame
before any parsing, which alone made the scan only 2 to 4 times faster than tshark. Here one
loop walks the file's records in place (memory-mapped, see ``_Windows``) with
``struct.unpack_from`` at offsets and decides from the header bytes what each frame needs,
with the decoder's own structs and rules.

The fast path's rules (every other frame goes to ``Pipeline.process``, unchanged):

- **Which frames**: Ethernet (link type 1) with at most one 802.1Q tag, IPv4 without options
  and not fragmented, or IPv6 without extension headers; UDP or TCP, not on a tunnel port; the
  lengths consistent. These are exactly the frames ``monitor.decode``'s fast path reads; it
  answers "not common" for every other frame, and so does this loop.
- **DNS over UDP** (a DNS port at either end): rendered straight to JSON lines. The parsed
  message, and the JSON of its questions, are remembered by the message's bytes after the ID
  (the key ``dns.parse_dns_message`` caches by); the lines are the same text ``render_jsonl``
  makes of the ``Observation`` values ``Extractor`` would build (``dns_answer_for`` is shared).
- **UDP that cannot bear a name**: an empty payload, or neither DNS, DHCP (67/68 both ends)
  nor a QUIC long header (the first two bits set): counted as a packet, nothing else.
- **TCP without payload** and without SYN, FIN or RST: counted as a frame only (the decoder
  returns nothing for it). **TCP on a flow the extractor ignores** (no SYN): counted as a
  packet, nothing else (``Decoder.decode_skipping``'s ``SKIPPED``).
- **Everything else on the fast path** (DHCP, QUIC long headers, TCP segments of live flows)
  becomes a ``Packet`` for ``Pipeline.process_packet``, which guards the extractor as ever.

A record header with an impossible length (above ``PcapRules.max_caplen``, which
``monitor.sources.damage`` decides for the file and both loops get as data in
``RecordWalk.max_caplen``) stops the walk of a window, as it stops the reader; ``_scan_pcap``
then asks the reader (``CaptureReader.pcap_stopped``) to note the damage and find the next
plausible record, and the walk resumes there: every loop, and every process of a shared scan,
resumes at the same record and notes the same damage.

Before anything it handles without the extractor, the loop calls ``Extractor.advance`` when the
packet's time is due for an expiry pass, as ``feed`` would have. Counters (frames, packets,
observations, malformed per stage, internal errors, link types) end as the general path leaves
them; ``tests/monitor/test_fastscan.py`` compares both paths' output and counters on every
golden capture and on generated mixes.

Two implementations of the loop: ``walk_records`` here, and its compiled twin in
``monitor/_scanloop.pyx`` (Cython; setup.py builds it when a C compiler is there), which reads
the headers with C arithmetic, counts frames without Python objects, reads common DNS
messages itself, and hands TCP segments and QUIC datagrams to the extractor's state as
``Extractor._feed_tcp`` and ``_feed_udp`` do, without a ``Packet`` for each. The compiled one
also takes the frames of pcapng files from their reader (``walk_frames``; without it, pcapng
files take the general path), and lets processes share a scan by flow (``monitor.scanshare``).
(The extractor uses its own compiled readers whenever they were built, on every path:
``monitor.extract.compiled``.) The tests run every comparison with the Python loop and Python readers, the compiled loop with
the compiled readers, and three processes sharing the compiled loop, all against the general
path with the Python readers.
"""

from __future__ import annotations

import mmap
import os
from collections import Counter
from collections.abc import Callable
from itertools import islice
from json.encoder import encode_basestring_ascii
from types import ModuleType
from typing import BinaryIO

from monitor.decode import (
    COMMON_HEADERS,
    COMMON_HEADERS_TAGGED,
    COMMON_IPV6,
    TCP_AFTER_PORTS,
    TUNNEL_PORTS,
    Decoder,
    cached_ipv4,
    cached_ipv6,
    cached_mac,
    format_ipv4,
    format_ipv6,
    format_mac,
)
from monitor.extract import dns
from monitor.extract.compiled import compiled_module
from monitor.extract.extractor import (
    DHCP_PORTS,
    DNS_ENCRYPTED,
    DNS_FLAG_SETS,
    DNS_LOCAL,
    DNS_RESPONSE,
    DOH_RESOLVER_NAMES,
    LOCAL_DNS_PORTS,
    Extractor,
    dns_answer_for,
)
from monitor.pipeline import Pipeline
from monitor.scan import render_flags, render_jsonl
from monitor.sources.damage import MAX_RECORD_BYTES
from monitor.sources.pcap import CHUNK_BYTES, CaptureReader, RecordUnpacker
from monitor.values import IPPROTO_TCP, IPPROTO_UDP, Frame, Packet

_FILE_HEADER_BYTES = 24
_RECORD_HEADER_BYTES = 16

_new_tuple = tuple.__new__

_DNS_ENTRY_CACHE_ENTRIES = 8192
"""DNS messages remembered with their rendered questions; a full cache is emptied."""
_DNS_ENTRY_MAX_BYTES = 512
"""Longer messages are not remembered (as in ``dns.parse_dns_message``)."""

_DnsEntry = tuple[bool, tuple[tuple[str, int, str], ...]]
"""A DNS message for rendering: is it a response, and per question the JSON of its name, its
encrypted-DNS flag bit and the JSON of its ``cnames`` and ``addresses`` members."""

_DNS_FLAGS_JSON = tuple(render_flags(flags) for flags in DNS_FLAG_SETS)
_encode = encode_basestring_ascii


def can_fast_scan(
    reader: CaptureReader, pipeline: Pipeline, *, compiled: bool | None = None
) -> bool:
    """Whether ``scan_capture`` gives the same output as the general path for this pair: the
    stock decoder and extractor (tests substitute others), and a classic pcap file, or a
    pcapng file when the compiled loop is there (``compiled`` as for ``scan_capture``)."""
    decoder = pipeline.decoder
    stock = (
        type(decoder).decode is Decoder.decode
        and type(decoder).decode_skipping is Decoder.decode_skipping
        and type(pipeline.extractor) is Extractor
    )
    if not stock:
        return False
    if reader.format == "pcap":
        return True
    return compiled is not False and _compiled_loop() is not None


_NO_ANSWER_JSON = '"cnames":[],"addresses":[]'


def _dns_entry(message: dns.DnsMessage) -> _DnsEntry:
    is_response = message.is_response
    answered = is_response and (message.cnames or message.addresses)
    questions = []
    for name in message.questions:
        answer = _NO_ANSWER_JSON
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
"""A stretch of the records for the fused loop: the buffer, the file offset of its first byte,
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
            return buf, self._base, 0, len(buf), len(buf) - _RECORD_HEADER_BYTES
        size = len(mapped)
        if not self._started:  # the first window, even without a whole record in it
            self._started = True
            pos = _FILE_HEADER_BYTES
        elif resume is not None:
            pos = resume
        elif (
            pos <= self._last  # a record runs past the end of the file
            or pos > size - _RECORD_HEADER_BYTES
            or os.fstat(self._fh.fileno()).st_size < size
        ):
            return None
        walked = pos - pos % mmap.PAGESIZE
        if walked > self._dropped:
            mapped.madvise(mmap.MADV_DONTNEED, self._dropped, walked - self._dropped)
            self._dropped = walked
        self._last = min(pos + CHUNK_BYTES, size - _RECORD_HEADER_BYTES)
        return mapped, 0, pos, size, self._last

    def close(self) -> None:
        if self._mapped is not None:
            self._mapped.close()


class RecordWalk:
    """What the record loop reads and keeps from one window of the file to the next.

    Shared by the two implementations of the loop, ``walk_records`` here and the compiled
    ``monitor._scanloop.walk_records``: the same inputs, the same running totals.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        linktype: int = 0,
        scale: float = 1e-6,
        little_endian: bool = True,
        unpack_record: RecordUnpacker | None = None,
        *,
        share: int = 0,
        shares: int = 1,
        max_caplen: int = MAX_RECORD_BYTES,
    ) -> None:
        """``linktype``, ``scale``, ``little_endian``, the reader's ``unpack_record`` and the
        largest possible captured length (``PcapRules.max_caplen``) describe a classic pcap
        file's records (``walk_records``); frames (``walk_frames``) carry their own. ``share``
        and ``shares``: this process's part of a shared scan (``monitor.scanshare``)."""
        extractor = pipeline.extractor
        self.pipeline = pipeline
        self.extractor = extractor
        self.linktype = linktype
        self.scale = scale
        self.little_endian = little_endian
        self.unpack_record = unpack_record
        self.max_caplen = max_caplen
        self.dns_ports = extractor.dns_ports
        self.port_kinds = port_kinds(extractor.dns_ports)
        self.flags_json = _DNS_FLAGS_JSON
        self.no_answer_json = _NO_ANSWER_JSON
        self.doh_resolver_names = DOH_RESOLVER_NAMES
        self.next_expiry = extractor.next_expiry
        self.dns_entries: dict[bytes, _DnsEntry] = {}
        self.lines: list[str] = []
        """JSON lines of the window walked last, for the caller to write."""
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
            entry = _dns_entry(parsed)
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


PORT_DNS, PORT_TUNNEL, PORT_DHCP, PORT_LOCAL_DNS = 1, 2, 4, 8


def port_kinds(dns_ports: frozenset[int]) -> bytes:
    """One byte per UDP/TCP port, the ``PORT_*`` bits of what the port is to the loop."""
    table = bytearray(65536)
    for ports, bit in (
        (dns_ports, PORT_DNS),
        (TUNNEL_PORTS, PORT_TUNNEL),
        (DHCP_PORTS, PORT_DHCP),
        (LOCAL_DNS_PORTS, PORT_LOCAL_DNS),
    ):
        for port in ports:
            table[port] |= bit
    return bytes(table)


def scan_capture(
    reader: CaptureReader,
    pipeline: Pipeline,
    write: Callable[[str], object],
    by_proto: Counter[str],
    *,
    compiled: bool | None = None,
    jobs: int = 1,
) -> None:
    """Scan a capture file and ``write`` its observations as JSON lines, a batch at a time;
    what ``write_observations(reader, pipeline, write, render_jsonl, by_proto)`` does, faster
    (see the module docstring). Needs ``can_fast_scan(reader, pipeline, compiled=compiled)``.

    ``compiled`` chooses the loop: the compiled one (``True``, an ``ImportError`` when it was
    not built), the Python one (``False``), or the compiled one when it was built (``None``).
    A classic pcap file is walked in place by either; the frames of a pcapng file, read by
    its ``CaptureReader``, go through the compiled loop only. ``jobs`` processes share the
    work (``monitor.scanshare``; the compiled loop only), with the same output.

    The pipeline's counters and ``by_proto`` are complete when it returns (or raises); the
    reader's ``frames_read``, ``bytes_read``, ``truncated`` and ``damage`` are set as
    iterating it would set them.
    """
    if jobs > 1:
        if compiled is False or _compiled_loop() is None:
            raise ImportError("sharing a scan among processes needs monitor._scanloop")
        from monitor.scanshare import scan_shared

        scan_shared(reader, pipeline, write, by_proto, jobs)
        return
    walk_capture(reader, pipeline, by_proto, _writing(write), compiled=compiled)


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
    compiled: bool | None = None,
    share: int = 0,
    shares: int = 1,
) -> None:
    """The loop of ``scan_capture``, handing each stretch's lines to ``emit``; as process
    ``share`` of ``shares`` (``monitor.scanshare``) when ``shares`` > 1."""
    if reader.format == "pcap":
        walk_window = _choose_loop(True if shares > 1 else compiled)
        _scan_pcap(reader, pipeline, by_proto, walk_window, emit, share, shares)
        return
    loop = _compiled_loop() if compiled is not False else None
    if loop is None:
        raise ImportError("monitor._scanloop was not built: pcapng needs the compiled loop")
    _scan_frames(reader, pipeline, by_proto, loop.walk_frames, emit, share, shares)


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
    fh, linktype, scale, unpack, rules = opened
    walk = RecordWalk(
        pipeline,
        linktype,
        scale,
        rules.little_endian,
        unpack,
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


WalkRecords = Callable[[RecordWalk, "bytes | mmap.mmap", int, int, int, int], None]


def compiled_loop_built() -> bool:
    """Whether ``monitor._scanloop`` was built (setup.py, when a C compiler was there)."""
    return _compiled_loop() is not None


def _compiled_loop() -> ModuleType | None:
    return compiled_module("monitor._scanloop")


def _choose_loop(compiled: bool | None) -> WalkRecords:
    loop = compiled_module("monitor._scanloop", compiled)
    if loop is None:
        return walk_records
    walk_compiled: WalkRecords = loop.walk_records
    return walk_compiled


def walk_records(
    walk: RecordWalk,
    buf: bytes | mmap.mmap,
    base: int,  # noqa: ARG001 (the compiled twin's signature: the file offset of buf[0])
    pos: int,
    size: int,
    last: int,
) -> None:
    """Walk the records of one window that start at ``pos`` up to ``last`` (see
    ``_Windows``), adding their lines and counts to ``walk``; ``walk.pos`` ends where the walk
    stopped: after the last record, at a record that runs past ``size``, or at a record
    longer than ``walk.max_caplen`` (``walk.damaged``)."""
    pipeline = walk.pipeline
    extractor = walk.extractor
    advance = extractor.advance
    ignored = extractor.streams.ignored()
    dns_ports = walk.dns_ports
    process = pipeline.process
    process_packet = pipeline.process_packet
    cached_entry = walk.dns_entries.get
    new_entry = walk.dns_entry
    flags_json = walk.flags_json
    add_line = walk.lines.append
    counts = walk.counts
    linktype = walk.linktype
    scale = walk.scale
    unpack = walk.unpack_record
    if unpack is None:
        raise ValueError("walk_records needs the pcap reader's record unpacker")
    max_caplen = walk.max_caplen
    frames = walk.frames
    ts = walk.last_ts
    fast_frames = walk.fast_frames
    fast_packets = walk.fast_packets
    dns_lines = walk.dns_lines
    next_expiry = walk.next_expiry
    try:
        while pos <= last:
            sec, frac, caplen = unpack(buf, pos)
            start = pos + _RECORD_HEADER_BYTES
            end = start + caplen
            if end > size or caplen > max_caplen:
                walk.damaged = caplen > max_caplen
                break
            pos = end
            frames += 1
            ts = sec + frac * scale
            if linktype == 1 and caplen >= 42:
                # -- the decoder's fast path, on the buffer ------------------------------
                if buf[start + 12] == 0x81 and buf[start + 13] == 0x00:  # one 802.1Q tag
                    if caplen < 46:
                        ethertype = 0
                    else:
                        (
                            mac,
                            tci,
                            ethertype,
                            version_ihl,
                            total_length,
                            fragment,
                            protocol,
                            source_ip,
                            destination_ip,
                            source_port,
                            destination_port,
                            udp_length,
                        ) = COMMON_HEADERS_TAGGED(buf, start)
                        vlan = (tci & 0xFFF) or None
                        network = start + 18
                else:
                    (
                        mac,
                        ethertype,
                        version_ihl,
                        total_length,
                        fragment,
                        protocol,
                        source_ip,
                        destination_ip,
                        source_port,
                        destination_port,
                        udp_length,
                    ) = COMMON_HEADERS(buf, start)
                    vlan = None
                    network = start + 14
                if ethertype == 0x0800:
                    transport = network + 20
                    ip_end = network + total_length
                    payload_length = total_length - 20
                    if version_ihl != 0x45 or fragment & 0x3FFF or ip_end > end:
                        protocol = 0
                    cached_ip = cached_ipv4
                    format_ip = format_ipv4
                elif ethertype == 0x86DD:
                    transport = network + 40
                    protocol = 0
                    if end >= transport + 8:
                        (
                            version,
                            payload_length,
                            protocol,
                            source_ip,
                            destination_ip,
                            source_port,
                            destination_port,
                            udp_length,
                        ) = COMMON_IPV6(buf, network)
                        ip_end = transport + payload_length
                        if version >> 4 != 6 or not payload_length or ip_end > end:
                            protocol = 0
                        cached_ip = cached_ipv6
                        format_ip = format_ipv6
                else:
                    protocol = 0
                if protocol == IPPROTO_UDP:
                    if not (
                        udp_length < 8
                        or udp_length > payload_length
                        or source_port in TUNNEL_PORTS
                        or destination_port in TUNNEL_PORTS
                    ):
                        fast_frames += 1
                        first = transport + 8
                        stop = transport + udp_length
                        if source_port in dns_ports or destination_port in dns_ports:
                            fast_packets += 1
                            if ts >= next_expiry:
                                advance(ts)
                                next_expiry = extractor.next_expiry
                            if first == stop:
                                continue
                            # -- DNS over UDP, rendered here ---------------------------
                            src = cached_ip(source_ip) or format_ip(source_ip)
                            dst = cached_ip(destination_ip) or format_ip(destination_ip)
                            key = buf[first + 2 : stop]
                            entry = cached_entry(key)
                            if entry is None:
                                entry = new_entry(buf[first:stop])
                                if entry is None:
                                    continue
                            is_response, questions = entry
                            bits = (
                                DNS_LOCAL
                                if source_port in LOCAL_DNS_PORTS
                                or destination_port in LOCAL_DNS_PORTS
                                else 0
                            )
                            if is_response:
                                bits |= DNS_RESPONSE
                                endpoints = (
                                    f'"client_ip":"{dst}","client_mac":null,'
                                    f'"server_ip":"{src}","server_port":{source_port},'
                                )
                            else:
                                mac_text = cached_mac(mac) or format_mac(mac)
                                endpoints = (
                                    f'"client_ip":"{src}","client_mac":"{mac_text}",'
                                    f'"server_ip":"{dst}","server_port":{destination_port},'
                                )
                            head = f'{{"ts":{ts!r},"proto":"dns","name":'
                            vlan_end = ',"vlan":null}' if vlan is None else f',"vlan":{vlan}}}'
                            for name_json, encrypted, answer in questions:
                                add_line(
                                    f"{head}{name_json},{endpoints}"
                                    f'"flags":{flags_json[bits | encrypted]},{answer}{vlan_end}'
                                )
                            dns_lines += len(questions)
                            continue
                        if first == stop or (
                            buf[first] & 0xC0 != 0xC0
                            and not (source_port in DHCP_PORTS and destination_port in DHCP_PORTS)
                        ):
                            # Neither DHCP nor a QUIC long header: nothing to read.
                            fast_packets += 1
                            if ts >= next_expiry:
                                advance(ts)
                                next_expiry = extractor.next_expiry
                            continue
                        packet = _new_tuple(
                            Packet,
                            (
                                ts,
                                cached_ip(source_ip) or format_ip(source_ip),
                                cached_ip(destination_ip) or format_ip(destination_ip),
                                IPPROTO_UDP,
                                source_port,
                                destination_port,
                                buf[first:stop],
                                cached_mac(mac) or format_mac(mac),
                                vlan,
                                0,
                                0,
                            ),
                        )
                        observations = process_packet(packet)
                        next_expiry = extractor.next_expiry
                        if observations:
                            for observation in observations:
                                proto = observation.proto.value
                                counts[proto] = counts.get(proto, 0) + 1
                                add_line(render_jsonl(observation))
                        continue
                elif protocol == IPPROTO_TCP and payload_length >= 20:
                    seq, data_offset, tcp_flags = TCP_AFTER_PORTS(buf, transport + 4)
                    header_length = (data_offset >> 4) << 2
                    if 20 <= header_length <= payload_length:
                        fast_frames += 1
                        first = transport + header_length
                        if first == ip_end and not tcp_flags & 0x07:  # no FIN, SYN, RST
                            continue  # the decoder returns nothing for it: not a packet
                        src = cached_ip(source_ip) or format_ip(source_ip)
                        dst = cached_ip(destination_ip) or format_ip(destination_ip)
                        if (
                            not tcp_flags & 0x02
                            and (src, source_port, dst, destination_port) in ignored
                        ):
                            fast_packets += 1
                            if ts >= next_expiry:
                                advance(ts)
                                next_expiry = extractor.next_expiry
                            continue
                        packet = _new_tuple(
                            Packet,
                            (
                                ts,
                                src,
                                dst,
                                IPPROTO_TCP,
                                source_port,
                                destination_port,
                                buf[first:ip_end],
                                cached_mac(mac) or format_mac(mac),
                                vlan,
                                seq,
                                tcp_flags,
                            ),
                        )
                        observations = process_packet(packet)
                        next_expiry = extractor.next_expiry
                        if observations:
                            for observation in observations:
                                proto = observation.proto.value
                                counts[proto] = counts.get(proto, 0) + 1
                                add_line(render_jsonl(observation))
                        continue
            # -- every other frame: the general path -------------------------------------
            observations = process(_new_tuple(Frame, (ts, linktype, buf[start:end])))
            next_expiry = extractor.next_expiry
            if observations:
                for observation in observations:
                    proto = observation.proto.value
                    counts[proto] = counts.get(proto, 0) + 1
                    add_line(render_jsonl(observation))
    finally:
        walk.pos = pos
        walk.frames = frames
        walk.last_ts = ts
        walk.fast_frames = fast_frames
        walk.fast_packets = fast_packets
        walk.dns_lines = dns_lines
        walk.next_expiry = next_expiry
