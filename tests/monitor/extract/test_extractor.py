"""Specification of the extractor: which packet goes to which parser, and what it reports.

Packets are built as ``monitor.values.Packet`` values directly (no decoder), with payloads from
scapy, from the benchmark's QUIC builder, or written out by hand. Expected observations are made
with the public ``Observation(...)`` constructor, so the extractor's fast construction path is
checked against it on every test.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.tls.extensions import (
    ServerName,
    TLS_Ext_Padding,
    TLS_Ext_ServerName,
    TLS_Ext_Unknown,
)
from scapy.layers.tls.handshake import TLSClientHello, TLSServerHello
from scapy.layers.tls.record import TLS

from monitor.extract import dns
from monitor.extract.extractor import (
    EXPIRE_EVERY_S,
    TLS_SCAN_WINDOW_BYTES,
    Extractor,
    dns_answer_for,
)
from monitor.extract.quic import QuicInitialTracker
from monitor.extract.reassembly import StreamReassembler
from monitor.values import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Flag,
    Observation,
    Packet,
    Proto,
    StageCounters,
)
from tests.bench.make_mix import (
    HelloOptions,
    QuicInitialKeys,
    build_client_hello,
    build_quic_initial,
)
from tests.data.traffic import (
    CLIENT_IP,
    CLIENT_MAC,
    GATEWAY_MAC,
    RESOLVER_IP,
    SERVER_IP,
    client_hello_bytes,
)
from tests.monitor.test_pipeline import real_quic_initial

T0 = 1_700_000_000.0
TCP_PSH_ACK = 0x08 | TCP_ACK
CLIENT_PORT = 50000
ISN = 1000
VLAN = 20

# --- packet builders --------------------------------------------------------------------


def udp(
    payload: bytes,
    *,
    sport: int = CLIENT_PORT,
    dport: int = 53,
    src: str = CLIENT_IP,
    dst: str = RESOLVER_IP,
    ts: float = T0,
    mac: str | None = CLIENT_MAC,
    vlan: int | None = None,
) -> Packet:
    return Packet(ts, src, dst, IPPROTO_UDP, sport, dport, payload, mac, vlan)


def tcp(
    payload: bytes,
    *,
    seq: int,
    flags: int = TCP_PSH_ACK,
    sport: int = CLIENT_PORT,
    dport: int = 443,
    src: str = CLIENT_IP,
    dst: str = SERVER_IP,
    ts: float = T0,
    mac: str | None = CLIENT_MAC,
    vlan: int | None = None,
) -> Packet:
    return Packet(ts, src, dst, IPPROTO_TCP, sport, dport, payload, mac, vlan, seq, flags)


def client_stream(
    parts: list[bytes],
    *,
    dport: int = 443,
    sport: int = CLIENT_PORT,
    syn: bool = True,
    ts: float = T0,
    vlan: int | None = None,
) -> list[Packet]:
    """A client's SYN, then ``parts`` as consecutive in-order segments, 1 ms apart."""
    packets = [tcp(b"", seq=ISN, flags=TCP_SYN, sport=sport, dport=dport, ts=ts)] if syn else []
    offset = 0
    for index, part in enumerate(parts, start=1):
        packets.append(
            tcp(
                part,
                seq=ISN + 1 + offset,
                sport=sport,
                dport=dport,
                ts=ts + index * 0.001,
                vlan=vlan,
            )
        )
        offset += len(part)
    return packets


def feed_all(extractor: Extractor, packets: list[Packet]) -> list[Observation]:
    observations: list[Observation] = []
    for packet in packets:
        observations += extractor.feed(packet)
    return observations


def new_extractor(*, dns_ports: Iterable[int] | None = None) -> tuple[Extractor, StageCounters]:
    counters = StageCounters()
    if dns_ports is None:
        return Extractor(counters), counters
    return Extractor(counters, dns_ports=dns_ports), counters


# --- payload builders -------------------------------------------------------------------


def dns_query(*names: str, qid: int = 0x1234) -> bytes:
    return bytes(DNS(id=qid, rd=1, qd=[DNSQR(qname=name) for name in names]))


def dns_response(name: str, answers: list[tuple[str, str, str]], *, qid: int = 0x1234) -> bytes:
    """A response to ``name`` with answers given as (owner, type, data)."""
    records = [DNSRR(rrname=owner, type=rtype, rdata=data) for owner, rtype, data in answers]
    return bytes(DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=records))


def tcp_dns(message: bytes) -> bytes:
    """A DNS message as carried over TCP: behind its 2-byte length (RFC 1035 4.2.2)."""
    return len(message).to_bytes(2, "big") + message


def hello_record(name: str | None, *, ech: bool = False, padding: int = 0) -> bytes:
    """A TLS record with a ClientHello: SNI ``name`` (none if None), ECH, padding."""
    extensions: list[object] = []
    if name is not None:
        extensions.append(TLS_Ext_ServerName(servernames=[ServerName(servername=name.encode())]))
    if ech:
        # encrypted_client_hello (0xfe0d): outer type, cipher suite, config id, enc, payload.
        extensions.append(TLS_Ext_Unknown(type=0xFE0D, val=bytes(1 + 4 + 1 + 2 + 2 + 32)))
    if padding:
        extensions.append(TLS_Ext_Padding(padding=bytes(padding)))
    return bytes(TLS(msg=[TLSClientHello(ciphers=[0x1301, 0x1302], ext=extensions)]))


