"""Specification of monitor.decode: frames in, the innermost UDP/TCP packet out.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), plus every reference capture in tests/data/pcaps.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.l2 import ARP, GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import RawPcapNgReader, RawPcapReader

from monitor.decode import LINKTYPE_NAMES, MAX_TUNNEL_DEPTH, SKIPPED, Decoder, render_ipv6
from monitor.errors import UnsupportedLinkType
from monitor.values import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Frame,
    Packet,
)

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"

MAC = "02:00:00:00:00:01"
PEER_MAC = "02:00:00:00:00:02"
INNER_MAC = "02:00:00:00:00:99"
MAC_BYTES = bytes.fromhex("020000000001")

V4 = IP(src="10.0.0.1", dst="192.0.2.53") / UDP(sport=40000, dport=53) / Raw(b"query")
V6 = IPv6(src="2001:db8::1", dst="2001:db8::53") / UDP(sport=40000, dport=53) / Raw(b"query")
V4_TCP = IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=40000, dport=443) / Raw(b"hello")
V6_TCP = IPv6(src="2001:db8::1", dst="2001:db8::53") / TCP(sport=40000, dport=443) / Raw(b"hello")
EXPECTED_V4 = Packet(1.0, "10.0.0.1", "192.0.2.53", IPPROTO_UDP, 40000, 53, b"query")
EXPECTED_V6 = Packet(1.0, "2001:db8::1", "2001:db8::53", IPPROTO_UDP, 40000, 53, b"query")

OUTER_V4 = IP(src="198.51.100.1", dst="198.51.100.2")
OUTER_GRE = IP(src="198.51.100.1", dst="198.51.100.2", proto=47)


def eth(payload: ScapyPacket | bytes, src: str = MAC) -> ScapyPacket:
    return Ether(src=src, dst=PEER_MAC) / payload


def decode(data: bytes | ScapyPacket, linktype: int = 1, ts: float = 1.0) -> Packet | None:
    return Decoder().decode(Frame(ts, linktype, bytes(data)))


def nflog(payload: bytes, order: str = "<") -> bytes:
    """An NFLOG frame: header, a packet header TLV, a prefix TLV, then the payload TLV."""

    def tlv(tlv_type: int, value: bytes) -> bytes:
        padding = b"\x00" * (-len(value) % 4)
        return struct.pack(order + "HH", 4 + len(value), tlv_type) + value + padding

    header = bytes([2, 0]) + b"\x00\x00"  # AF_INET, version 0, resource id 0
    return (
        header
        + tlv(1, b"\x08\x00\x01\x00")  # NFULA_PACKET_HDR: hw protocol, hook, pad
        + tlv(10, b"drop\x00")  # NFULA_PREFIX, 5 bytes, padded to 8
        + tlv(9, payload)  # NFULA_PAYLOAD
    )


def sll(payload: bytes, protocol: int = 0x0800, address_length: int = 6) -> bytes:
    return (
        struct.pack(
            "!HHH8sH",
            0,  # packet type: to us
            1,  # ARPHRD_ETHER
            address_length,
            MAC_BYTES + b"\x00\x00",  # address, padded to 8
            protocol,
        )
        + payload
    )


def sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    return (
        struct.pack(
            "!HHIHBB8s",
            protocol,
            0,  # reserved
            3,  # interface index
            1,  # ARPHRD_ETHER
            4,  # packet type: outgoing
            6,  # address length
            MAC_BYTES + b"\x00\x00",
        )
        + payload
    )


def pptp_gre(ppp_frame: bytes, *, seq: bool = True, ack: bool = True) -> bytes:
    """Enhanced GRE (version 1): key present, optional sequence and acknowledgement."""
    flags = 0x2001 | (0x1000 if seq else 0) | (0x0080 if ack else 0)
    header = struct.pack("!HHHH", flags, 0x880B, len(ppp_frame), 7)  # payload length, call id
    if seq:
        header += struct.pack("!I", 11)
    if ack:
        header += struct.pack("!I", 10)
    return header + ppp_frame


ERSPAN_2 = struct.pack("!HHI", (1 << 12) | 10, 0x0005, 0)  # version 1 | VLAN 10; session 5; index
ERSPAN_3 = struct.pack(
    "!HHIHH",
    (2 << 12) | 10,  # version 2 | VLAN 10
    0x0005,  # COS, BSO, T, session 5
    123456,  # timestamp
    0,  # security group tag
    0,  # P, FT, hardware id, D, granularity, O=0 (no platform subheader)
)
ERSPAN_3_PLATFORM = ERSPAN_3[:-1] + b"\x01" + bytes(8)  # O=1, then an 8-byte subheader


def teredo_auth() -> bytes:
    """Teredo authentication header: type 1, id and value lengths, id, value, nonce, conf."""
    return b"\x00\x01" + bytes([2, 3]) + b"id" + b"abc" + bytes(8) + b"\x00"


TEREDO_ORIGIN = b"\x00\x00" + b"\xff\xff" + b"\xc6\x33\x64\xfe"  # type 0, port, address


def nested_vxlan(levels: int, inner: ScapyPacket) -> ScapyPacket:
    packet: ScapyPacket = eth(inner, src=INNER_MAC)
    for level in range(levels):
        packet = eth(OUTER_V4 / UDP(sport=50000 + level, dport=4789) / VXLAN(vni=level) / packet)
    return packet


def ip_in_ip(levels: int) -> ScapyPacket:
    packet: ScapyPacket = V4
    for _ in range(levels):
        packet = OUTER_V4 / packet
    return packet


# -- link types --------------------------------------------------------------------------------

LINK_CASES = [
    pytest.param(1, bytes(eth(V4)), EXPECTED_V4._replace(src_mac=MAC), id="ethernet-v4"),
    pytest.param(1, bytes(eth(V6)), EXPECTED_V6._replace(src_mac=MAC), id="ethernet-v6"),
    pytest.param(0, struct.pack("<I", 2) + bytes(V4), EXPECTED_V4, id="null-le-inet"),
    pytest.param(0, struct.pack(">I", 2) + bytes(V4), EXPECTED_V4, id="null-be-inet"),
    *(
        pytest.param(
            linktype,
            struct.pack(order + "I", family) + bytes(V6),
            EXPECTED_V6,
            id=f"{LINKTYPE_NAMES[linktype].lower()}-{'le' if order == '<' else 'be'}-af{family}",
        )
        for linktype in (0, 108)
        for order in "<>"
        for family in (24, 28, 30)
    ),
    pytest.param(108, struct.pack(">I", 2) + bytes(V4), EXPECTED_V4, id="loop-be-inet"),
    *(
        pytest.param(linktype, bytes(inner), expected, id=f"raw{linktype}-v{version}")
        for linktype in (12, 14, 101)
        for version, inner, expected in ((4, V4, EXPECTED_V4), (6, V6, EXPECTED_V6))
    ),
    pytest.param(228, bytes(V4), EXPECTED_V4, id="ipv4"),
    pytest.param(229, bytes(V6), EXPECTED_V6, id="ipv6"),
    pytest.param(113, sll(bytes(V4)), EXPECTED_V4._replace(src_mac=MAC), id="sll-v4"),
    pytest.param(113, sll(bytes(V6), 0x86DD), EXPECTED_V6._replace(src_mac=MAC), id="sll-v6"),
    pytest.param(113, sll(bytes(V4), address_length=0), EXPECTED_V4, id="sll-no-address"),
    pytest.param(113, sll(bytes(V4), address_length=8), EXPECTED_V4, id="sll-eui64-address"),
    pytest.param(276, sll2(bytes(V4)), EXPECTED_V4._replace(src_mac=MAC), id="sll2-v4"),
    pytest.param(276, sll2(bytes(V6), 0x86DD), EXPECTED_V6._replace(src_mac=MAC), id="sll2-v6"),
    pytest.param(9, b"\xff\x03\x00\x21" + bytes(V4), EXPECTED_V4, id="ppp-address-control"),
    pytest.param(9, b"\x00\x21" + bytes(V4), EXPECTED_V4, id="ppp-no-address-control"),
    pytest.param(9, b"\x21" + bytes(V4), EXPECTED_V4, id="ppp-compressed-protocol"),
    pytest.param(9, b"\xff\x03\x00\x57" + bytes(V6), EXPECTED_V6, id="ppp-v6"),
    pytest.param(50, b"\xff\x03\x00\x21" + bytes(V4), EXPECTED_V4, id="ppp-hdlc"),
    pytest.param(239, nflog(bytes(V4)), EXPECTED_V4, id="nflog-little-endian"),
    pytest.param(239, nflog(bytes(V4), ">"), EXPECTED_V4, id="nflog-big-endian"),
    pytest.param(239, nflog(bytes(V6)), EXPECTED_V6, id="nflog-v6"),
]


@pytest.mark.parametrize(("linktype", "data", "expected"), LINK_CASES)
def test_decode_link_type_reads_inner_packet(linktype: int, data: bytes, expected: Packet) -> None:
    assert decode(data, linktype) == expected


def test_decode_linktype_ipv4_holding_ipv6_follows_version_nibble() -> None:
    """td-linktype-ipv4-invalid holds an IPv6 packet in a LINKTYPE_IPV4 file.

    We decide raw IP by the version nibble, not by the link type's claim: the bytes are a
    well-formed IPv6 DNS query, tshark decodes them the same way and finds example.com, and
    refusing them would hide a real lookup. The mirror case (IPv4 in LINKTYPE_IPV6) likewise.
    """
    assert decode(V6, 228) == EXPECTED_V6
    assert decode(V4, 229) == EXPECTED_V4
    packet = read_capture("td-linktype-ipv4-invalid.pcap")[0]
    assert packet.linktype == 228
    decoded = Decoder().decode(packet)
    assert decoded is not None
    assert (decoded.src_ip, decoded.dst_ip, decoded.dst_port) == ("2001:db8::1", "2620:fe::9", 53)
    assert b"\x07example\x03com\x00" in decoded.payload


@pytest.mark.parametrize(
    ("linktype", "data"),
    [
        pytest.param(0, struct.pack("<I", 7) + bytes(V4), id="null-unknown-family"),
        pytest.param(9, b"\xff\x03\xc0\x21" + b"\x01\x01\x00\x04", id="ppp-lcp"),
        pytest.param(113, sll(b"\x00" * 28, protocol=0x0806), id="sll-arp"),
        pytest.param(239, nflog(b"")[:-4], id="nflog-without-payload"),
    ],
)
def test_decode_link_type_without_ip_gives_none(linktype: int, data: bytes) -> None:
    assert decode(data, linktype) is None


@pytest.mark.parametrize(
    ("linktype", "data"),
    [
        pytest.param(101, b"\x50" + bytes(V4)[1:], id="raw-version-5"),
        pytest.param(101, b"", id="raw-empty"),
        pytest.param(0, b"\x02\x00", id="null-short"),
        pytest.param(113, sll(b"")[:10], id="sll-short"),
        pytest.param(276, sll2(b"")[:12], id="sll2-short"),
        pytest.param(9, b"\xff\x03\x00", id="ppp-protocol-cut"),
        pytest.param(239, b"\x02\x00\x00\x00\x02\x00\x09\x00", id="nflog-tlv-length-2"),
    ],
)
def test_decode_link_type_malformed_raises_value_error(linktype: int, data: bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        decode(data, linktype)


@pytest.mark.parametrize("linktype", [105, 127, 10, 258, 6, 9999])
def test_decode_unsupported_link_type_raises(linktype: int) -> None:
    with pytest.raises(UnsupportedLinkType) as caught:
        decode(bytes(eth(V4)), linktype)
    assert caught.value.linktype == linktype


def test_linktype_names_cover_read_and_unread_types() -> None:
    assert LINKTYPE_NAMES[1] == "ETHERNET"
    assert LINKTYPE_NAMES[105] == "IEEE802_11"
    assert LINKTYPE_NAMES[127] == "IEEE802_11_RADIOTAP"
    assert LINKTYPE_NAMES[10] == "FDDI"
    assert LINKTYPE_NAMES[258] == "PKTAP"
    assert {0, 9, 50, 101, 108, 113, 228, 229, 239, 276} <= LINKTYPE_NAMES.keys()


# -- Ethernet, VLANs, PPPoE --------------------------------------------------------------------

ETHERNET_CASES = [
    pytest.param(eth(Dot1Q(vlan=20) / V4), 20, id="802.1q"),
    pytest.param(
        Ether(src=MAC, dst=PEER_MAC, type=0x88A8) / Dot1AD(vlan=100) / Dot1Q(vlan=20) / V4,
        20,
        id="802.1ad-qinq-innermost",
    ),
    pytest.param(
        Ether(src=MAC, dst=PEER_MAC, type=0x9100) / Dot1Q(vlan=100) / Dot1Q(vlan=20) / V4,
        20,
        id="0x9100-qinq",
    ),
    pytest.param(eth(Dot1Q(vlan=300) / Dot1Q(vlan=200) / Dot1Q(vlan=30) / V4), 30, id="three-tags"),
    pytest.param(eth(Dot1Q(vlan=0) / V4), None, id="priority-tag-is-no-vlan"),
    pytest.param(
        Ether(src=MAC, dst=PEER_MAC, type=0x88A8) / Dot1AD(vlan=100) / Dot1Q(vlan=0) / V4,
        100,
        id="priority-tag-keeps-outer-vlan",
    ),
    pytest.param(eth(Dot1Q(vlan=20) / V6), 20, id="802.1q-v6"),
    pytest.param(eth(PPPoE(sessionid=1) / PPP(proto=0x0021) / V4), None, id="pppoe"),
    pytest.param(eth(PPPoE(sessionid=1) / PPP(proto=0x0057) / V6), None, id="pppoe-v6"),
    pytest.param(
        Ether(src=MAC, dst=PEER_MAC, type=0x88A8)
        / Dot1AD(vlan=100)
        / Dot1Q(vlan=20, type=0x8864)
        / PPPoE(sessionid=1)
        / PPP(proto=0x0021)
        / V4,
        20,
        id="pppoe-in-qinq",
    ),
]


@pytest.mark.parametrize(("frame", "vlan"), ETHERNET_CASES)
def test_decode_ethernet_reads_tags_and_pppoe(frame: ScapyPacket, vlan: int | None) -> None:
    decoded = decode(frame)
    assert decoded is not None
    expected = EXPECTED_V6 if IPv6 in frame else EXPECTED_V4
    assert decoded == expected._replace(src_mac=MAC, vlan=vlan)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(eth(ARP(psrc="10.0.0.1", pdst="10.0.0.2")), id="arp"),
        pytest.param(eth(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()), id="icmp"),
        pytest.param(
            eth(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=58) / Raw(b"\x80\x00\x00\x00")),
            id="icmpv6",
        ),
        pytest.param(eth(IP(src="10.0.0.1", dst="10.0.0.2", proto=50) / Raw(bytes(16))), id="esp"),
        pytest.param(Ether(src=MAC, dst=PEER_MAC, type=60) / Raw(bytes(60)), id="802.3-length"),
        pytest.param(eth(PPPoE(sessionid=1) / PPP(proto=0xC021) / Raw(bytes(4))), id="pppoe-lcp"),
    ],
)
def test_decode_frame_without_udp_or_tcp_gives_none(frame: ScapyPacket) -> None:
    assert decode(frame) is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes(eth(V4))[:13], id="ethernet-short"),
        pytest.param(bytes(eth(Dot1Q(vlan=20) / V4))[:16], id="vlan-tag-cut"),
        pytest.param(
            bytes(Ether(src=MAC, dst=PEER_MAC, type=0x0800) / V6), id="ethertype-v4-holding-v6"
        ),
        pytest.param(bytes(eth(PPPoE(version=2, sessionid=1) / PPP() / V4)), id="pppoe-version-2"),
    ],
)
def test_decode_malformed_ethernet_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        decode(data)


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(V4, id="udp"),
        pytest.param(
            IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=40000, dport=443, flags="PA") / b"hi",
            id="tcp",
        ),
        pytest.param(
            IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=1, dport=443, flags="S"), id="tcp-syn"
        ),
        pytest.param(
            IP(src="10.0.0.1", dst="192.0.2.53", options=[IPOption_Router_Alert()]) / UDP() / b"x",
            id="ipv4-options",
        ),
        pytest.param(
            IP(src="10.0.0.1", dst="192.0.2.53") / UDP(dport=4789) / b"x", id="vxlan-port"
        ),
        pytest.param(IP(src="10.0.0.1", dst="192.0.2.53") / UDP(len=8) / b"xyz", id="udp-length-8"),
        pytest.param(
            IP(src="10.0.0.1", dst="192.0.2.53") / UDP(len=99) / b"xyz", id="udp-too-long"
        ),
    ],
)
@pytest.mark.parametrize("tags", [0, 1], ids=["untagged", "tagged"])
def test_decode_ethernet_fast_path_agrees_with_cooked_capture(
    packet: ScapyPacket, tags: int
) -> None:
    """Plain Ethernet/IPv4 takes a fast path; the same bytes over SLL take the general one."""
    frame = eth(Dot1Q(vlan=20) / packet) if tags else eth(packet)
    over_sll = decode(sll(bytes(packet)), 113)
    assert over_sll is not None
    assert decode(frame) == over_sll._replace(vlan=20 if tags else None)


def test_decode_ethernet_padding_is_cut_by_ip_length() -> None:
    tcp = IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=1, dport=2, flags="PA") / b"ab"
    assert decode(bytes(eth(V4)) + bytes(20)) == EXPECTED_V4._replace(src_mac=MAC)
    decoded = decode(bytes(eth(tcp)) + bytes(6))
    assert decoded is not None
    assert decoded.payload == b"ab"


# -- IPv4 and IPv6 -----------------------------------------------------------------------------


def with_ipv4_field(packet: ScapyPacket, offset: int, value: bytes) -> bytes:
    data = bytearray(bytes(packet))
    data[offset : offset + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(with_ipv4_field(V4, 0, b"\x44"), id="ihl-4"),
        pytest.param(with_ipv4_field(V4, 0, b"\x4f"), id="ihl-beyond-packet"),
        pytest.param(with_ipv4_field(V4, 2, b"\x00\x10"), id="total-length-under-header"),
        pytest.param(with_ipv4_field(V4_TCP, 2, b"\x01\x00"), id="tcp-total-length-beyond-capture"),
        pytest.param(bytes(V4)[:19], id="header-cut"),
        pytest.param(with_ipv4_field(V6_TCP, 4, b"\x01\x00"), id="v6-tcp-payload-beyond-capture"),
        pytest.param(bytes(V6)[:39], id="v6-header-cut"),
    ],
)
def test_decode_malformed_ip_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"IPv[46]"):
        decode(data, 101)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(with_ipv4_field(V4, 2, b"\x01\x00"), EXPECTED_V4, id="v4"),
        pytest.param(with_ipv4_field(V6, 4, b"\x01\x00"), EXPECTED_V6, id="v6"),
    ],
)
def test_decode_udp_cut_by_the_snap_length_keeps_the_captured_bytes(
    data: bytes, expected: Packet
) -> None:
    """tshark reads DNS questions from such frames (ndpi-fuzz-2006); a TCP segment would not do."""
    assert decode(data, 101) == expected


def test_decode_ip_length_zero_from_segmentation_offload_uses_the_frame() -> None:
    """Offloaded packets captured on the sending host carry length 0; the frame has them whole."""
    assert decode(with_ipv4_field(V4, 2, b"\x00\x00"), 101) == EXPECTED_V4
    assert decode(with_ipv4_field(V6, 4, b"\x00\x00"), 101) == EXPECTED_V6


AH = b"\x11\x04\x00\x00" + struct.pack("!II", 0x100, 1) + bytes(12)  # next UDP, len (4+2)*4


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(IPv6ExtHdrHopByHop(), id="hop-by-hop"),
        pytest.param(IPv6ExtHdrRouting(), id="routing"),
        pytest.param(IPv6ExtHdrDestOpt(), id="destination-options"),
        pytest.param(IPv6ExtHdrFragment(m=0, offset=0, id=5), id="atomic-fragment"),
        pytest.param(
            IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt(), id="three-headers"
        ),
    ],
)
def test_decode_ipv6_extension_headers_are_skipped(headers: ScapyPacket) -> None:
    packet = IPv6(src="2001:db8::1", dst="2001:db8::53") / headers / V6[UDP]
    assert decode(packet, 101) == EXPECTED_V6


def test_decode_ipv6_authentication_header_is_skipped() -> None:
    ip = IPv6(src="2001:db8::1", dst="2001:db8::53", nh=60) / IPv6ExtHdrDestOpt(nh=51)
    assert decode(bytes(ip / Raw(AH + bytes(V6[UDP]))), 101) == EXPECTED_V6


def test_decode_ipv6_no_next_header_gives_none() -> None:
    assert decode(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=59), 101) is None
    assert (
        decode(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt(nh=59), 101) is None
    )


def test_decode_ipv6_extension_header_beyond_packet_raises() -> None:
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2", nh=0)
    header = b"\x11\x05" + bytes(6)  # claims (5 + 1) * 8 = 48 bytes
    with pytest.raises(ValueError, match="extension #1"):
        decode(bytes(ip / Raw(header + bytes(8))), 101)


# -- fragments ---------------------------------------------------------------------------------

BIG_V4 = (
    IP(src="10.0.0.1", dst="192.0.2.53", id=7) / UDP(sport=40000, dport=53) / Raw(bytes(range(100)))
)
BIG_V6 = (
    IPv6(src="2001:db8::1", dst="2001:db8::53")
    / IPv6ExtHdrFragment(id=9)
    / UDP(sport=40000, dport=53)
    / Raw(bytes(range(200)))
)
split_v4: Callable[..., list[ScapyPacket]] = fragment  # scapy leaves these untyped
split_v6: Callable[..., list[ScapyPacket]] = fragment6
V4_FRAGMENTS = [bytes(eth(piece)) for piece in split_v4(BIG_V4, fragsize=32)]
V6_FRAGMENTS = [bytes(eth(piece)) for piece in split_v6(BIG_V6, 100)]
ORDERS: dict[str, Callable[[int], list[int]]] = {
    "in-order": lambda n: list(range(n)),
    "reversed": lambda n: list(reversed(range(n))),
    "last-first": lambda n: [n - 1, *range(n - 1)],
    "interleaved": lambda n: [*range(1, n, 2), *range(0, n, 2)],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("fragments", "payload"),
    [
        pytest.param(V4_FRAGMENTS, bytes(range(100)), id="v4"),
        pytest.param(V6_FRAGMENTS, bytes(range(200)), id="v6"),
    ],
)
def test_decode_fragments_reassemble_in_any_order(
    fragments: list[bytes], payload: bytes, order: str
) -> None:
    assert len(fragments) >= 3
    decoder = Decoder()
    indexes = ORDERS[order](len(fragments))
    results = [decoder.decode(Frame(1.0 + i, 1, fragments[i])) for i in indexes]
    assert results[:-1] == [None] * (len(fragments) - 1)
    last = results[-1]
    assert last is not None
    assert (last.src_port, last.dst_port, last.payload) == (40000, 53, payload)
    assert last.ts == 1.0 + indexes[-1]
    assert decoder.pending_fragment_buffers == 0


def v4_fragment(offset: int, chunk: bytes, more: bool, ident: int = 7) -> bytes:
    ip = IP(src="10.0.0.1", dst="192.0.2.53", id=ident, proto=17, frag=offset // 8)
    ip.flags = "MF" if more else 0
    return bytes(eth(ip / Raw(chunk)))


TRANSPORT = bytes(UDP(sport=40000, dport=53, len=64, chksum=0)) + bytes(range(56))


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        pytest.param("abc", TRANSPORT[:32] + b"B" * 16 + TRANSPORT[48:], id="first-holds-start"),
        pytest.param(
            "bac", TRANSPORT[:16] + b"B" * 32 + TRANSPORT[48:], id="overlap-arrives-first"
        ),
    ],
)
def test_decode_overlapping_fragments_keep_first_arrived_bytes(order: str, expected: bytes) -> None:
    pieces = {
        "a": v4_fragment(0, TRANSPORT[:32], more=True),
        "b": v4_fragment(16, b"B" * 32, more=True),  # overlaps a's bytes 16..32
        "c": v4_fragment(48, TRANSPORT[48:], more=False),
    }
    decoder = Decoder()
    results = [decoder.decode(Frame(1.0, 1, pieces[name])) for name in order]
    assert results[:2] == [None, None]
    assert results[2] is not None
    assert results[2].payload == expected[8:]


def test_decode_duplicate_fragment_changes_nothing() -> None:
    decoder = Decoder()
    frames = [V4_FRAGMENTS[0], V4_FRAGMENTS[0], *V4_FRAGMENTS[1:]]
    results = [decoder.decode(Frame(1.0, 1, data)) for data in frames]
    assert results[-1] is not None
    assert results[-1].payload == bytes(range(100))


def test_decode_fragment_buffers_are_bounded_oldest_evicted() -> None:
    decoder = Decoder(max_fragment_buffers=2)
    first = {ident: v4_fragment(0, TRANSPORT[:32], True, ident) for ident in (1, 2, 3)}
    last = {ident: v4_fragment(32, TRANSPORT[32:], False, ident) for ident in (1, 2, 3)}
    for ident in (1, 2, 3):
        assert decoder.decode(Frame(1.0, 1, first[ident])) is None
    assert decoder.pending_fragment_buffers == 2
    assert decoder.decode(Frame(2.0, 1, last[1])) is None  # 1 was evicted; this evicts 2
    assert decoder.pending_fragment_buffers == 2
    completed = decoder.decode(Frame(2.0, 1, last[3]))
    assert completed is not None
    assert completed.payload == TRANSPORT[8:]


@pytest.mark.parametrize(("gap_s", "completes"), [(29.0, True), (31.0, False)])
def test_decode_fragments_time_out_by_frame_timestamps(gap_s: float, completes: bool) -> None:
    decoder = Decoder(fragment_timeout_s=30.0)
    assert decoder.decode(Frame(100.0, 1, v4_fragment(0, TRANSPORT[:32], True))) is None
    result = decoder.decode(Frame(100.0 + gap_s, 1, v4_fragment(32, TRANSPORT[32:], False)))
    assert (result is not None) == completes
    assert decoder.pending_fragment_buffers == (0 if completes else 1)


def test_decode_fragment_timeout_frees_other_buffers() -> None:
    decoder = Decoder(fragment_timeout_s=30.0)
    decoder.decode(Frame(0.0, 1, v4_fragment(0, TRANSPORT[:32], True, ident=1)))
    decoder.decode(Frame(100.0, 1, v4_fragment(0, TRANSPORT[:32], True, ident=2)))
    assert decoder.pending_fragment_buffers == 1


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        pytest.param([v4_fragment(65528, bytes(16), False)], "65535", id="beyond-64k"),
        pytest.param([v4_fragment(0, bytes(20), True)], "multiple of 8", id="odd-middle-size"),
        pytest.param(
            [v4_fragment(32, bytes(16), False), v4_fragment(32, bytes(24), False)],
            "second last",
            id="two-different-ends",
        ),
        pytest.param(
            [v4_fragment(32, bytes(8), False), v4_fragment(48, bytes(16), True)],
            "after the last",
            id="bytes-after-the-end",
        ),
    ],
)
def test_decode_inconsistent_fragments_raise_and_drop_the_buffer(
    frames: list[bytes], message: str
) -> None:
    decoder = Decoder()
    for data in frames[:-1]:
        assert decoder.decode(Frame(1.0, 1, data)) is None
    with pytest.raises(ValueError, match=message):
        decoder.decode(Frame(1.0, 1, frames[-1]))
    assert decoder.pending_fragment_buffers == 0


@pytest.mark.parametrize(("buffers", "timeout_s"), [(0, 30.0), (1, 0.0), (1, -1.0)])
def test_decoder_rejects_bad_bounds(buffers: int, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="fragment"):
        Decoder(max_fragment_buffers=buffers, fragment_timeout_s=timeout_s)


# -- UDP and TCP -------------------------------------------------------------------------------


def udp_with_length(length: int, payload: bytes = b"abcdefgh") -> ScapyPacket:
    return IP(src="10.0.0.1", dst="192.0.2.53") / UDP(sport=1024, dport=53, len=length) / payload


@pytest.mark.parametrize(
    ("length", "payload"),
    [
        pytest.param(8, b"", id="length-8-zlip-shape-no-payload"),
        pytest.param(12, b"abcd", id="shorter-than-ip-payload"),
        pytest.param(16, b"abcdefgh", id="exact"),
        pytest.param(200, b"abcdefgh", id="longer-keeps-ip-payload"),
        pytest.param(0, b"abcdefgh", id="zero-keeps-ip-payload"),
    ],
)
def test_decode_udp_length_field_cuts_payload(length: int, payload: bytes) -> None:
    for data, linktype in (
        (bytes(eth(udp_with_length(length))), 1),
        (bytes(udp_with_length(length)), 101),
    ):
        decoded = decode(data, linktype)
        assert decoded is not None
        assert decoded.payload == payload


@pytest.mark.parametrize("length", [1, 7])
def test_decode_udp_length_under_8_raises(length: int) -> None:
    with pytest.raises(ValueError, match="UDP: length"):
        decode(eth(udp_with_length(length)))


@pytest.mark.parametrize("capture", ["td-dns-zlip-1.pcap", "td-dns-zlip-3.pcap"])
def test_decode_zlip_captures_carry_no_udp_payload(capture: str) -> None:
    """UDP length 8 with bytes after it: peers see no DNS message there, and neither do we."""
    (frame,) = read_capture(capture)
    decoded = Decoder().decode(frame)
    assert decoded is not None
    assert (decoded.dst_port, decoded.payload) == (53, b"")


@pytest.mark.parametrize(
    ("flags", "payload", "expected_flags"),
    [
        pytest.param("S", b"", TCP_SYN, id="syn"),
        pytest.param("SA", b"", TCP_SYN | TCP_ACK, id="syn-ack"),
        pytest.param("FA", b"", TCP_FIN | TCP_ACK, id="fin"),
        pytest.param("R", b"", TCP_RST, id="rst"),
        pytest.param("PA", b"hello", 0x18, id="data"),
    ],
)
def test_decode_tcp_segment(flags: str, payload: bytes, expected_flags: int) -> None:
    tcp = TCP(sport=40000, dport=443, seq=123456789, flags=flags, options=[("MSS", 1460)])
    decoded = decode(eth(IP(src="10.0.0.1", dst="192.0.2.53") / tcp / payload))
    assert decoded == Packet(
        1.0,
        "10.0.0.1",
        "192.0.2.53",
        IPPROTO_TCP,
        40000,
        443,
        payload,
        MAC,
        None,
        123456789,
        expected_flags,
    )


def test_decode_tcp_without_payload_or_syn_fin_rst_gives_none() -> None:
    assert decode(eth(IP(src="10.0.0.1", dst="192.0.2.53") / TCP(flags="A"))) is None
    assert decode(IP(src="10.0.0.1", dst="192.0.2.53") / TCP(flags="A"), 101) is None


@pytest.mark.parametrize("data_offset", [4, 15])
def test_decode_tcp_bad_data_offset_raises(data_offset: int) -> None:
    packet = eth(IP(src="10.0.0.1", dst="192.0.2.53") / TCP(dataofs=data_offset, flags="S"))
    with pytest.raises(ValueError, match="TCP: header length"):
        decode(packet)


# -- tunnels -----------------------------------------------------------------------------------

TUNNEL_CASES = [
    pytest.param(eth(OUTER_V4 / GRE() / V4), EXPECTED_V4, id="gre-ipv4"),
    pytest.param(eth(OUTER_V4 / GRE() / V6), EXPECTED_V6, id="gre-ipv6"),
    pytest.param(
        eth(
            OUTER_V4
            / GRE(chksum_present=1, key_present=1, key=42, seqnum_present=1, sequence_number=9)
            / V4
        ),
        EXPECTED_V4,
        id="gre-checksum-key-sequence",
    ),
    pytest.param(eth(OUTER_V4 / GRE(key_present=1, key=1) / V4), EXPECTED_V4, id="gre-key"),
    pytest.param(
        eth(OUTER_V4 / GRE(proto=0x6558) / eth(V4, src=INNER_MAC)),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="gre-ethernet-bridging",
    ),
    pytest.param(
        eth(OUTER_V4 / GRE(proto=0x88BE) / eth(V4, src=INNER_MAC)),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="erspan-1",
    ),
    pytest.param(
        eth(
            OUTER_V4 / GRE(proto=0x88BE, seqnum_present=1) / Raw(ERSPAN_2) / eth(V4, src=INNER_MAC)
        ),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="erspan-2",
    ),
    pytest.param(
        eth(
            OUTER_V4 / GRE(proto=0x22EB, seqnum_present=1) / Raw(ERSPAN_3) / eth(V4, src=INNER_MAC)
        ),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="erspan-3",
    ),
    pytest.param(
        eth(
            OUTER_V4
            / GRE(proto=0x22EB, seqnum_present=1)
            / Raw(ERSPAN_3_PLATFORM)
            / eth(V4, src=INNER_MAC)
        ),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="erspan-3-platform-subheader",
    ),
    *(
        pytest.param(
            eth(OUTER_GRE / Raw(pptp_gre(ppp + bytes(inner), seq=seq, ack=ack))),
            expected,
            id=f"pptp-{name}-seq{int(seq)}-ack{int(ack)}",
        )
        for name, ppp, inner, expected in (
            ("ff03-0021", b"\xff\x03\x00\x21", V4, EXPECTED_V4),
            ("0021", b"\x00\x21", V4, EXPECTED_V4),
            ("ff03-21", b"\xff\x03\x21", V4, EXPECTED_V4),
            ("21", b"\x21", V4, EXPECTED_V4),
            ("ff03-0057", b"\xff\x03\x00\x57", V6, EXPECTED_V6),
            ("57", b"\x57", V6, EXPECTED_V6),
        )
        for seq, ack in ((True, True), (False, False), (True, False), (False, True))
        if name.startswith("ff03-00") or (seq and ack)
    ),
    pytest.param(
        eth(OUTER_V4 / UDP(sport=50000, dport=4754) / GRE() / V4), EXPECTED_V4, id="gre-in-udp"
    ),
    pytest.param(
        eth(OUTER_V4 / UDP(sport=50000, dport=4789) / VXLAN(vni=7) / eth(V4, src=INNER_MAC)),
        EXPECTED_V4._replace(src_mac=INNER_MAC),
        id="vxlan",
    ),
    pytest.param(nested_vxlan(3, V4), EXPECTED_V4._replace(src_mac=INNER_MAC), id="vxlan-triple"),
    pytest.param(
        eth(
            OUTER_V4
            / UDP(sport=50000, dport=4789)
            / VXLAN()
            / eth(Dot1Q(vlan=5) / V4, src=INNER_MAC)
        ),
        EXPECTED_V4._replace(src_mac=INNER_MAC, vlan=5),
        id="vxlan-inner-vlan",
    ),
    pytest.param(
        eth(OUTER_V4 / UDP(sport=3544, dport=50000) / V6), EXPECTED_V6, id="teredo-from-server"
    ),
    pytest.param(
        eth(OUTER_V4 / UDP(sport=50000, dport=3544) / Raw(TEREDO_ORIGIN) / V6),
        EXPECTED_V6,
        id="teredo-origin-indication",
    ),
    pytest.param(
        eth(OUTER_V4 / UDP(sport=50000, dport=3544) / Raw(teredo_auth() + TEREDO_ORIGIN) / V6),
        EXPECTED_V6,
        id="teredo-authentication-and-origin",
    ),
    pytest.param(eth(OUTER_V4 / V4), EXPECTED_V4, id="ip-in-ip"),
    pytest.param(eth(OUTER_V4 / V6), EXPECTED_V6, id="ipv6-in-ip"),
    pytest.param(
        eth(IPv6(src="2001:db8::aa", dst="2001:db8::bb") / V6), EXPECTED_V6, id="ipv6-in-ipv6"
    ),
    pytest.param(
        eth(IPv6(src="2001:db8::aa", dst="2001:db8::bb") / V4), EXPECTED_V4, id="ipv4-in-ipv6"
    ),
    pytest.param(
        eth(IPv6(src="2001:db8::aa", dst="2001:db8::bb") / GRE() / V4),
        EXPECTED_V4,
        id="gre-over-v6",
    ),
    pytest.param(eth(ip_in_ip(MAX_TUNNEL_DEPTH)), EXPECTED_V4, id="deepest-allowed-nesting"),
]


@pytest.mark.parametrize(("frame", "expected"), TUNNEL_CASES)
def test_decode_tunnel_gives_inner_packet(frame: ScapyPacket, expected: Packet) -> None:
    """Tunnels are unwrapped; the outer MAC is the tunnel end's, so only an inner one is kept."""
    assert decode(frame) == expected


