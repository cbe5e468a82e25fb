# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The record loop of ``hallmonitor scan``, compiled with Cython; ``monitor.fastscan`` drives it.

Its Python original is the general path (``monitor.scan.write_observations``: the reader,
``Decoder``, ``Extractor``, ``render_jsonl``): the same output and counters
(``tests/monitor/test_fastscan.py`` compares them on every golden capture, generated mixes,
crafted and mutated frames). What changes is the cost. Header fields are read from the buffer
with C arithmetic, the frames that cannot bear a name are counted without creating a Python
object, DNS messages seen before are rendered without a parse, the common DNS message is read
here (``_common_dns_entry``), and TCP segments and QUIC datagrams go to the extractor's state
(its reassembler, QUIC tracker and ClientHello readers, compiled twins themselves when built)
as ``Extractor._feed_tcp`` and ``_feed_udp`` would pass them, without a ``Packet`` unless one
is needed for an observation.

No rule is written here. What the loop decides by comes from the Python modules: the
extractor's and the parsers' constants imported below, and the tables of
``monitor.fastscan.loop_rules`` (ports, the first bytes of a TCP stream, the bytes of a plain
name), handed over with each walk (``RecordWalk.rules``), so that a change of rule there
changes this loop too. What is left are facts of the wire formats (where a field sits in a
header); the Ethernet, IPv4 and IPv6 ones are those of ``monitor.decode.fastpath``
(``_common_headers``), whose constants are private to it.

``walk_records`` walks the records of a classic pcap file in place; ``walk_frames`` takes the
frames of any reader (pcapng files) through the same per-frame decisions
(``_FrameLoop.frame``), and ``observe_frames`` a live capture's (the daemon's), handing back
``Observation`` values instead of JSON lines (``_FrameLoop._add`` is the one sink); a process that shares the scan with others (``monitor.scanshare``)
handles only the frames it owns. A record longer than ``walk.max_caplen`` (the rule of
``monitor.sources.damage``, given as data) stops the walk with ``walk.damaged`` set.

setup.py builds it when a C compiler is there; without one ``scan`` takes the general path.
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from monitor.decode.addresses import cached_mac, format_mac
from monitor.extract import dns, quic, tls
from monitor.extract.dns import split_tcp_dns_stream
from monitor.extract.extractor import DNS_ENCRYPTED, DNS_LOCAL, DNS_RESPONSE, DNS_TCP
from monitor import fastscan
from monitor.scan import render_jsonl
from monitor import values
from monitor.values import Frame, Packet, Proto

PROTO_QUIC = Proto.QUIC
PROTO_TLS = Proto.TLS

# The Python modules' constants, as C values (read once, when this module is imported).
cdef Py_ssize_t RECORD_HEADER_BYTES = fastscan.RECORD_HEADER_BYTES
cdef Py_ssize_t DNS_HEADER_BYTES = dns.HEADER_LENGTH
cdef Py_ssize_t MAX_NAME_LENGTH = dns.MAX_NAME_LENGTH
cdef Py_ssize_t MAX_POINTERS = dns.MAX_POINTERS
cdef int DNS_RESPONSE_FLAG = dns.RESPONSE_FLAG
cdef int TYPE_A = dns.TYPE_A
cdef int TYPE_CNAME = dns.TYPE_CNAME
cdef int TYPE_AAAA = dns.TYPE_AAAA
cdef int CLASS_IN = dns.CLASS_IN
cdef int MDNS_CACHE_FLUSH = dns.MDNS_CACHE_FLUSH
cdef int PORT_DNS = fastscan.PORT_DNS
cdef int PORT_TUNNEL = fastscan.PORT_TUNNEL
cdef int PORT_DHCP = fastscan.PORT_DHCP
cdef int PORT_LOCAL_DNS = fastscan.PORT_LOCAL_DNS
cdef int STREAM_SERVER_RECORD = fastscan.STREAM_SERVER_RECORD
cdef int STREAM_HANDSHAKE_RECORD = fastscan.STREAM_HANDSHAKE_RECORD
cdef int IPPROTO_TCP = values.IPPROTO_TCP
cdef int IPPROTO_UDP = values.IPPROTO_UDP
cdef int TCP_FIN = values.TCP_FIN
cdef int TCP_SYN = values.TCP_SYN
cdef int TCP_RST = values.TCP_RST
cdef Py_ssize_t TLS_RECORD_HEADER = tls.RECORD_HEADER_LEN
cdef int HANDSHAKE_SERVER_HELLO = tls.HANDSHAKE_SERVER_HELLO
cdef int QUIC_LONG_HEADER = quic.LONG_HEADER_BITS

cdef enum:
    NAME_BUFFER_BYTES = 1024  # room for a name's text: more than MAX_NAME_LENGTH (checked)

if MAX_NAME_LENGTH >= NAME_BUFFER_BYTES:
    raise ImportError(f"dns.MAX_NAME_LENGTH {MAX_NAME_LENGTH} needs a larger NAME_BUFFER_BYTES")