def quic_initials(name: str, *, ech: bool = False, split: int | None = None) -> list[bytes]:
    """A QUIC v1 client's Initial datagrams for ``name``: one, or two when its ClientHello
    is split at byte ``split`` across two CRYPTO frames in two Initial packets."""
    dcid, scid = bytes(range(8)), bytes(range(8, 16))
    keys = QuicInitialKeys(dcid, b"client in")
    hello = build_client_hello(random.Random(1), HelloOptions(name, False, ech, scid))
    cuts = [0, len(hello)] if split is None else [0, split, len(hello)]
    datagrams = []
    for number, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        # CRYPTO frame: type 0x06, offset and length as 2-byte varints (0x4000 | value).
        frame = b"\x06" + varint2(start) + varint2(end - start)
        datagrams.append(build_quic_initial(keys, dcid, scid, number, 1, frame + hello[start:end]))
    return datagrams


def varint2(value: int) -> bytes:
    """A QUIC variable-length integer in its 2-byte form (RFC 9000 section 16)."""
    return (0x4000 | value).to_bytes(2, "big")


def dhcp_request(*options: object, mac: str = CLIENT_MAC, op: int = 1) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    return bytes(BOOTP(op=op, chaddr=chaddr) / DHCP(options=[*options, "end"]))


# --- DNS over UDP -----------------------------------------------------------------------


def test_extractor_dns_query_names_the_sender_as_client() -> None:
    extractor, counters = new_extractor()
    packet = udp(dns_query("www.instagram.com"), ts=T0 + 1.5, vlan=VLAN)
    assert extractor.feed(packet) == [
        Observation(
            ts=T0 + 1.5,
            proto=Proto.DNS,
            name="www.instagram.com",
            client_ip=CLIENT_IP,
            client_mac=CLIENT_MAC,
            server_ip=RESOLVER_IP,
            server_port=53,
            vlan=VLAN,
        )
    ]
    assert counters.malformed == {}


def test_extractor_dns_response_names_the_receiver_as_client_with_cname_chain() -> None:
    extractor, _ = new_extractor()
    answer = dns_response(
        "WWW.Instagram.COM",
        [
            ("www.instagram.com", "CNAME", "z-p42-instagram.c10r.instagram.com"),
            ("z-p42-instagram.c10r.instagram.com", "CNAME", "edge.fbcdn.net"),
            ("edge.fbcdn.net", "A", "157.240.221.174"),
            ("edge.fbcdn.net", "AAAA", "2a03:2880:f20e:e5:face:b00c:0:4420"),
            ("unrelated.example", "A", "192.0.2.99"),  # not on the chain: not its address
        ],
    )
    packet = udp(answer, sport=53, dport=CLIENT_PORT, src=RESOLVER_IP, dst=CLIENT_IP)
    assert extractor.feed(packet._replace(src_mac=GATEWAY_MAC)) == [
        Observation(
            ts=T0,
            proto=Proto.DNS,
            name="www.instagram.com",
            client_ip=CLIENT_IP,
            client_mac=None,  # the frame's MAC is the resolver's (or the gateway's)
            server_ip=RESOLVER_IP,
            server_port=53,
            flags=frozenset({Flag.RESPONSE}),
            cnames=("z-p42-instagram.c10r.instagram.com", "edge.fbcdn.net"),
            addresses=("157.240.221.174", "2a03:2880:f20e:e5:face:b00c:0:4420"),
        )
    ]


def test_extractor_dns_response_without_cname_keeps_the_question_addresses() -> None:
    extractor, _ = new_extractor()
    answer = dns_response(
        "example.org", [("example.org", "A", "192.0.2.1"), ("other.example", "A", "192.0.2.2")]
    )
    (observation,) = extractor.feed(udp(answer, sport=53, dport=CLIENT_PORT))
    assert (observation.cnames, observation.addresses) == ((), ("192.0.2.1",))


def test_extractor_dns_reports_every_question_of_a_message() -> None:
    extractor, _ = new_extractor()
    observations = extractor.feed(udp(dns_query("a.example", "b.example")))
    assert [observation.name for observation in observations] == ["a.example", "b.example"]