def test_decode_tunnel_keeps_outer_vlan() -> None:
    assert decode(eth(Dot1Q(vlan=8) / OUTER_V4 / GRE() / V4)) == EXPECTED_V4._replace(vlan=8)


@pytest.mark.parametrize(
    "udp",
    [
        pytest.param(
            UDP(sport=50000, dport=4789) / Raw(bytes(8) + bytes(eth(V4))), id="vxlan-no-i-flag"
        ),
        pytest.param(UDP(sport=50000, dport=4789) / VXLAN() / Raw(b"short"), id="vxlan-short"),
        pytest.param(
            UDP(sport=50000, dport=4789)
            / VXLAN()
            / Ether(src=INNER_MAC, dst=PEER_MAC, type=0x0800)
            / Raw(b"\x55" * 40),
            id="vxlan-inner-not-ipv4",
        ),
        pytest.param(
            UDP(sport=50000, dport=4754) / Raw(b"\x00\x07\x08\x00" + bytes(V4)), id="gre-udp-v7"
        ),
        pytest.param(UDP(sport=50000, dport=3544) / Raw(b"not ipv6 at all"), id="teredo-not-ipv6"),
        pytest.param(
            UDP(sport=50000, dport=3544) / Raw(bytes(V6) + b"trailing"), id="teredo-length-mismatch"
        ),
        pytest.param(UDP(sport=3544, dport=50000) / Raw(b""), id="teredo-empty"),
    ],
)
def test_decode_udp_on_tunnel_port_that_is_no_tunnel_stays_udp(udp: ScapyPacket) -> None:
    decoded = decode(eth(OUTER_V4 / udp))
    assert decoded is not None
    assert (decoded.src_ip, decoded.protocol) == ("198.51.100.1", IPPROTO_UDP)
    assert decoded.payload == bytes(udp[UDP].payload)