# Wire formats (not rules): Ethernet, 802.1Q, IPv4 and IPv6 as monitor.decode.fastpath reads
# them, its constants being private to it.
cdef enum:
    LINKTYPE_ETHERNET = 1
    ETHERTYPE_IPV4 = 0x0800
    ETHERTYPE_IPV6 = 0x86DD
    ETHERNET_HEADER = 14
    TAGGED_ETHERNET_HEADER = 18
    IPV4_PLAIN_VERSION_IHL = 0x45
    IPV4_FRAGMENT_BITS = 0x3FFF
    IPV4_HEADER = 20
    IPV6_HEADER = 40
    UDP_HEADER = 8
    TCP_HEADER = 20

cdef object _new_tuple = tuple.__new__


cdef inline uint16_t _be16(const uint8_t* p) noexcept nogil:
    return (p[0] << 8) | p[1]


cdef inline uint32_t _be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint32_t _le32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef inline str _ipv4_text(const uint8_t* a):
    # Dotted decimal written in C: an f-string of four integers costs several times more.
    cdef char text[16]
    cdef int length = 0, i, value
    for i in range(4):
        value = a[i]
        if value >= 100:
            text[length] = 48 + value // 100
            length += 1
        if value >= 10:
            text[length] = 48 + value // 10 % 10
            length += 1
        text[length] = 48 + value % 10
        length += 1
        text[length] = 46  # "."
        length += 1
    return PyUnicode_DecodeASCII(text, length - 1, NULL)


cdef str _ipv6_text(const uint8_t* a):
    """RFC 5952 text, as ``monitor.decode.addresses.render_ipv6`` (``str(ipaddress.IPv6Address)``):
    lowercase hex without leading zeros, the first of the longest runs of two or more zero
    groups written ``::``. Written in C: the decoder's cache costs more than this."""
    cdef char text[40]
    cdef const char* digits = b"0123456789abcdef"
    cdef int groups[8]
    cdef int i, j, shift, length = 0, best_start = -1, best_length = 1
    for i in range(8):
        groups[i] = (a[2 * i] << 8) | a[2 * i + 1]
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_length:
                best_start, best_length = i, j - i
            i = j
        else:
            i += 1
    i = 0
    while i < 8:
        if i == best_start:
            text[length] = 58  # ":"
            text[length + 1] = 58
            length += 2
            i += best_length
            continue
        if length and text[length - 1] != 58:
            text[length] = 58
            length += 1
        shift = 12
        while shift and not (groups[i] >> shift) & 0xF:
            shift -= 4
        while shift >= 0:
            text[length] = digits[(groups[i] >> shift) & 0xF]
            length += 1
            shift -= 4
        i += 1
    return PyUnicode_DecodeASCII(text, length, NULL)


def ipv6_text(bytes raw):
    """``_ipv6_text`` of 16 bytes, for the tests."""
    if len(raw) != 16:
        raise ValueError("an IPv6 address has 16 bytes")
    return _ipv6_text(<const uint8_t*><const char*>raw)


cdef inline str _mac_text(const uint8_t* a):
    raw = a[:6]
    return cached_mac(raw) or format_mac(raw)

# -- DNS messages not seen before ----------------------------------------------------------------
#
# The common message, read here: one question, and for a response an answer section whose owners
# are pointers to the question or to a CNAME target, with A, AAAA, CNAME and other records whole.
# Names must be plain: every byte one that monitor.extract.dns writes as itself (lowercased) and
# JSON needs no escape for (``plain``: ``fastscan.loop_rules``'s table, from dns.NAME_BYTE_TEXT).
# Anything else, damage included, returns None and goes to the Python reader
# (monitor.extract.dns), which has the last word on every rule; where this reader answers, it
# answers as that one does (monitor.extract.dns's rules for names and answers,
# monitor.fastscan.dns_entry's rendering).


cdef object _plain_name(
    const uint8_t* m, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t* after, const uint8_t* plain
):
    """The text of the name at ``pos`` and (in ``after``) the offset after it; None when the
    name is damaged or not plain. Pointers must point before where the name (or the part the
    previous pointer reached) started, as in ``dns._decode_name``."""
    cdef Py_ssize_t limit = pos, end = -1, wire_length = 1, pointers = 0, used = 0, i
    cdef Py_ssize_t length
    cdef uint8_t c
    cdef char text[NAME_BUFFER_BYTES]
    while True:
        if pos >= n:
            return None
        length = m[pos]
        if length == 0:
            break
        if length < 0x40:
            wire_length += 1 + length
            if wire_length > MAX_NAME_LENGTH or pos + 1 + length > n:
                return None
            if used:
                text[used] = b"."
                used += 1
            for i in range(pos + 1, pos + 1 + length):
                c = plain[m[i]]
                if c == 0:
                    return None
                text[used] = <char>c
                used += 1
            pos += 1 + length
        elif length >= 0xC0:
            if pos + 1 >= n:
                return None
            if end < 0:
                end = pos + 2
            pointers += 1
            if pointers > MAX_POINTERS:
                return None
            pos = ((length & 0x3F) << 8) | m[pos + 1]
            if pos >= limit:
                return None
            limit = pos
        else:
            return None
    after[0] = end if end >= 0 else pos + 1
    if used == 0:
        return "."
    return PyUnicode_DecodeASCII(text, used, NULL)