@pytest.mark.parametrize(
    ("sport", "dport", "response", "dns_ports", "expected"),
    [
        pytest.param(CLIENT_PORT, 53, False, None, frozenset(), id="query to 53"),
        pytest.param(53, CLIENT_PORT, True, None, {Flag.RESPONSE}, id="response from 53"),
        pytest.param(5353, 5353, False, None, {Flag.LOCAL}, id="mDNS query"),
        pytest.param(5353, 5353, True, None, {Flag.LOCAL, Flag.RESPONSE}, id="mDNS response"),
        pytest.param(CLIENT_PORT, 5355, False, None, {Flag.LOCAL}, id="LLMNR query"),
        pytest.param(
            5355, CLIENT_PORT, True, None, {Flag.LOCAL, Flag.RESPONSE}, id="LLMNR response"
        ),
        pytest.param(CLIENT_PORT, 8053, False, None, None, id="port 8053 not configured"),
        pytest.param(CLIENT_PORT, 8053, False, {53, 8053}, frozenset(), id="8053 configured"),
        pytest.param(CLIENT_PORT, 53, False, {8053}, None, id="the configured ports replace 53"),
    ],
)
def test_extractor_dns_flags_by_port(
    sport: int,
    dport: int,
    response: bool,
    dns_ports: set[int] | None,
    expected: frozenset[Flag] | None,
) -> None:
    extractor, counters = new_extractor(dns_ports=dns_ports)
    payload = (
        dns_response("printer.local", [("printer.local", "A", "10.20.0.9")])
        if response
        else dns_query("printer.local")
    )
    observations = extractor.feed(udp(payload, sport=sport, dport=dport))
    if expected is None:
        assert observations == []
    else:
        assert [(o.name, o.flags) for o in observations] == [("printer.local", expected)]
    assert counters.malformed == {}


@pytest.mark.parametrize("name", ["dns.google", "cloudflare-dns.com", "DNS.Quad9.net"])
def test_extractor_dns_lookup_of_a_doh_resolver_is_flagged_encrypted_dns(name: str) -> None:
    extractor, _ = new_extractor()
    (observation,) = extractor.feed(udp(dns_query(name)))
    assert observation.flags == {Flag.ENCRYPTED_DNS}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x12\x34\x01", id="shorter than a header"),
        pytest.param(bytes.fromhex("1234 0100 0005 0000 0000 0000"), id="5 questions, no bytes"),
        pytest.param(bytes.fromhex("1234 0100 0001 0000 0000 0000 3f61"), id="label past end"),
    ],
)
def test_extractor_malformed_dns_is_counted_and_the_next_packet_still_read(
    payload: bytes,
) -> None:
    extractor, counters = new_extractor()
    assert extractor.feed(udp(payload)) == []
    assert counters.malformed == {"dns": 1}
    assert [o.name for o in extractor.feed(udp(dns_query("example.org")))] == ["example.org"]


def test_extractor_every_prefix_of_a_dns_query_gives_nothing_or_the_name() -> None:
    query = dns_query("www.example.com")
    for end in range(len(query)):
        extractor, counters = new_extractor()
        observations = extractor.feed(udp(query[:end]))
        assert [o.name for o in observations] in ([], ["www.example.com"]), end
        assert set(counters.malformed) <= {"dns"}


# --- DNS over TCP -----------------------------------------------------------------------


def test_extractor_dns_over_tcp_reads_two_messages_in_one_segment() -> None:
    extractor, counters = new_extractor()
    segment = tcp_dns(dns_query("a.example", qid=1)) + tcp_dns(dns_query("b.example", qid=2))
    packets = client_stream([segment], dport=53)
    observations = feed_all(extractor, packets)
    assert observations == [
        Observation(
            ts=packets[-1].ts,
            proto=Proto.DNS,
            name=name,
            client_ip=CLIENT_IP,
            client_mac=CLIENT_MAC,
            server_ip=SERVER_IP,
            server_port=53,
            flags=frozenset({Flag.TCP}),
        )
        for name in ("a.example", "b.example")
    ]
    assert counters.malformed == {}


@pytest.mark.parametrize("split", [1, 2, 3, 14, -1])
def test_extractor_dns_over_tcp_joins_a_message_split_over_two_segments(split: int) -> None:
    extractor, _ = new_extractor()
    stream = tcp_dns(dns_query("split.example"))
    first, second = client_stream([stream[:split], stream[split:]], dport=53)[1:]
    assert extractor.feed(first) == []
    assert [(o.name, o.flags) for o in extractor.feed(second)] == [
        ("split.example", frozenset({Flag.TCP}))
    ]


def test_extractor_dns_over_tcp_reads_segments_out_of_order() -> None:
    extractor, _ = new_extractor()
    stream = tcp_dns(dns_query("a.example", qid=1)) + tcp_dns(dns_query("b.example", qid=2))
    syn, first, second = client_stream([stream[:20], stream[20:]], dport=53)
    assert extractor.feed(syn) == []
    assert extractor.feed(second) == []
    assert [o.name for o in extractor.feed(first)] == ["a.example", "b.example"]


def test_extractor_dns_over_tcp_response_is_flagged_response_and_tcp() -> None:
    extractor, _ = new_extractor()
    answer = tcp_dns(dns_response("example.org", [("example.org", "A", "192.0.2.1")]))
    packet = tcp(answer, seq=77, sport=53, dport=CLIENT_PORT, src=RESOLVER_IP, dst=CLIENT_IP)
    (observation,) = extractor.feed(packet)
    assert (observation.client_ip, observation.server_ip, observation.server_port) == (
        CLIENT_IP,
        RESOLVER_IP,
        53,
    )
    assert observation.flags == {Flag.RESPONSE, Flag.TCP}
    assert observation.addresses == ("192.0.2.1",)