def test_decode_vxlan_nested_beyond_depth_falls_back_to_udp() -> None:
    decoded = decode(nested_vxlan(MAX_TUNNEL_DEPTH + 1, V4))
    assert decoded is not None
    assert (decoded.src_ip, decoded.dst_port) == ("198.51.100.1", 4789)


def test_decode_ip_in_ip_beyond_depth_raises() -> None:
    with pytest.raises(ValueError, match="tunnel"):
        decode(eth(ip_in_ip(MAX_TUNNEL_DEPTH + 1)))


@pytest.mark.parametrize(
    ("gre", "result"),
    [
        pytest.param(GRE(routing_present=1) / V4, None, id="rfc1701-routing-not-read"),
        pytest.param(GRE(proto=0x0806) / Raw(bytes(28)), None, id="arp-inside"),
    ],
)
def test_decode_gre_without_readable_inner_gives_none(gre: ScapyPacket, result: None) -> None:
    assert decode(eth(OUTER_V4 / gre)) is result


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x00\x02\x08\x00" + bytes(V4), id="version-2"),
        pytest.param(b"\x20\x01\x08\x00" + bytes(8), id="v1-not-ppp"),
        pytest.param(b"\x30\x00\x08\x00", id="header-fields-missing"),
        pytest.param(b"\x00\x00\x22\xeb" + b"\x10" + bytes(11) + bytes(eth(V4)), id="erspan-3-v1"),
        pytest.param(b"\x10\x00\x88\xbe" + bytes(4) + bytes(8) + bytes(eth(V4)), id="erspan-2-v0"),
    ],
)
def test_decode_malformed_gre_raises(payload: bytes) -> None:
    with pytest.raises(ValueError, match="GRE|ERSPAN"):
        decode(eth(OUTER_GRE / Raw(payload)))