cdef object _common_dns_entry(
    const uint8_t* m, Py_ssize_t n, str no_answer, frozenset doh_resolver_names,
    const uint8_t* plain,
):
    """``fastscan.dns_entry(dns.parse_dns_message(message))`` for the common message (see
    above); None for any other."""
    cdef Py_ssize_t pos, name_end, rdata_end, target_end
    cdef int ancount, rtype, rclass, rdlength
    cdef bint is_response
    if n < DNS_HEADER_BYTES + 5 or _be16(m + 4) != 1:
        return None
    is_response = _be16(m + 2) & DNS_RESPONSE_FLAG
    ancount = _be16(m + 6)
    name = _plain_name(m, n, DNS_HEADER_BYTES, &name_end, plain)
    if name is None or name_end + 4 > n:
        return None
    answer = no_answer
    if is_response and ancount:
        pos = name_end + 4
        names_at = {DNS_HEADER_BYTES: name}
        cnames = []
        addresses = []
        for index in range(ancount):
            if not (pos + 1 < n and m[pos] >= 0xC0):
                return None
            owner = names_at.get(((m[pos] & 0x3F) << 8) | m[pos + 1])
            if owner is None:
                return None
            pos += 2
            if pos + 10 > n:
                return None
            rtype = _be16(m + pos)
            rclass = _be16(m + pos + 2) & ~MDNS_CACHE_FLUSH
            rdlength = _be16(m + pos + 8)
            pos += 10
            rdata_end = pos + rdlength
            if rdata_end > n:
                return None
            if rtype == TYPE_A:
                if rdlength == 4 and rclass == CLASS_IN:
                    addresses.append((owner, _ipv4_text(m + pos)))
            elif rtype == TYPE_AAAA:
                if rdlength == 16 and rclass == CLASS_IN:
                    addresses.append((owner, _ipv6_text(m + pos)))
            elif rtype == TYPE_CNAME:
                target = _plain_name(m, n, pos, &target_end, plain)
                if target is None or target_end != rdata_end:
                    return None
                cnames.append((owner, target))
                names_at[pos] = target
            pos = rdata_end
        if cnames or addresses:
            answer = _answer_json(name, cnames, addresses) or no_answer
    encrypted = DNS_ENCRYPTED if name in doh_resolver_names else 0
    return is_response, ((f'"{name}"', encrypted, answer),)


cdef str _answer_json(str name, list cnames, list addresses):
    """``extractor.dns_answer_for`` rendered as ``fastscan.dns_entry`` renders it: the CNAME
    chain from ``name`` (first CNAME of each owner, stopping at a name seen), and the
    addresses of the names on it."""
    chain = []
    if cnames:
        targets = {}
        for owner, target in cnames:
            targets.setdefault(owner, target)
        seen = {name}
        current = name
        while True:
            following = targets.get(current)
            if following is None or following in seen:
                break
            chain.append(following)
            seen.add(following)
            current = following
    if chain:
        owners = {name, *chain}
        kept = [address for owner, address in addresses if owner in owners]
    else:
        kept = [address for owner, address in addresses if owner == name]
    if not chain and not kept:
        return None
    cnames_json = ",".join([f'"{target}"' for target in chain])
    addresses_json = '"' + '","'.join(kept) + '"' if kept else ""
    return f'"cnames":[{cnames_json}],"addresses":[{addresses_json}]'


def common_dns_entry(bytes message, rules):
    """``fastscan.dns_entry(dns.parse_dns_message(message))`` for the common message, by the
    ``LoopRules`` given; None when the Python reader must read the message."""
    cdef const uint8_t[::1] view = message
    cdef bytes plain = rules.plain_name_bytes
    if not message:
        return None
    return _common_dns_entry(
        &view[0], len(message), rules.no_answer_json, rules.doh_resolver_names,
        <const uint8_t*><const char*>plain,
    )