def test_extractor_dns_over_tcp_on_a_configured_port() -> None:
    extractor, _ = new_extractor(dns_ports={53, 8053})
    packets = client_stream([tcp_dns(dns_query("example.net"))], dport=8053)
    assert [(o.name, o.server_port) for o in feed_all(extractor, packets)] == [
        ("example.net", 8053)
    ]


def test_extractor_dns_over_tcp_counts_a_malformed_message_and_reads_the_next() -> None:
    extractor, counters = new_extractor()
    bad = bytes.fromhex("1234 0100 0005 0000 0000 0000")  # claims 5 questions, has none
    packets = client_stream([tcp_dns(bad) + tcp_dns(dns_query("after.example"))], dport=53)
    assert [o.name for o in feed_all(extractor, packets)] == ["after.example"]
    assert counters.malformed == {"dns": 1}


def test_extractor_every_prefix_of_a_dns_tcp_stream_gives_the_complete_messages() -> None:
    first, second = tcp_dns(dns_query("a.example")), tcp_dns(dns_query("b.example"))
    stream = first + second
    for end in range(len(stream) + 1):
        extractor, counters = new_extractor()
        names = [o.name for o in extractor.feed(tcp(stream[:end], seq=1, dport=53))]
        complete = (end >= len(first)) + (end == len(stream))
        assert names == ["a.example", "b.example"][:complete], end
        assert counters.malformed == {}


def test_extractor_dns_over_tcp_with_an_impossible_length_is_counted_not_raised() -> None:
    extractor, counters = new_extractor()
    syn, bad, after = client_stream([b"\x00\x05hello", tcp_dns(dns_query("x.example"))], dport=53)
    extractor.feed(syn)
    assert extractor.feed(bad) == []
    assert counters.malformed == {"dns": 1}
    assert extractor.feed(after) == []  # the stream is lost; it must not raise again


# --- DHCP -------------------------------------------------------------------------------

RELAY_MAC = "02:00:00:00:00:99"


@pytest.mark.parametrize(
    ("src", "sport", "dst", "frame_mac", "expected_client_ip"),
    [
        pytest.param("0.0.0.0", 68, "255.255.255.255", CLIENT_MAC, "10.20.0.15", id="broadcast"),
        pytest.param("10.20.0.1", 67, "10.0.0.5", RELAY_MAC, "10.20.0.15", id="relayed"),
    ],
)
def test_extractor_dhcp_request_with_host_name_names_the_client_mac(
    src: str, sport: int, dst: str, frame_mac: str, expected_client_ip: str
) -> None:
    extractor, counters = new_extractor()
    payload = dhcp_request(
        ("message-type", "request"),
        ("requested_addr", "10.20.0.15"),
        ("hostname", b"Alice-Laptop"),
    )
    packet = udp(payload, src=src, sport=sport, dst=dst, dport=67, mac=frame_mac, vlan=VLAN)
    assert extractor.feed(packet) == [
        Observation(
            ts=T0,
            proto=Proto.DHCP,
            name="alice-laptop",
            client_ip=expected_client_ip,
            client_mac=CLIENT_MAC,  # chaddr: the client's, even through a relay
            server_ip=dst,
            server_port=67,
            vlan=VLAN,
        )
    ]
    assert counters.malformed == {}


@pytest.mark.parametrize(
    ("payload", "malformed"),
    [
        pytest.param(dhcp_request(("message-type", "discover")), {}, id="no host name"),
        pytest.param(dhcp_request(("hostname", b"srv"), op=2), {}, id="server reply"),
        pytest.param(b"\x01\x01\x06\x00" + bytes(40), {"dhcp": 1}, id="truncated request"),
    ],
)
def test_extractor_dhcp_without_a_client_name_gives_nothing(
    payload: bytes, malformed: dict[str, int]
) -> None:
    extractor, counters = new_extractor()
    assert extractor.feed(udp(payload, src="0.0.0.0", sport=68, dport=67)) == []
    assert counters.malformed == malformed


# --- TLS over TCP -----------------------------------------------------------------------

LONG_HELLO = hello_record("www.instagram.com", padding=1500)


def tls_observation(
    ts: float,
    *,
    name: str = "www.instagram.com",
    port: int = 443,
    flags: frozenset[Flag] = frozenset(),
    vlan: int | None = None,
) -> Observation:
    return Observation(
        ts=ts,
        proto=Proto.TLS,
        name=name,
        client_ip=CLIENT_IP,
        client_mac=CLIENT_MAC,
        server_ip=SERVER_IP,
        server_port=port,
        flags=flags,
        vlan=vlan,
    )