# -- real captures -----------------------------------------------------------------------------


@functools.cache
def read_capture(name: str) -> tuple[Frame, ...]:
    """The frames of a capture in tests/data/pcaps, with each frame's own link type."""
    path = str(PCAPS / name)
    frames = []
    if name.endswith(".pcapng"):
        with RawPcapNgReader(path) as reader:
            for data, meta in reader:
                ng: Any = meta  # PacketMetadataNg, typed as the pcap metadata by scapy
                ts = ((ng.tshigh << 32) | ng.tslow) / ng.tsresol
                frames.append(Frame(ts, ng.linktype, data))
    else:
        with RawPcapReader(path) as reader:
            divisor = 1e9 if getattr(reader, "nano", False) else 1e6
            for data, meta in reader:
                frames.append(Frame(meta.sec + meta.usec / divisor, reader.linktype, data))
    return tuple(frames)


CAPTURES = sorted(path.name for path in PCAPS.iterdir() if path.suffix in (".pcap", ".pcapng"))
UNSUPPORTED_CAPTURES = {"zeek-dns-radiotap.pcap": 127, "td-linktype-pktap.pcap": 258}
MOSTLY_MALFORMED_CAPTURES = {
    "ndpi-quic-fuzz-overflow.pcapng": "its one frame is a middle fragment of 1260 bytes",
    "zeek-quic-decrypt-crash.pcap": "fuzzed: IP version 5 and lengths beyond the frame",
    "td-quic-handshake-truncated.pcap": "snap length 256 cuts the large packets",
    "td-dns-udp-2.pcap": "snap length cuts the response",
    "td-dns-over-ppp.pcap": "its one frame's PPP protocol is garbage (0x7e08): nothing to read",
}


