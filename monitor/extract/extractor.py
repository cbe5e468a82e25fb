"""Route each decoded packet to the parsers that can read a name from it.

The parsers in this package each know one protocol; this module knows which packet goes
where (ports for DNS and DHCP, content for TLS and QUIC on any port), keeps the per-flow state
they need (TCP streams, QUIC connections), and turns their results into ``Observation`` values.
Malformed input is counted per stage and never stops the next packet.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from monitor.extract import compiled as twins
from monitor.extract import dhcp, dns, quic, tls
from monitor.extract.reassembly import Reassembler
from monitor.values import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_FIN,
    TCP_RST,
    Flag,
    FlowKey,
    Observation,
    Packet,
    Proto,
    StageCounters,
)

DHCP_PORTS = frozenset({67, 68})
DNS_OVER_TLS_PORT = 853
"""DNS over TLS (RFC 7858) and DNS over QUIC (RFC 9250) both use port 853."""

DOH_RESOLVER_NAMES = frozenset(
    {
        "dns.google",
        "dns.google.com",
        "dns64.dns.google",
        "cloudflare-dns.com",
        "mozilla.cloudflare-dns.com",
        "chrome.cloudflare-dns.com",
        "one.one.one.one",
        "1dot1dot1dot1.cloudflare-dns.com",
        "security.cloudflare-dns.com",
        "family.cloudflare-dns.com",
        "dns.quad9.net",
        "dns9.quad9.net",
        "dns10.quad9.net",
        "dns11.quad9.net",
        "doh.opendns.com",
        "doh.familyshield.opendns.com",
        "dns.nextdns.io",
        "doh.cleanbrowsing.org",
        "dns.adguard.com",
        "dns.adguard-dns.com",
        "doh.mullvad.net",
        "dns.alidns.com",
        "doh.pub",
        "dns.controld.com",
        "freedns.controld.com",
    }
)
"""Well-known DNS-over-HTTPS resolver names: a TLS or QUIC connection to one hides later lookups."""

TLS_SCAN_WINDOW_BYTES = 8192
"""How far into a TCP stream to look for a ClientHello after plaintext (STARTTLS, SOCKS, RDP)."""

EXPIRE_EVERY_S = 10.0
"""How often (in capture time) idle TCP and QUIC state is dropped."""

TLS_SERVER_RECORD_STARTS = (b"\x14\x03", b"\x15\x03", b"\x17\x03")
"""ChangeCipherSpec, Alert, ApplicationData: a stream that starts so is past its ClientHello.
(The compiled scan loop decides by this tuple too, as data: ``monitor.fastscan.loop_rules``.)"""

LOCAL_DNS_PORTS = frozenset({dns.MDNS_PORT, dns.LLMNR_PORT})

DNS_TCP, DNS_LOCAL, DNS_RESPONSE, DNS_ENCRYPTED = 1, 2, 4, 8
DNS_FLAG_SETS = tuple(
    frozenset(
        flag
        for bit, flag in (
            (DNS_TCP, Flag.TCP),
            (DNS_LOCAL, Flag.LOCAL),
            (DNS_RESPONSE, Flag.RESPONSE),
            (DNS_ENCRYPTED, Flag.ENCRYPTED_DNS),
        )
        if bits & bit
    )
    for bits in range(16)
)
"""A DNS observation's flags by their bits above: shared frozensets, none built per packet."""

_HELLO_FLAG_SETS: tuple[frozenset[Flag], ...] = (
    frozenset(),
    frozenset({Flag.ECH}),
    frozenset({Flag.ENCRYPTED_DNS}),
    frozenset({Flag.ECH, Flag.ENCRYPTED_DNS}),
)
"""A TLS or QUIC observation's flags: ECH (bit 1), encrypted DNS (bit 2)."""

# A frozen dataclass's __init__ sets each field through object.__setattr__; setting the slots
# through their descriptors builds the same Observation in less than half the time (the same
# trick as ``dns._new_message``). Observation(...) stays the public way to make one.
_OBSERVATION_FIELDS = (
    "ts",
    "proto",
    "name",
    "client_ip",
    "client_mac",
    "server_ip",
    "server_port",
    "flags",
    "cnames",
    "addresses",
    "vlan",
)
if tuple(field.name for field in dataclasses.fields(Observation)) != _OBSERVATION_FIELDS:
    raise RuntimeError("Observation's fields changed: update _new_observation to match")