@pytest.mark.parametrize(
    ("pieces", "syn"),
    [
        pytest.param([(0, None)], True, id="one segment"),
        pytest.param([(0, 1000), (1000, None)], True, id="two segments"),
        pytest.param([(0, 3), (3, None)], True, id="record header split"),
        pytest.param([(1000, None), (0, 1000)], True, id="out of order"),
        pytest.param([(1200, None), (600, 1200), (0, 600)], True, id="three, reversed"),
        pytest.param([(0, 1000), (0, 1000), (1000, None)], True, id="retransmission"),
        pytest.param([(0, 1000), (500, 1500), (1000, None)], True, id="overlapping resend"),
        pytest.param([(0, 1000), (1000, None)], False, id="no SYN (capture mid-connection)"),
    ],
)
def test_extractor_tls_client_hello_on_443(pieces: list[tuple[int, int | None]], syn: bool) -> None:
    assert len(LONG_HELLO) > 1500  # more than one Ethernet segment, like a post-quantum hello
    extractor, counters = new_extractor()
    packets = [tcp(b"", seq=ISN, flags=TCP_SYN)] if syn else []
    for index, (start, end) in enumerate(pieces, start=1):
        part = LONG_HELLO[start:end]
        packets.append(tcp(part, seq=ISN + 1 + start, ts=T0 + index * 0.001, vlan=VLAN))
    results = [extractor.feed(packet) for packet in packets]
    assert results[-1] == [tls_observation(packets[-1].ts, vlan=VLAN)]
    assert all(result == [] for result in results[:-1])
    assert counters.malformed == {}
    flow = packets[-1].flow()
    assert extractor.streams.is_ignored(flow)  # done with: later segments cost one lookup
    assert flow not in extractor.buffers


# A record header that passes the cheap scan (handshake, TLS 1.0, length 5, ClientHello) but
# whose message is cut short inside its record: malformed, so the scan looks further on.
FALSE_START = bytes.fromhex(
    "16 0301 0005"  # record: handshake (22), TLS 1.0, length 5
    "01 000001 00"  # handshake: ClientHello (1), length 1, a body far too short
)


@pytest.mark.parametrize(
    ("dport", "prefix"),
    [
        pytest.param(587, [b"EHLO pc1.school.example\r\n", b"STARTTLS\r\n"], id="STARTTLS"),
        pytest.param(
            1080,
            [b"\x05\x01\x00", b"\x05\x01\x00\x03\x11www.instagram.com\x01\xbb"],
            id="SOCKS5",
        ),
        pytest.param(1080, [b"\x04\x01\x01\xbb\x9d\xf0\xdd\xaeuser\x00"], id="SOCKS4"),
        pytest.param(
            3128,
            [b"CONNECT www.instagram.com:443 HTTP/1.1\r\nHost: www.instagram.com\r\n\r\n"],
            id="HTTP CONNECT",
        ),
        pytest.param(443, [FALSE_START], id="false start"),
        pytest.param(8443, [b"\x00\x16\x03junk" + FALSE_START], id="junk and false start"),
    ],
)
@pytest.mark.parametrize("split", [False, True], ids=["hello whole", "hello split"])
def test_extractor_tls_client_hello_after_plaintext_on_any_port(
    dport: int, prefix: list[bytes], split: bool
) -> None:
    extractor, _ = new_extractor()
    hello = [LONG_HELLO[:700], LONG_HELLO[700:]] if split else [LONG_HELLO]
    packets = client_stream([*prefix, *hello], dport=dport)
    assert feed_all(extractor, packets) == [tls_observation(packets[-1].ts, port=dport)]


def test_extractor_tls_false_start_in_the_same_segment_as_the_hello() -> None:
    extractor, _ = new_extractor()
    packets = client_stream([FALSE_START + LONG_HELLO])
    assert feed_all(extractor, packets) == [tls_observation(packets[-1].ts)]


@pytest.mark.parametrize(
    ("dport", "name", "ech", "expected"),
    [
        pytest.param(443, "www.example.com", False, frozenset(), id="plain"),
        pytest.param(853, "dns.example.net", False, {Flag.ENCRYPTED_DNS}, id="DoT port 853"),
        pytest.param(443, "dns.google", False, {Flag.ENCRYPTED_DNS}, id="DoH name"),
        pytest.param(443, "Dns.Google", False, {Flag.ENCRYPTED_DNS}, id="DoH name, any case"),
        pytest.param(443, "cloudflare-ech.com", True, {Flag.ECH}, id="ECH"),
        pytest.param(443, "dns.google", True, {Flag.ECH, Flag.ENCRYPTED_DNS}, id="ECH to DoH"),
    ],
)
def test_extractor_tls_flags(dport: int, name: str, ech: bool, expected: frozenset[Flag]) -> None:
    extractor, _ = new_extractor()
    packets = client_stream([hello_record(name, ech=ech)], dport=dport)
    (observation,) = feed_all(extractor, packets)
    assert (observation.name, observation.flags) == (name.lower(), expected)


def test_extractor_tls_accepts_the_shared_test_hello() -> None:
    extractor, _ = new_extractor()
    record = client_hello_bytes("www.tiktok.com", padding=1400)
    packets = client_stream([record[:1000], record[1000:]])
    assert [o.name for o in feed_all(extractor, packets)] == ["www.tiktok.com"]


def test_extractor_tls_client_hello_without_sni_gives_nothing_and_forgets_the_flow() -> None:
    extractor, counters = new_extractor()
    packets = client_stream([hello_record(None, padding=100)])
    assert feed_all(extractor, packets) == []
    assert counters.malformed == {}
    assert extractor.streams.is_ignored(packets[-1].flow())
    assert extractor.buffers == {}