cdef class _FrameLoop:
    """The per-frame half of the loop: the decisions, with the walk's counters in C fields
    (written back to the ``RecordWalk`` by ``save``)."""

    cdef object walk, extractor, advance, ignored, process, process_shared
    cdef object cached_entry, new_entry, remember, no_answer, doh_resolver_names, flags_json
    cdef list lines
    cdef dict counts
    cdef object rules
    cdef bytes port_kinds, stream_starts, plain_name_bytes
    cdef const uint8_t* kinds
    cdef const uint8_t* starts
    cdef const uint8_t* plain
    cdef Py_ssize_t fast_frames, fast_packets, dns_lines
    cdef double next_expiry
    cdef int share, shares
    cdef list line_frames
    cdef Py_ssize_t tagged
    cdef object counters, count_bug, streams, feed_stream, buffers, evicted, give_up
    cdef object tls_stream, dhcp, looks_like_quic, feed_quic, read_hello, hello_observation
    cdef object read_records, find_record, dns_message
    cdef bint observing

    def __init__(self, walk):
        pipeline = walk.pipeline
        extractor = walk.extractor
        self.walk = walk
        self.extractor = extractor
        self.advance = extractor.advance
        self.ignored = extractor.streams.ignored()
        self.process = pipeline.process
        self.process_shared = pipeline.process_shared
        self.cached_entry = walk.dns_entries.get
        self.new_entry = walk.dns_entry
        self.remember = walk.remember
        rules = self.rules = walk.rules
        self.no_answer = rules.no_answer_json
        self.doh_resolver_names = rules.doh_resolver_names
        self.flags_json = rules.flags_json
        self.lines = walk.lines
        self.counts = walk.counts
        # The tables (fastscan.loop_rules), kept referenced while their bytes are read here.
        self.port_kinds = rules.port_kinds
        self.stream_starts = rules.stream_starts
        self.plain_name_bytes = rules.plain_name_bytes
        if len(self.port_kinds) != 65536 or len(self.stream_starts) != 65536:
            raise ValueError("port_kinds and stream_starts must have one byte per 16-bit value")
        if len(self.plain_name_bytes) != 256:
            raise ValueError("plain_name_bytes must have one byte per byte value")
        self.kinds = <const uint8_t*><const char*>self.port_kinds
        self.starts = <const uint8_t*><const char*>self.stream_starts
        self.plain = <const uint8_t*><const char*>self.plain_name_bytes
        self.fast_frames = walk.fast_frames
        self.fast_packets = walk.fast_packets
        self.dns_lines = walk.dns_lines
        self.next_expiry = walk.next_expiry
        self.share = walk.share
        self.shares = walk.shares
        self.line_frames = walk.line_frames
        self.tagged = len(self.lines)
        # What ``Extractor._feed_tcp`` and ``_feed_udp`` use, for their twins here.
        self.counters = pipeline.counters
        self.count_bug = pipeline.count_bug
        self.streams = extractor.streams
        self.feed_stream = extractor.streams.feed
        self.buffers = extractor.buffers
        self.evicted = extractor.streams.evicted
        self.give_up = extractor.give_up
        self.tls_stream = extractor.tls_stream
        self.dhcp = extractor.dhcp_observations
        self.looks_like_quic = quic.looks_like_quic_long_header
        self.feed_quic = extractor.quic.feed
        self.read_hello = extractor.hello_readers.parse_client_hello_message
        self.read_records = extractor.hello_readers.parse_client_hello_records
        self.find_record = extractor.hello_readers.find_client_hello_record
        self.hello_observation = extractor.hello_observation
        # An observing walk (``observe_frames``: the live daemon) hands back ``Observation``
        # values: DNS goes to ``Extractor.dns_message_observations`` instead of to lines.
        self.observing = walk.observing
        self.dns_message = extractor.dns_message_observations
        if self.observing and self.shares != 1:
            raise ValueError("an observing walk is not shared")
        if self.shares < 1 or not 0 <= self.share < self.shares:
            raise ValueError(f"share {self.share} of {self.shares}")

    cdef save(self):
        walk = self.walk
        walk.fast_frames = self.fast_frames
        walk.fast_packets = self.fast_packets
        walk.dns_lines = self.dns_lines
        walk.next_expiry = self.next_expiry

    # -- sharing a capture among processes (``monitor.scanshare``) ------------------------------
    # Each frame has one owner: a flow's frames go to one process, by its pair of addresses
    # (both directions alike), so its state lives in one extractor; a DNS message over UDP by
    # its content; other frames that carry no flow state go round by number. Every process still accounts for the time of every packet
    # (``_advance``), so that expiry passes run when they would in one process.

    cdef bint _owns_frame(self, Py_ssize_t index):
        return self.shares == 1 or index % self.shares == self.share

    cdef bint _owns_message(self, const uint8_t* data, Py_ssize_t first, Py_ssize_t stop):
        # DNS over UDP goes by the message's bytes after its ID (FNV-1a), so that all copies of
        # a message (the same query or answer, asked again) go to the process that has it in
        # its cache already, as in one process: by number, each would read it again.
        cdef uint64_t digest = 14695981039346656037ULL
        cdef Py_ssize_t i
        if self.shares == 1:
            return True
        for i in range(first + 2, stop):
            digest = (digest ^ data[i]) * 1099511628211ULL
        return digest % <uint64_t>self.shares == <uint64_t>self.share

    cdef bint _owns_flow(self, str src, str dst):
        if self.shares == 1:
            return True
        return (<size_t>(hash(src) ^ hash(dst))) % <size_t>self.shares == <size_t>self.share

    def owns_packet(self, packet):
        """Whether this process extracts from a packet the general path decoded."""
        return self._owns_flow(packet[1], packet[2])

    cdef tag(self, Py_ssize_t index):
        """Mark the lines the frame numbered ``index`` added, for merging the processes' lines
        in frame order."""
        cdef Py_ssize_t count = len(self.lines)
        while self.tagged < count:
            self.line_frames.append(index)
            self.tagged += 1

    cdef _advance(self, double ts):
        if ts >= self.next_expiry:
            self.advance(ts)
            self.next_expiry = self.extractor.next_expiry

    cdef _add(self, observations):
        """The sink of every observation: a JSON line of ``walk.lines``, or (observing) the
        ``Observation`` itself."""
        self.next_expiry = self.extractor.next_expiry
        if observations:
            if self.observing:
                self.lines.extend(observations)
                return
            counts = self.counts
            for observation in observations:
                proto = observation.proto.value
                counts[proto] = counts.get(proto, 0) + 1
                self.lines.append(render_jsonl(observation))

    cdef frame(
        self,
        const uint8_t* data,
        Py_ssize_t start,
        Py_ssize_t end,
        double ts,
        int linktype,
        Py_ssize_t index,
    ):
        """One frame, ``data[start:end]``, the ``index``-th of the file: as
        the general path handles it (when this process owns it)."""
        cdef const uint8_t* kinds = self.kinds
        cdef const uint8_t* frame
        cdef const uint8_t* net
        cdef const uint8_t* source_ip
        cdef const uint8_t* destination_ip
        cdef uint32_t seq
        cdef Py_ssize_t caplen = end - start
        cdef Py_ssize_t network, transport, ip_end, payload_length, first, stop, header_length
        cdef int ethertype, protocol, vlan, source_port, destination_port, udp_length, tcp_flags
        cdef int fragment, version_ihl, total_length
        cdef bint v6
        if linktype == LINKTYPE_ETHERNET and caplen >= ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER:
            # -- the decoder's fast path, on the buffer ----------------------------------------
            frame = data + start
            vlan = 0
            if frame[12] == 0x81 and frame[13] == 0x00:  # one 802.1Q tag
                if caplen < TAGGED_ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER:
                    ethertype = 0
                else:
                    vlan = _be16(frame + 14) & 0xFFF
                    ethertype = _be16(frame + 16)
                    network = start + TAGGED_ETHERNET_HEADER
            else:
                ethertype = _be16(frame + 12)
                network = start + ETHERNET_HEADER
            v6 = False
            protocol = 0
            if ethertype == ETHERTYPE_IPV4:
                net = data + network
                version_ihl = net[0]
                total_length = _be16(net + 2)
                fragment = _be16(net + 6)
                protocol = net[9]
                source_ip = net + 12
                destination_ip = net + 16
                source_port = _be16(net + 20)
                destination_port = _be16(net + 22)
                udp_length = _be16(net + 24)
                transport = network + IPV4_HEADER
                ip_end = network + total_length
                payload_length = total_length - IPV4_HEADER
                if version_ihl != IPV4_PLAIN_VERSION_IHL or fragment & IPV4_FRAGMENT_BITS or ip_end > end:
                    protocol = 0
            elif ethertype == ETHERTYPE_IPV6:
                transport = network + IPV6_HEADER
                if end >= transport + UDP_HEADER:
                    net = data + network
                    v6 = True
                    payload_length = _be16(net + 4)
                    protocol = net[6]
                    source_ip = net + 8
                    destination_ip = net + 24
                    source_port = _be16(net + 40)
                    destination_port = _be16(net + 42)
                    udp_length = _be16(net + 44)
                    ip_end = transport + payload_length
                    if net[0] >> 4 != 6 or not payload_length or ip_end > end:
                        protocol = 0
            if protocol == IPPROTO_UDP:
                if not (
                    udp_length < 8
                    or udp_length > payload_length
                    or kinds[source_port] & PORT_TUNNEL
                    or kinds[destination_port] & PORT_TUNNEL
                ):
                    first = transport + UDP_HEADER
                    stop = transport + udp_length
                    if kinds[source_port] & PORT_DNS or kinds[destination_port] & PORT_DNS:
                        if self._owns_message(data, first, stop):
                            self.fast_frames += 1
                            self.fast_packets += 1
                            self._advance(ts)
                            if first != stop:
                                self._dns(
                                    data, first, stop, ts, v6, source_ip, destination_ip,
                                    source_port, destination_port, frame + 6, vlan,
                                )
                        else:
                            self._advance(ts)
                        return
                    if first == stop or (
                        data[first] & QUIC_LONG_HEADER != QUIC_LONG_HEADER
                        and not (
                            kinds[source_port] & PORT_DHCP and kinds[destination_port] & PORT_DHCP
                        )
                    ):
                        # Neither DHCP nor a QUIC long header: nothing to read.
                        if self._owns_frame(index):
                            self.fast_frames += 1
                            self.fast_packets += 1
                        self._advance(ts)
                        return
                    src = _ipv6_text(source_ip) if v6 else _ipv4_text(source_ip)
                    dst = _ipv6_text(destination_ip) if v6 else _ipv4_text(destination_ip)
                    if not self._owns_flow(src, dst):
                        self._advance(ts)
                        return
                    self.fast_frames += 1
                    self._udp(ts, src, dst, source_port, destination_port, data[first:stop], frame + 6, vlan)
                    return
            elif protocol == IPPROTO_TCP and payload_length >= TCP_HEADER:
                seq = _be32(data + transport + 4)
                header_length = (data[transport + 12] >> 4) << 2
                tcp_flags = data[transport + 13]
                if TCP_HEADER <= header_length <= payload_length:
                    first = transport + header_length
                    if first == ip_end and not tcp_flags & (TCP_FIN | TCP_SYN | TCP_RST):
                        if self._owns_frame(index):
                            self.fast_frames += 1
                        return  # the decoder returns nothing for it: not a packet
                    if v6:
                        src = _ipv6_text(source_ip)
                        dst = _ipv6_text(destination_ip)
                    else:
                        src = _ipv4_text(source_ip)
                        dst = _ipv4_text(destination_ip)
                    if not self._owns_flow(src, dst):
                        self._advance(ts)
                        return
                    self.fast_frames += 1
                    if not tcp_flags & TCP_SYN and (src, source_port, dst, destination_port) in self.ignored:
                        self.fast_packets += 1
                        self._advance(ts)
                        return
                    self._tcp(
                        ts, src, dst, source_port, destination_port, data[first:ip_end],
                        frame + 6, vlan, seq, tcp_flags,
                    )
                    return
        # -- every other frame: the general path -------------------------------------------
        general = _new_tuple(Frame, (ts, linktype, data[start:end]))
        if self.shares == 1:
            self._add(self.process(general))
        else:
            self._add(self.process_shared(general, self.owns_packet, self._owns_frame(index)))

    # -- twins of ``Pipeline.process_packet`` with ``Extractor._feed_tcp`` and ``_feed_udp`` ---
    # The same calls on the same extractor state, in the same order, without the Packet (made
    # only for a segment that completes stream bytes, or a datagram that yields a name) and
    # without four Python calls a packet.

    cdef _tcp(
        self,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        bytes payload,
        const uint8_t* mac,
        int vlan,
        uint32_t seq,
        int tcp_flags,
    ):
        """A TCP segment, as ``process_packet`` (``Extractor._feed_tcp``) reads it."""
        cdef const uint8_t* kinds = self.kinds
        self.fast_packets += 1
        flow = (src, source_port, dst, destination_port)
        try:
            self._advance(ts)
            data = self.feed_stream(flow, ts, seq, tcp_flags, payload)
            evicted = self.evicted
            if evicted:
                for gone in evicted:
                    self.buffers.pop(gone, None)
                evicted.clear()
            if self.streams.skipped_gap:
                self.buffers.pop(flow, None)  # the new bytes do not follow the buffered ones
            observations = None
            if data:
                if kinds[destination_port] & PORT_DNS or kinds[source_port] & PORT_DNS:
                    observations = self._dns_stream(
                        flow, data, ts, src, dst, source_port, destination_port, mac, vlan,
                        payload, seq, tcp_flags,
                    )
                else:
                    observations = self._tls_stream(
                        flow, data, ts, src, dst, source_port, destination_port, payload, mac,
                        vlan, seq, tcp_flags,
                    )
            if tcp_flags & (TCP_FIN | TCP_RST):
                self.buffers.pop(flow, None)
        except ValueError:
            self._malformed("extract")
            observations = None
        except Exception as e:
            self.count_bug("extract", e)
            observations = None
        self._add_extracted(observations)

    cdef _tls_stream(
        self,
        flow,
        bytes data,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        bytes payload,
        const uint8_t* mac,
        int vlan,
        uint32_t seq,
        int tcp_flags,
    ):
        """``Extractor.tls_stream`` for the first bytes of a flow in the two common cases,
        with the same effects: a server's first record (given up on), and a whole ClientHello
        record (read, then given up on). Anything else goes to ``Extractor.tls_stream``.

        The server's records are those of ``extractor.TLS_SERVER_RECORD_STARTS`` and a
        handshake record (``tls.HANDSHAKE_RECORD_START``) carrying a ServerHello: both in the
        ``stream_starts`` table, by the stream's first two bytes."""
        cdef const uint8_t* d = data
        cdef Py_ssize_t n = len(data)
        cdef int start
        if flow not in self.buffers and n > TLS_RECORD_HEADER:
            start = self.starts[_be16(d)]
            if start & STREAM_SERVER_RECORD or (
                start & STREAM_HANDSHAKE_RECORD and d[TLS_RECORD_HEADER] == HANDSHAKE_SERVER_HELLO
            ):
                self.give_up(flow)  # a server's ChangeCipherSpec, alert, data or ServerHello
                return None
            if self.find_record(data) == 0:
                # ``tls_stream`` would find a ClientHello at 0: read it as it would.
                try:
                    hello = self.read_records(data)
                except ValueError:
                    hello = None  # the Python path counts it and looks further on
                if hello is not None:
                    self.give_up(flow)
                    if hello.sni is None:
                        return None
                    return [self.hello_observation(
                        self._packet(ts, src, dst, IPPROTO_TCP, source_port, destination_port,
                                     payload, mac, vlan, seq, tcp_flags),
                        PROTO_TLS,
                        hello,
                    )]
        return self.tls_stream(
            self._packet(ts, src, dst, IPPROTO_TCP, source_port, destination_port, payload, mac,
                         vlan, seq, tcp_flags),
            flow,
            data,
        )

    cdef _packet(
        self,
        double ts,
        str src,
        str dst,
        int protocol,
        int source_port,
        int destination_port,
        bytes payload,
        const uint8_t* mac,
        int vlan,
        uint32_t seq,
        int tcp_flags,
    ):
        return _new_tuple(
            Packet,
            (
                ts, src, dst, protocol, source_port, destination_port, payload, _mac_text(mac),
                None if vlan == 0 else vlan, seq, tcp_flags,
            ),
        )

    cdef _udp(
        self,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        bytes payload,
        const uint8_t* mac,
        int vlan,
    ):
        """A UDP datagram of no DNS port, not empty: as ``process_packet``
        (``Extractor._feed_udp``) reads it: DHCP, or a QUIC long header."""
        cdef const uint8_t* kinds = self.kinds
        self.fast_packets += 1
        try:
            self._advance(ts)
            if kinds[destination_port] & PORT_DHCP and kinds[source_port] & PORT_DHCP:
                observations = self.dhcp(
                    self._packet(
                        ts, src, dst, IPPROTO_UDP, source_port, destination_port, payload, mac,
                        vlan, 0, 0,
                    )
                )
            else:  # ``frame`` passes on only DHCP and QUIC long headers
                observations = self._quic(ts, src, dst, source_port, destination_port, payload, mac, vlan)
        except ValueError:
            self._malformed("extract")
            observations = None
        except Exception as e:
            self.count_bug("extract", e)
            observations = None
        self._add_extracted(observations)

    cdef _quic(
        self,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        bytes payload,
        const uint8_t* mac,
        int vlan,
    ):
        """``Extractor._quic``."""
        if not self.looks_like_quic(payload):
            return None
        try:
            found = self.feed_quic((src, source_port, dst, destination_port), ts, payload)
        except ValueError:
            self._malformed("quic")
            return None
        if found is None:
            return None
        try:
            hello = self.read_hello(found.client_hello)
        except ValueError:
            self._malformed("quic")
            return None
        if hello is None or hello.sni is None:
            return None
        packet = self._packet(
            ts, src, dst, IPPROTO_UDP, source_port, destination_port, payload, mac, vlan, 0, 0
        )
        return [self.hello_observation(packet, PROTO_QUIC, hello)]

    cdef _malformed(self, str stage):
        malformed = self.counters.malformed
        malformed[stage] = malformed.get(stage, 0) + 1

    cdef _add_extracted(self, observations):
        """``_add`` for what the twins above extracted, counted as ``process_packet`` counts."""
        if observations:
            self.counters.observations += len(observations)
        self._add(observations)

    cdef _dns(
        self,
        const uint8_t* data,
        Py_ssize_t first,
        Py_ssize_t stop,
        double ts,
        bint v6,
        const uint8_t* source_ip,
        const uint8_t* destination_ip,
        int source_port,
        int destination_port,
        const uint8_t* mac,
        int vlan,
    ):
        """DNS over UDP, rendered here (observing: read as ``Extractor._feed_udp`` does)."""
        if v6:
            src = _ipv6_text(source_ip)
            dst = _ipv6_text(destination_ip)
        else:
            src = _ipv4_text(source_ip)
            dst = _ipv4_text(destination_ip)
        if self.observing:
            packet = self._packet(
                ts, src, dst, IPPROTO_UDP, source_port, destination_port, data[first:stop], mac,
                vlan, 0, 0,
            )
            try:
                observations = self.dns_message(packet, data[first:stop], tcp=False)
            except ValueError:
                self._malformed("extract")
                observations = None
            except Exception as e:
                self.count_bug("extract", e)
                observations = None
            self._add_extracted(observations)
            return
        entry = self._dns_entry(data + first, stop - first)
        if entry is not None:
            self._dns_lines(entry, 0, ts, src, dst, source_port, destination_port, mac, vlan)

    cdef _dns_entry(self, const uint8_t* message, Py_ssize_t length):
        """The rendering of a DNS message: remembered, read here, or read by Python (None
        when it cannot be read: counted there)."""
        key = message[2:length] if length > 2 else b""
        entry = self.cached_entry(key)
        if entry is None:
            entry = _common_dns_entry(
                message, length, self.no_answer, self.doh_resolver_names, self.plain
            )
            if entry is None:  # not the common message: Python reads it
                return self.new_entry(message[:length])
            self.remember(message[:length], entry)
        return entry

    cdef _dns_lines(
        self,
        entry,
        int transport_bits,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        const uint8_t* mac,
        int vlan,
    ):
        """The JSON lines of one DNS message, as ``render_jsonl`` writes the observations
        ``Extractor._dns_observations`` makes of it (``transport_bits``: ``DNS_TCP`` or 0)."""
        cdef int bits = transport_bits
        cdef const uint8_t* kinds = self.kinds
        is_response, questions = entry
        if kinds[source_port] & PORT_LOCAL_DNS or kinds[destination_port] & PORT_LOCAL_DNS:
            bits |= DNS_LOCAL
        if is_response:
            bits |= DNS_RESPONSE
            endpoints = (
                f'"client_ip":"{dst}","client_mac":null,'
                f'"server_ip":"{src}","server_port":{source_port},'
            )
        else:
            mac_text = _mac_text(mac)
            endpoints = (
                f'"client_ip":"{src}","client_mac":"{mac_text}",'
                f'"server_ip":"{dst}","server_port":{destination_port},'
            )
        head = f'{{"ts":{repr(ts)},"proto":"dns","name":'
        vlan_end = ',"vlan":null}' if vlan == 0 else f',"vlan":{vlan}}}'
        flags_json = self.flags_json
        lines = self.lines
        for name_json, encrypted, answer in questions:
            lines.append(
                f"{head}{name_json},{endpoints}"
                f'"flags":{flags_json[bits | encrypted]},{answer}{vlan_end}'
            )
            self.dns_lines += 1

    cdef _dns_stream(
        self,
        flow,
        bytes data,
        double ts,
        str src,
        str dst,
        int source_port,
        int destination_port,
        const uint8_t* mac,
        int vlan,
        bytes payload,
        uint32_t seq,
        int tcp_flags,
    ):
        """``Extractor._dns_stream``: DNS over TCP, its messages rendered as over UDP (observing:
        the observations, for ``_tcp`` to add)."""
        cdef const uint8_t* message
        observations = None
        buffer = self.buffers.get(flow)
        if buffer is None:
            buffer = self.buffers[flow] = bytearray()
        buffer += data
        try:
            messages, consumed = split_tcp_dns_stream(bytes(buffer))
        except ValueError:
            self._malformed("dns")
            self.give_up(flow)
            return None
        del buffer[:consumed]
        if self.observing:
            observations = []
            if messages:
                packet = self._packet(
                    ts, src, dst, IPPROTO_TCP, source_port, destination_port, payload, mac, vlan,
                    seq, tcp_flags,
                )
                for each in messages:
                    observations += self.dns_message(packet, each, tcp=True)
            return observations
        for each in messages:
            message = <const uint8_t*><const char*>each
            entry = self._dns_entry(message, len(each))
            if entry is not None:
                self._dns_lines(
                    entry, DNS_TCP, ts, src, dst, source_port, destination_port, mac, vlan
                )
        return None