@pytest.mark.parametrize("capture", CAPTURES)
def test_decode_real_capture_frames(capture: str) -> None:
    """Every frame gives a Packet, None, ValueError or UnsupportedLinkType; most decode."""
    decoder = Decoder()
    packets = nones = malformed = unsupported = 0
    for frame in read_capture(capture):
        try:
            result = decoder.decode(frame)
        except UnsupportedLinkType as e:
            assert e.linktype == frame.linktype
            unsupported += 1
            continue
        except ValueError:
            malformed += 1
            continue
        if result is None:
            nones += 1
        else:
            assert isinstance(result, Packet)
            assert result.protocol in (IPPROTO_UDP, IPPROTO_TCP)
            packets += 1
    total = packets + nones + malformed + unsupported
    if capture in UNSUPPORTED_CAPTURES:
        assert unsupported == total
        assert UNSUPPORTED_CAPTURES[capture] in LINKTYPE_NAMES
    elif capture not in MOSTLY_MALFORMED_CAPTURES:
        assert unsupported == 0
        assert packets >= 1
        assert malformed <= total // 10, f"{malformed} of {total} frames malformed"


def first_packet(capture: str, number: int = 1) -> Packet:
    decoded = Decoder().decode(read_capture(capture)[number - 1])
    assert decoded is not None
    return decoded