def test_extractor_tls_reports_a_connection_once_and_a_new_connection_again() -> None:
    extractor, _ = new_extractor()
    packets = client_stream([LONG_HELLO])
    assert len(feed_all(extractor, packets)) == 1
    assert feed_all(extractor, packets[1:]) == []  # the hello retransmitted
    again = [packet._replace(tcp_seq=packet.tcp_seq + 5000, ts=packet.ts + 1) for packet in packets]
    assert len(feed_all(extractor, again)) == 1  # a new SYN (new ISN) on the same ports


SERVER_HELLO = bytes(TLS(msg=[TLSServerHello(cipher=0x1301)]))


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(SERVER_HELLO, id="ServerHello"),
        pytest.param(bytes.fromhex("1703030020") + bytes(32), id="application data"),
        pytest.param(bytes.fromhex("140303000101"), id="ChangeCipherSpec"),
        pytest.param(bytes.fromhex("15030300020228"), id="alert"),
    ],
)
def test_extractor_tls_server_side_stream_is_forgotten_at_once(first: bytes) -> None:
    extractor, counters = new_extractor()
    packets = [
        tcp(b"", seq=9000, flags=TCP_SYN | TCP_ACK),  # the server's SYN-ACK
        tcp(first, seq=9001),
        tcp(bytes(1400), seq=9001 + len(first)),
    ]
    packets = [
        packet._replace(src_ip=SERVER_IP, src_port=443, dst_ip=CLIENT_IP, dst_port=CLIENT_PORT)
        for packet in packets
    ]
    assert feed_all(extractor, packets) == []
    flow = packets[1].flow()
    assert extractor.streams.is_ignored(flow)
    assert flow not in extractor.buffers
    assert len(extractor.streams) == 0
    assert counters.malformed == {}


def test_extractor_tls_plaintext_stream_is_given_up_after_the_scan_window() -> None:
    extractor, counters = new_extractor()
    request = b"POST /upload HTTP/1.1\r\nHost: files.example\r\n\r\n"
    parts = [request] + [b"x" * 1400] * 10
    packets = client_stream(parts, dport=80)
    for packet in packets:
        assert extractor.feed(packet) == []
        assert len(extractor.buffers.get(packet.flow(), b"")) < TLS_SCAN_WINDOW_BYTES + 1400
    flow = packets[-1].flow()
    assert extractor.streams.is_ignored(flow)
    assert flow not in extractor.buffers
    assert counters.malformed == {}


def malformed_hello_record() -> bytes:
    """A ClientHello record whose server_name extension claims more bytes than it has."""
    body = bytes.fromhex(
        "0303"  # legacy_version TLS 1.2
        + "00" * 32  # random
        + "00"  # session id: empty
        + "0002 1301"  # cipher suites: TLS_AES_128_GCM_SHA256
        + "01 00"  # compression methods: null
        + "0014"  # extensions: 20 bytes
        + "0000 0100 000e 00 000b 6578616d706c652e636f6d"  # server_name: length 256 > 16
    )
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(message).to_bytes(2, "big") + message


def test_extractor_tls_malformed_client_hello_is_counted() -> None:
    extractor, counters = new_extractor()
    assert feed_all(extractor, client_stream([malformed_hello_record()])) == []
    assert counters.malformed == {"tls": 1}


def test_extractor_tls_malformed_client_hello_is_counted_once() -> None:
    extractor, counters = new_extractor()
    packets = client_stream([malformed_hello_record(), b"more", b"and more"])
    assert feed_all(extractor, packets) == []
    assert counters.malformed == {"tls": 1}


def test_extractor_every_prefix_of_a_client_hello_gives_nothing_yet() -> None:
    record = hello_record("www.example.com")
    for end in range(len(record)):
        extractor, counters = new_extractor()
        assert extractor.feed(tcp(record[:end], seq=1)) == [], end
        assert counters.malformed == {}, end


def test_extractor_fin_drops_a_partial_hello() -> None:
    extractor, _ = new_extractor()
    syn, first = client_stream([LONG_HELLO[:700]])
    feed_all(extractor, [syn, first])
    assert first.flow() in extractor.buffers
    fin = tcp(b"", seq=ISN + 1 + 700, flags=TCP_FIN | TCP_ACK, ts=T0 + 1)
    assert extractor.feed(fin) == []
    assert extractor.buffers == {}
    assert len(extractor.streams) == 0


# --- QUIC -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dport", "expected"),
    [
        pytest.param(443, frozenset(), id="443"),
        pytest.param(853, {Flag.ENCRYPTED_DNS}, id="DoQ port 853"),
        pytest.param(8443, frozenset(), id="8443"),
        pytest.param(61000, frozenset(), id="high port"),
    ],
)
def test_extractor_quic_initial_on_any_udp_port(dport: int, expected: frozenset[Flag]) -> None:
    extractor, counters = new_extractor()
    packet = udp(real_quic_initial("www.tiktok.com"), dport=dport, dst=SERVER_IP, vlan=VLAN)
    assert extractor.feed(packet) == [
        Observation(
            ts=T0,
            proto=Proto.QUIC,
            name="www.tiktok.com",
            client_ip=CLIENT_IP,
            client_mac=CLIENT_MAC,
            server_ip=SERVER_IP,
            server_port=dport,
            flags=frozenset(expected),
            vlan=VLAN,
        )
    ]
    assert counters.malformed == {}