_OBSERVATION_SLOTS = tuple(getattr(Observation, name).__set__ for name in _OBSERVATION_FIELDS)


def _new_observation(
    ts: float,
    proto: Proto,
    name: str,
    client_ip: str,
    client_mac: str | None,
    server_ip: str,
    server_port: int,
    flags: frozenset[Flag],
    cnames: tuple[str, ...],
    addresses: tuple[str, ...],
    vlan: int | None,
) -> Observation:
    """``Observation(...)`` with every field given, positionally, at half the cost."""
    observation: Observation = object.__new__(Observation)
    (
        set_ts,
        set_proto,
        set_name,
        set_client_ip,
        set_client_mac,
        set_server_ip,
        set_server_port,
        set_flags,
        set_cnames,
        set_addresses,
        set_vlan,
    ) = _OBSERVATION_SLOTS
    set_ts(observation, ts)
    set_proto(observation, proto)
    set_name(observation, name)
    set_client_ip(observation, client_ip)
    set_client_mac(observation, client_mac)
    set_server_ip(observation, server_ip)
    set_server_port(observation, server_port)
    set_flags(observation, flags)
    set_cnames(observation, cnames)
    set_addresses(observation, addresses)
    set_vlan(observation, vlan)
    return observation


class Extractor:
    """Turns packets into observations; holds the bounded per-flow state that needs.

    ``compiled`` chooses the readers (``monitor.extract.compiled``): their compiled twins when
    built (``None``), always (``True``), or the Python ones (``False``).
    """

    def __init__(
        self,
        counters: StageCounters,
        *,
        dns_ports: Iterable[int] = dns.DNS_PORTS,
        reassembler: Reassembler | None = None,
        quic_tracker: quic.InitialTracker | None = None,
        compiled: bool | None = None,
    ) -> None:
        self.counters = counters
        self.dns_ports = frozenset(dns_ports)
        self.streams = (
            reassembler if reassembler is not None else twins.stream_reassembler(compiled)
        )
        self.quic = quic_tracker if quic_tracker is not None else twins.quic_tracker(compiled)
        self.hello_readers = twins.hello_readers(compiled)
        """The ClientHello readers (``monitor.extract.tls`` or its compiled twin)."""
        self.buffers: dict[FlowKey, bytearray] = {}
        """Per directed TCP flow, the stream bytes kept until a ClientHello or a DNS message is
        complete. This and the methods below that ``feed`` calls are public for the compiled
        record loop (``monitor/compiled/scanloop.pyx``), which passes TCP and UDP on as ``feed`` does."""
        self._next_expiry = -math.inf
        """Capture time of the next expiry pass; -inf until the first packet sets the clock."""
        self._clock_started = False

    def feed(self, packet: Packet) -> list[Observation]:
        """Every observation this packet completes (usually none or one)."""
        if packet.ts >= self._next_expiry:
            self._expire_if_due(packet.ts)
        protocol = packet.protocol
        if protocol == IPPROTO_UDP:
            return self._feed_udp(packet)
        if protocol == IPPROTO_TCP:
            return self._feed_tcp(packet)
        return []

    def advance(self, ts: float) -> None:
        """Account for a packet at ``ts`` that needs no other work (``feed`` does this first).

        For a TCP segment of a flow this extractor ignores (``streams.is_ignored``, no SYN),
        which the caller dropped before building a ``Packet``: ``feed`` would do only this.
        """
        if ts >= self._next_expiry:
            self._expire_if_due(ts)

    @property
    def next_expiry(self) -> float:
        """Capture time from which the next packet runs an expiry pass: a caller that handles
        a packet without ``feed`` or ``advance`` (``monitor.fastscan``) calls ``advance`` first
        when the packet's time reaches this."""
        return self._next_expiry

    # --- UDP ---------------------------------------------------------------------------

    def _feed_udp(self, packet: Packet) -> list[Observation]:
        payload = packet.payload
        if not payload:
            return []
        dns_ports = self.dns_ports
        if packet.dst_port in dns_ports or packet.src_port in dns_ports:
            return self.dns_message_observations(packet, payload, tcp=False)
        if packet.dst_port in DHCP_PORTS and packet.src_port in DHCP_PORTS:
            return self.dhcp_observations(packet)
        if payload[0] & 0x80:
            return self._quic(packet)
        return []

    def dhcp_observations(self, packet: Packet) -> list[Observation]:
        """The device name a DHCP packet carries, as an observation (none without one)."""
        try:
            lease = dhcp.parse_dhcp(packet.payload)
        except ValueError:
            self._malformed("dhcp")
            return []
        if lease is None or lease.host_name is None:
            return []
        return [
            Observation(
                ts=packet.ts,
                proto=Proto.DHCP,
                name=lease.host_name,
                client_ip=lease.requested_ip or packet.src_ip,
                client_mac=lease.client_mac,
                server_ip=packet.dst_ip,
                server_port=packet.dst_port,
                vlan=packet.vlan,
            )
        ]

    def _quic(self, packet: Packet) -> list[Observation]:
        payload = packet.payload
        if not quic.looks_like_quic_long_header(payload):
            return []
        try:
            found = self.quic.feed(packet.flow(), packet.ts, payload)
        except ValueError:
            self._malformed("quic")
            return []
        if found is None:
            return []
        try:
            hello = self.hello_readers.parse_client_hello_message(found.client_hello)
        except ValueError:
            self._malformed("quic")
            return []
        if hello is None or hello.sni is None:
            return []
        return [self.hello_observation(packet, Proto.QUIC, hello)]

    # --- DNS ---------------------------------------------------------------------------

    def dns_message_observations(
        self, packet: Packet, message: bytes, *, tcp: bool
    ) -> list[Observation]:
        """The observations of one DNS message ``packet`` carried (over TCP: one message of its
        stream); none, counted as malformed, when it cannot be read. The compiled loop's
        observing walk (the live daemon) reads DNS here too."""
        try:
            parsed = dns.parse_dns_message(message)
        except ValueError:
            self._malformed("dns")
            return []
        return self._dns_observations(packet, parsed, tcp=tcp)

    def _dns_observations(
        self, packet: Packet, message: dns.DnsMessage, *, tcp: bool
    ) -> list[Observation]:
        ts, src_ip, dst_ip, _, src_port, dst_port, _, src_mac, vlan, _, _ = packet
        bits = DNS_TCP if tcp else 0
        if dst_port in LOCAL_DNS_PORTS or src_port in LOCAL_DNS_PORTS:
            bits |= DNS_LOCAL
        is_response = message.is_response
        if is_response:
            bits |= DNS_RESPONSE
            client_ip, server_ip, server_port = dst_ip, src_ip, src_port
            client_mac = None
        else:
            client_ip, server_ip, server_port = src_ip, dst_ip, dst_port
            client_mac = src_mac
        new = _new_observation
        dns_proto = Proto.DNS
        observations = []
        for name in message.questions:
            flags = DNS_FLAG_SETS[bits | DNS_ENCRYPTED if name in DOH_RESOLVER_NAMES else bits]
            if is_response and (message.cnames or message.addresses):
                cnames, addresses = dns_answer_for(message, name)
            else:
                cnames = addresses = ()
            observations.append(
                new(
                    ts,
                    dns_proto,
                    name,
                    client_ip,
                    client_mac,
                    server_ip,
                    server_port,
                    flags,
                    cnames,
                    addresses,
                    vlan,
                )
            )
        return observations

    # --- TCP ---------------------------------------------------------------------------

    def _feed_tcp(self, packet: Packet) -> list[Observation]:
        ts, src_ip, dst_ip, _, src_port, dst_port, payload, _, _, seq, tcp_flags = packet
        flow = (src_ip, src_port, dst_ip, dst_port)
        streams = self.streams
        if not tcp_flags & 0x02 and streams.is_ignored(flow):
            return []
        data = streams.feed(flow, ts, seq, tcp_flags, payload)
        observations: list[Observation] = []
        if streams.evicted:
            for evicted in streams.evicted:
                self.buffers.pop(evicted, None)
            streams.evicted.clear()
        if streams.skipped_gap:
            self.buffers.pop(flow, None)  # the new bytes do not follow the buffered ones
        if data:
            if dst_port in self.dns_ports or src_port in self.dns_ports:
                observations = self._dns_stream(packet, flow, data)
            else:
                observations = self.tls_stream(packet, flow, data)
        if tcp_flags & (TCP_FIN | TCP_RST):
            self.buffers.pop(flow, None)
        return observations

    def _dns_stream(self, packet: Packet, flow: FlowKey, data: bytes) -> list[Observation]:
        buffer = self.buffers.setdefault(flow, bytearray())
        buffer += data
        try:
            messages, consumed = dns.split_tcp_dns_stream(bytes(buffer))
        except ValueError:
            self._malformed("dns")
            self.give_up(flow)
            return []
        del buffer[:consumed]
        observations: list[Observation] = []
        for message in messages:
            observations += self.dns_message_observations(packet, message, tcp=True)
        return observations

    def tls_stream(self, packet: Packet, flow: FlowKey, data: bytes) -> list[Observation]:
        """Stream bytes of a flow on no DNS port: the ClientHello's observation once it is
        complete; the flow is given up after it, or when it cannot be carrying one."""
        buffer = self.buffers.get(flow)
        if buffer is None:
            if data.startswith(TLS_SERVER_RECORD_STARTS) or _is_server_hello(data):
                self.give_up(flow)
                return []
            buffer = self.buffers[flow] = bytearray()
        buffer += data
        stream = bytes(buffer)
        readers = self.hello_readers
        start = readers.find_client_hello_record(stream)
        while start >= 0:
            try:
                hello = readers.parse_client_hello_records(stream[start:])
            except ValueError:
                # Something that only looked like a ClientHello: look further on, and spoil its
                # first byte so that the next segment's rescan neither counts nor parses it again.
                self._malformed("tls")
                buffer[start] = 0
                start = readers.find_client_hello_record(stream, start + 1)
                continue
            if hello is None:
                if len(stream) - start >= tls.MAX_CLIENT_HELLO_BYTES:
                    self.give_up(flow)
                return []
            break
        else:
            if len(stream) >= TLS_SCAN_WINDOW_BYTES:
                self.give_up(flow)
            return []
        self.give_up(flow)
        if hello.sni is None:
            return []
        return [self.hello_observation(packet, Proto.TLS, hello)]

    def give_up(self, flow: FlowKey) -> None:
        """Stop following a TCP flow: drop its bytes and ignore its later segments."""
        self.buffers.pop(flow, None)
        self.streams.forget(flow)

    # --- shared ------------------------------------------------------------------------

    def hello_observation(
        self, packet: Packet, proto: Proto, hello: tls.ClientHello
    ) -> Observation:
        """The observation of a ClientHello (TLS or QUIC) sent in ``packet``."""
        name = hello.sni or ""
        bits = 1 if hello.has_ech else 0
        if packet.dst_port == DNS_OVER_TLS_PORT or name in DOH_RESOLVER_NAMES:
            bits |= 2
        return _new_observation(
            packet.ts,
            proto,
            name,
            packet.src_ip,
            packet.src_mac,
            packet.dst_ip,
            packet.dst_port,
            _HELLO_FLAG_SETS[bits],
            (),
            (),
            packet.vlan,
        )

    def _malformed(self, stage: str) -> None:
        malformed = self.counters.malformed
        malformed[stage] = malformed.get(stage, 0) + 1

    def _expire_if_due(self, now: float) -> None:
        if not self._clock_started:
            self._clock_started = True
            self._next_expiry = now + EXPIRE_EVERY_S
        elif now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY_S
            self.streams.expire(now)
            self.quic.expire(now)
            live = self.buffers.keys() - self.streams.flows()
            for flow in live:
                del self.buffers[flow]


def dns_answer_for(message: dns.DnsMessage, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a response says about one of its questions: the CNAME chain from ``name`` and the
    A/AAAA addresses of the names on it (``name`` included), in answer order.

    Shared with ``monitor.fastscan``, which renders DNS observations without building them.
    """
    cnames = dns.cname_chain(message, name) if message.cnames else ()
    message_addresses = message.addresses
    if not message_addresses:
        return cnames, ()
    if cnames:
        owners = {name, *cnames}
        return cnames, tuple([addr for owner, addr in message_addresses if owner in owners])
    return cnames, tuple([addr for owner, addr in message_addresses if owner == name])


def _is_server_hello(data: bytes) -> bool:
    """A TLS handshake record whose first message is a ServerHello."""
    return (
        len(data) > tls.RECORD_HEADER_LEN
        and data.startswith(tls.HANDSHAKE_RECORD_START)
        and data[tls.RECORD_HEADER_LEN] == tls.HANDSHAKE_SERVER_HELLO
    )