@pytest.mark.parametrize(
    ("capture", "number", "fields", "in_payload"),
    [
        (
            "zeek-dns-vxlan-triple.pcap",
            1,
            {
                "src_ip": "4.4.4.4",
                "dst_ip": "4.4.4.9",
                "dst_port": 53,
                "src_mac": "c8:89:f3:ad:a3:33",
            },
            b"\x03www\x03bbc\x03com\x00",
        ),
        (
            "zeek-dns-false-gtp-vlan.pcap",
            1,
            {"protocol": IPPROTO_UDP, "src_port": 2152, "dst_port": 53, "vlan": 454},
            b"\x04abcd\x03efg",
        ),
        (
            "zeek-dns-in-gre-pptp-vlan.pcap",
            1,
            {"src_ip": "172.16.44.3", "dst_ip": "8.8.8.8", "vlan": 100, "src_mac": None},
            b"xqt-detect-mode2",
        ),
        (
            "zeek-dns-in-gre-over-udp.pcap",
            1,
            {"src_ip": "172.17.0.2", "dst_ip": "1.1.1.1", "dst_port": 53},
            b"\x04zeek\x03org\x00",
        ),
        ("zeek-dns-in-gre.pcap", 33, {"dst_ip": "172.28.2.3", "dst_port": 53}, b"\x07gleeble"),
        (
            "zeek-dns-erspan.pcap",
            126,
            {"src_ip": "192.168.69.10", "src_mac": "00:50:56:82:2b:52", "dst_port": 53},
            b"\x07in-addr",
        ),
        (
            "zeek-tls-pppoe-qinq.pcap",
            1,
            {"dst_ip": "2.2.2.2", "protocol": IPPROTO_TCP, "vlan": 2474, "tcp_flags": TCP_SYN},
            b"",
        ),
        (
            "zeek-tls-openjdk-sll2.pcap",
            1,
            {"src_mac": "fa:37:dc:8d:af:ab", "dst_port": 443, "tcp_flags": TCP_SYN},
            b"",
        ),
        ("ndpi-kakaotalk-sll.pcap", 1, {"dst_ip": "10.188.1.1", "dst_port": 53}, b"\x05kakao"),
        (
            "zeek-dns-svcb-null-link.pcap",
            1,
            {"src_ip": "127.0.0.1", "dst_port": 53},
            b"\x07example",
        ),
        ("td-linktype-ipv6.pcap", 1, {"dst_ip": "2620:fe::9", "dst_port": 53}, b"\x07example"),
        ("td-linktype-raw-ipv4.pcap", 1, {"dst_ip": "9.9.9.9", "dst_port": 53}, b"\x07example"),
        ("td-linktype-ipv4.pcap", 1, {"dst_ip": "9.9.9.9", "dst_port": 53}, b"\x07example"),
        (
            "zeek-dns-https-rr-ech.pcap",
            1,
            {"src_ip": "2a02:6bf:8080:165::1:12", "dst_ip": "2620:fe::fe"},
            b"\x04defo\x02ie",
        ),
        ("sv-dns-vxlan.pcap", 22, {"src_ip": "172.31.0.238", "dst_port": 53}, b"\x07in-addr"),
    ],
)
def test_decode_real_capture_packet(
    capture: str, number: int, fields: dict[str, object], in_payload: bytes
) -> None:
    decoded = first_packet(capture, number)
    assert {name: getattr(decoded, name) for name in fields} == fields
    assert in_payload in decoded.payload