@pytest.mark.parametrize(
    ("name", "ech", "expected"),
    [
        pytest.param("www.youtube.com", False, frozenset(), id="plain"),
        pytest.param("cloudflare-ech.com", True, {Flag.ECH}, id="ECH"),
        pytest.param("dns.google", False, {Flag.ENCRYPTED_DNS}, id="DoH over HTTP/3"),
    ],
)
def test_extractor_quic_hello_over_two_initials(
    name: str, ech: bool, expected: frozenset[Flag]
) -> None:
    extractor, _ = new_extractor()
    first, second = quic_initials(name, ech=ech, split=200)
    assert extractor.feed(udp(first, dport=443, dst=SERVER_IP)) == []
    (observation,) = extractor.feed(udp(second, dport=443, dst=SERVER_IP, ts=T0 + 0.01))
    assert (observation.proto, observation.name, observation.flags) == (
        Proto.QUIC,
        name,
        expected,
    )
    assert observation.ts == T0 + 0.01


def test_extractor_quic_reports_a_connection_once() -> None:
    extractor, _ = new_extractor()
    datagram = real_quic_initial("www.tiktok.com")
    assert len(extractor.feed(udp(datagram, dport=443))) == 1
    assert extractor.feed(udp(datagram, dport=443, ts=T0 + 0.2)) == []  # retransmitted


def corrupt_tag(datagram: bytes) -> bytes:
    return datagram[:-1] + bytes([datagram[-1] ^ 0xFF])


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(bytes.fromhex("80 60 0001 00000000 12345678") + bytes(160), id="RTP"),
        pytest.param(b"\xff" * 120, id="all ones"),
        pytest.param(bytes.fromhex("c0 00000000 08") + bytes(60), id="version negotiation"),
        pytest.param(bytes.fromhex("c3 51303436 08") + bytes(60), id="Google QUIC Q046"),
        pytest.param(corrupt_tag(real_quic_initial("x.example")), id="Initial failing its tag"),
        pytest.param(bytes.fromhex("41 0001 0203") + bytes(60), id="QUIC short header"),
    ],
)
def test_extractor_udp_that_is_not_a_readable_quic_initial_gives_nothing(
    datagram: bytes,
) -> None:
    extractor, counters = new_extractor()
    assert extractor.feed(udp(datagram, sport=40000, dport=9999)) == []
    assert counters.malformed == {}


# --- other traffic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(udp(b"", dport=53), id="empty UDP to 53"),
        pytest.param(udp(b"", dport=443), id="empty UDP"),
        pytest.param(udp(b"hello", dport=9999), id="plain UDP"),
        pytest.param(tcp(b"", seq=ISN, flags=TCP_SYN), id="bare SYN"),
        pytest.param(tcp(b"", seq=ISN, flags=TCP_RST), id="bare RST"),
        pytest.param(udp(dns_query("x.example"))._replace(protocol=1), id="ICMP"),
    ],
)
def test_extractor_packets_without_names_give_nothing(packet: Packet) -> None:
    extractor, counters = new_extractor()
    assert extractor.feed(packet) == []
    assert counters.malformed == {}


# --- idle state and memory bounds -------------------------------------------------------


def partial_state_packets(ts: float) -> list[Packet]:
    """Packets that leave state behind: half a ClientHello, half a DNS/TCP message, half a
    QUIC ClientHello."""
    dns_stream = tcp_dns(dns_query("slow.example"))
    return [
        *client_stream([LONG_HELLO[:700]], ts=ts),
        *client_stream([dns_stream[:10]], dport=53, sport=CLIENT_PORT + 1, ts=ts),
        udp(quic_initials("quic.example", split=200)[0], dport=443, dst=SERVER_IP, ts=ts),
    ]


@pytest.mark.parametrize("how", ["feed", "advance"])
def test_extractor_expires_idle_state(how: str) -> None:
    extractor, _ = new_extractor()
    assert feed_all(extractor, partial_state_packets(T0)) == []
    assert (len(extractor.buffers), len(extractor.streams), len(extractor.quic)) == (2, 2, 1)
    later = T0 + 120.0  # past the reassembler's and the QUIC tracker's idle time-outs
    extractor.advance(T0 + EXPIRE_EVERY_S / 2)  # not due yet: nothing goes
    assert (len(extractor.buffers), len(extractor.streams), len(extractor.quic)) == (2, 2, 1)
    if how == "feed":
        assert extractor.feed(udp(b"unrelated", dport=9999, ts=later)) == []
    else:
        extractor.advance(later)
    assert (len(extractor.buffers), len(extractor.streams), len(extractor.quic)) == (0, 0, 0)


def test_extractor_expiry_keeps_recently_active_flows() -> None:
    extractor, _ = new_extractor()
    old = client_stream([LONG_HELLO[:700]], sport=40001)
    new = client_stream([LONG_HELLO[:700]], sport=40002, ts=T0 + 100.0)
    feed_all(extractor, old + new)  # the first packet of ``new`` triggers the expiry pass
    assert set(extractor.buffers) == {new[-1].flow()}
    rest = tcp(LONG_HELLO[700:], seq=ISN + 701, sport=40002, ts=T0 + 100.5)
    assert [o.name for o in extractor.feed(rest)] == ["www.instagram.com"]