def walk_records(walk, buf, Py_ssize_t base, Py_ssize_t pos, Py_ssize_t size, Py_ssize_t last):
    """Walk the records of one window that start at ``pos`` up to ``last`` (see
    ``fastscan._Windows``), adding their lines and counts to ``walk``; ``walk.pos`` ends where
    the walk stopped: after the last record, at a record that runs past ``size``, or at a
    record longer than ``walk.max_caplen`` (``walk.damaged``). ``base``: the file offset of
    ``buf[0]``."""
    if pos > last:
        walk.pos = pos
        return
    cdef const uint8_t[::1] view = buf
    cdef const uint8_t* data = &view[0]
    cdef _FrameLoop loop = _FrameLoop(walk)
    cdef int linktype = walk.linktype
    cdef double scale = walk.scale
    cdef bint little = walk.little_endian
    cdef Py_ssize_t frames = walk.frames, walked = walk.frames
    # The largest possible captured length: monitor.sources.damage decides it, for the file.
    cdef uint32_t max_caplen = walk.max_caplen
    cdef const uint8_t* record
    cdef uint32_t sec, frac, caplen
    cdef Py_ssize_t start, end
    cdef double ts = 0.0
    try:
        while pos <= last:
            record = data + pos
            if little:
                sec = _le32(record)
                frac = _le32(record + 4)
                caplen = _le32(record + 8)
            else:
                sec = _be32(record)
                frac = _be32(record + 4)
                caplen = _be32(record + 8)
            start = pos + RECORD_HEADER_BYTES
            end = start + caplen
            if end > size or caplen > max_caplen:
                walk.damaged = caplen > max_caplen
                break
            pos = end
            frames += 1
            ts = <double>sec + <double>frac * scale
            loop.frame(data, start, end, ts, linktype, frames)
            if loop.shares > 1:
                loop.tag(frames)
    finally:
        walk.pos = pos
        walk.frames = frames
        if frames > walked:
            walk.last_ts = ts
        loop.save()