@pytest.mark.parametrize("number", [6, 7, 30, 31])
def test_decode_teredo_frames_in_capture_are_unwrapped(number: int) -> None:
    """These UDP/3544 frames carry ICMPv6 and Teredo bubbles: unwrapped, nothing for us."""
    frame = read_capture("zeek-dns-teredo.pcap")[number - 1]
    assert 3544 in struct.unpack_from("!HH", frame.data, 34)
    assert Decoder().decode(frame) is None


# -- robustness --------------------------------------------------------------------------------


def frame_bytes(case: Any, index: int = 0) -> bytes:
    """The frame in a ``pytest.param`` of the tables above, as bytes."""
    return bytes(case.values[index])


def frame_linktype(case: Any) -> int:
    """The link type in a ``pytest.param`` of ``LINK_CASES``."""
    return int(case.values[0])


PREFIX_CASES = [
    *(pytest.param(frame_linktype(case), frame_bytes(case, 1), id=case.id) for case in LINK_CASES),
    *(pytest.param(1, frame_bytes(case), id=case.id) for case in ETHERNET_CASES),
    *(pytest.param(1, frame_bytes(case), id=case.id) for case in TUNNEL_CASES),
]


@pytest.mark.parametrize(("linktype", "data"), PREFIX_CASES)
def test_decode_truncated_prefix_gives_none_or_value_error(linktype: int, data: bytes) -> None:
    full = decode(data, linktype)
    assert full is not None
    for size in range(len(data)):
        try:
            result = Decoder().decode(Frame(1.0, linktype, data[:size]))
        except ValueError:
            continue
        if result is None or result == full:
            continue  # cutting only bytes after the packet (NFLOG's TLV padding) changes nothing
        # A UDP datagram cut by the snap length keeps what was captured of its payload (for a
        # tunnel cut short, that is the outer datagram).
        assert result.protocol == IPPROTO_UDP, f"prefix of {size} bytes gave {result}"
        assert data[:size].endswith(result.payload)