def test_extractor_uses_the_reassembler_and_tracker_it_is_given() -> None:
    reassembler = StreamReassembler(max_flows=8)
    tracker = QuicInitialTracker(max_connections=8)
    extractor = Extractor(StageCounters(), reassembler=reassembler, quic_tracker=tracker)
    assert extractor.streams is reassembler
    assert extractor.quic is tracker


def test_extractor_buffers_stay_within_the_reassembler_flow_bound() -> None:
    extractor, _ = new_extractor()
    extractor.streams = StreamReassembler(max_flows=8)  # set directly: see the test above
    for port in range(40000, 40100):
        feed_all(extractor, client_stream([LONG_HELLO[:700]], sport=port))
        assert len(extractor.streams) <= 8
        assert len(extractor.buffers) <= 8


def test_extractor_buffers_of_evicted_flows_go_at_the_next_expiry_pass() -> None:
    extractor, _ = new_extractor()
    extractor.streams = StreamReassembler(max_flows=8)
    for port in range(40000, 40100):
        feed_all(extractor, client_stream([LONG_HELLO[:700]], sport=port))
    extractor.advance(T0 + EXPIRE_EVERY_S + 1)
    assert len(extractor.buffers) <= 8
    assert set(extractor.buffers) <= set(extractor.streams.flows())


# --- arbitrary input --------------------------------------------------------------------

NON_DNS_PORTS = [67, 68, 80, 443, 587, 853, 1080, 8443, 40000, 50000]
DNS_PORTS = [53, 5353, 5355]

segments = st.tuples(
    st.sampled_from([TCP_SYN, TCP_PSH_ACK, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST]),
    st.integers(0, 3000),  # sequence number
    st.binary(max_size=300),
)


def _check_arbitrary(
    udp_datagrams: list[tuple[int, int, bytes]],
    tcp_segments: list[tuple[int, int, bytes]],
    port: int,
) -> None:
    extractor, _ = new_extractor()
    for index, (sport, dport, payload) in enumerate(udp_datagrams):
        result = extractor.feed(udp(payload, sport=sport, dport=dport, ts=T0 + index))
        assert all(isinstance(observation, Observation) for observation in result)
    for index, (flags, seq, payload) in enumerate(tcp_segments):
        packet = tcp(payload, seq=seq, flags=flags, dport=port, ts=T0 + index)
        result = extractor.feed(packet)
        assert all(isinstance(observation, Observation) for observation in result)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(NON_DNS_PORTS + DNS_PORTS),
            st.sampled_from(NON_DNS_PORTS + DNS_PORTS),
            st.binary(max_size=400),
        ),
        max_size=4,
    ),
    st.lists(segments, max_size=6),
    st.sampled_from(NON_DNS_PORTS),
)
def test_extractor_arbitrary_packets_never_raise(
    udp_datagrams: list[tuple[int, int, bytes]],
    tcp_segments: list[tuple[int, int, bytes]],
    port: int,
) -> None:
    _check_arbitrary(udp_datagrams, tcp_segments, port)


@settings(max_examples=150, deadline=None)
@given(st.lists(segments, max_size=6), st.sampled_from(DNS_PORTS))
@example([(TCP_PSH_ACK, 1, b"\x00\x05hello")], 53)  # a length under 12 bytes: counted, never raised
def test_extractor_arbitrary_dns_over_tcp_never_raises(
    tcp_segments: list[tuple[int, int, bytes]], port: int
) -> None:
    _check_arbitrary([], tcp_segments, port)


def test_extractor_next_expiry_says_when_a_packet_must_advance_the_clock() -> None:
    extractor = Extractor(StageCounters())
    assert extractor.next_expiry == float("-inf")  # the first packet starts the clock
    extractor.advance(T0)
    assert extractor.next_expiry == T0 + EXPIRE_EVERY_S
    extractor.advance(T0 + EXPIRE_EVERY_S - 0.5)
    assert extractor.next_expiry == T0 + EXPIRE_EVERY_S
    extractor.feed(udp(b"", ts=T0 + EXPIRE_EVERY_S + 1))
    assert extractor.next_expiry == T0 + 2 * EXPIRE_EVERY_S + 1


def test_dns_answer_for_gives_the_chain_and_the_addresses_on_it() -> None:
    message = dns.parse_dns_message(
        bytes(
            DNS(
                id=1,
                qr=1,
                qd=DNSQR(qname="www.example.com"),
                an=[
                    DNSRR(rrname="www.example.com", type="CNAME", rdata="edge.example.net"),
                    DNSRR(rrname="edge.example.net", type="A", rdata="192.0.2.7"),
                    DNSRR(rrname="other.example.org", type="A", rdata="192.0.2.9"),
                ],
            )
        )
    )
    assert dns_answer_for(message, "www.example.com") == (("edge.example.net",), ("192.0.2.7",))
    assert dns_answer_for(message, "other.example.org") == ((), ("192.0.2.9",))