def walk_frames(walk, frames):
    """Handle ``Frame`` values (from any capture reader: pcapng files) as ``walk_records``
    handles the records of a classic pcap file, adding their lines and counts to ``walk``."""
    cdef _FrameLoop loop = _FrameLoop(walk)
    cdef bytes data
    cdef double ts
    cdef int linktype
    cdef Py_ssize_t before = walk.frames, count = 0, index
    try:
        for ts, linktype, data in frames:
            count += 1
            index = before + count
            if data:
                loop.frame(
                    <const uint8_t*>PyBytes_AS_STRING(data), 0, len(data), ts, linktype, index
                )
            elif loop._owns_frame(index):  # an empty frame: only counted
                loop._add(loop.process(_new_tuple(Frame, (ts, linktype, data))))
            if loop.shares > 1:
                loop.tag(index)
    finally:
        walk.frames += count
        loop.save()


def observe_frames(walk, frames):
    """``Frame`` values of a live capture (one socket drain), through the same per-frame
    decisions as ``walk_frames``: their ``Observation`` values, in order, as
    ``Pipeline.batches`` yields them. ``walk`` is an observing ``RecordWalk``
    (``observing=True``); the pipeline's counters are complete when it returns."""
    if not walk.observing:
        raise ValueError("observe_frames needs an observing RecordWalk")
    try:
        walk_frames(walk, frames)
    finally:
        walk.flush_totals()
    observations = walk.lines
    walk.lines = []
    return observations


def merge_lines(list frames_a, list lines_a, list frames_b, list lines_b):
    """Two processes' lines of one stretch of the file, each in frame order with the frame
    number of every line, as one list in frame order, and the frame numbers of the result."""
    cdef Py_ssize_t i = 0, j = 0, size_a = len(lines_a), size_b = len(lines_b)
    cdef list lines = []
    cdef list frames = []
    while i < size_a and j < size_b:
        if <Py_ssize_t>frames_a[i] <= <Py_ssize_t>frames_b[j]:
            lines.append(lines_a[i])
            frames.append(frames_a[i])
            i += 1
        else:
            lines.append(lines_b[j])
            frames.append(frames_b[j])
            j += 1
    lines.extend(lines_a[i:])
    frames.extend(frames_a[i:])
    lines.extend(lines_b[j:])
    frames.extend(frames_b[j:])
    return frames, lines