SUPPORTED_LINKTYPES = [0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 239, 276]


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from(SUPPORTED_LINKTYPES), data=st.binary(max_size=200))
def test_decode_arbitrary_bytes_give_packet_none_or_value_error(linktype: int, data: bytes) -> None:
    try:
        result = Decoder().decode(Frame(1.0, linktype, data))
    except ValueError:
        return
    assert result is None or isinstance(result, Packet)


SEEDS = (
    [(frame_linktype(case), frame_bytes(case, 1)) for case in LINK_CASES]
    + [(1, frame_bytes(case)) for case in TUNNEL_CASES]
    + [(1, data) for data in V4_FRAGMENTS + V6_FRAGMENTS]
)


@settings(max_examples=500, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
)
def test_decode_mutated_frames_give_packet_none_or_value_error(
    seed: tuple[int, bytes], edits: list[tuple[int, int]], cut: int
) -> None:
    """Valid frames with a few bytes changed reach the deep layers that random bytes miss."""
    linktype, original = seed
    data = bytearray(original)
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    decoder = Decoder(max_fragment_buffers=4)
    for frame_data in (bytes(data), bytes(data[: max(len(data) - cut, 0)])):
        try:
            result = decoder.decode(Frame(1.0, linktype, frame_data))
        except ValueError:
            continue
        assert result is None or isinstance(result, Packet)


# -- address formatting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # a single zero group stays
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  # the longest run is compressed
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # the first of equal runs
        ("2001:DB8:00AB::0001", "2001:db8:ab::1"),  # lowercase, no leading zeros
        ("fe80::8000:ffff:ffff:fffd", "fe80::8000:ffff:ffff:fffd"),
    ],
)
def test_render_ipv6_is_rfc5952(text: str, expected: str) -> None:
    assert render_ipv6(ipaddress.IPv6Address(text).packed) == expected


@given(st.lists(st.sampled_from([0, 0, 0, 1, 0xDB8, 0xFFFF, 0x2001, 0xA]), min_size=8, max_size=8))
def test_render_ipv6_matches_ipaddress_for_zero_runs(groups: list[int]) -> None:
    raw = struct.pack("!8H", *groups)
    assert render_ipv6(raw) == str(ipaddress.IPv6Address(raw))


@given(st.binary(min_size=16, max_size=16))
def test_render_ipv6_matches_ipaddress(raw: bytes) -> None:
    assert render_ipv6(raw) == str(ipaddress.IPv6Address(raw))


@given(st.binary(min_size=4, max_size=4))
def test_decode_formats_ipv4_addresses_like_ipaddress(raw: bytes) -> None:
    packet = bytearray(bytes(V4))
    packet[12:16] = raw
    decoded = decode(bytes(packet), 101)
    assert decoded is not None
    assert decoded.src_ip == str(ipaddress.IPv4Address(raw))


class TestGtpU:
    """GTP-U G-PDUs on UDP 2152 are unwrapped; look-alikes stay plain UDP."""

    @staticmethod
    def gtp_frame(inner: bytes, *, length_delta: int = 0, message_type: int = 0xFF) -> Frame:
        from scapy.layers.inet import IP as OuterIP
        from scapy.layers.inet import UDP as OuterUDP
        from scapy.layers.l2 import Ether as OuterEther

        header = bytes([0x30, message_type]) + (len(inner) + length_delta).to_bytes(2, "big")
        header += (0x1234).to_bytes(4, "big")  # TEID
        outer = (
            OuterEther(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / OuterIP(src="192.0.2.1", dst="192.0.2.2")
            / OuterUDP(sport=2152, dport=2152)
            / (header + inner)
        )
        return Frame(0.0, 1, bytes(outer))

    def test_gtp_u_g_pdu_is_unwrapped_to_the_inner_packet(self) -> None:
        from scapy.layers.dns import DNS, DNSQR
        from scapy.layers.inet import IP as InnerIP
        from scapy.layers.inet import UDP as InnerUDP

        inner = bytes(
            InnerIP(src="10.1.1.1", dst="10.1.1.2")
            / InnerUDP(sport=3333, dport=53)
            / DNS(qd=DNSQR(qname="example.com"))
        )
        packet = Decoder().decode(self.gtp_frame(inner))
        assert packet is not None
        assert (packet.src_ip, packet.dst_port) == ("10.1.1.1", 53)

    @pytest.mark.parametrize(("length_delta", "message_type"), [(1, 0xFF), (-1, 0xFF), (0, 0x01)])
    def test_gtp_look_alike_stays_plain_udp(self, length_delta: int, message_type: int) -> None:
        inner = bytes(20)
        packet = Decoder().decode(
            self.gtp_frame(inner, length_delta=length_delta, message_type=message_type)
        )
        assert packet is not None
        assert (packet.src_ip, packet.src_port, packet.dst_port) == ("192.0.2.1", 2152, 2152)


@pytest.mark.parametrize("vlan", [None, 7])
@pytest.mark.parametrize(
    "ip", [IP(src="10.0.0.2", dst="10.0.0.1"), IPv6(src="fd00::2", dst="fd00::1")]
)
def test_decode_skipping_drops_segments_of_flows_the_caller_ignores(
    ip: ScapyPacket, vlan: int | None
) -> None:
    link = Ether() / Dot1Q(vlan=vlan) if vlan else Ether()
    src, dst = ip.src, ip.dst
    ignored = {(src, 40000, dst, 443)}
    decoder = Decoder()

    def decode(flags: str, payload: bytes) -> Packet | None:
        frame = link / ip / TCP(sport=40000, dport=443, flags=flags) / Raw(payload)
        return decoder.decode_skipping(Frame(1.0, 1, bytes(frame)), ignored.__contains__)

    assert decode("PA", b"data") is SKIPPED
    assert decode("FA", b"") is SKIPPED  # a FIN is skipped too: the flow is over for the caller
    assert decode("A", b"") is None  # a bare ACK is nothing, skipped or not
    syn = decode("S", b"")  # a SYN may restart the flow: never skipped
    assert syn is not None and syn is not SKIPPED and syn.tcp_flags == TCP_SYN
    ignored.clear()
    packet = decode("PA", b"data")
    assert packet is not None and packet is not SKIPPED
    assert (packet.payload, packet.vlan) == (b"data", vlan)
    assert packet == decoder.decode(
        Frame(1.0, 1, bytes(link / ip / TCP(sport=40000, dport=443, flags="PA") / Raw(b"data")))
    )
