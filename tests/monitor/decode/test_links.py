"""Specification of monitor.decode.links: link types, Ethernet, VLAN tags, PPPoE, cooked captures.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (
    IPv6,
)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from monitor.decode.decoder import Decoder
from monitor.decode.links import LINKTYPE_NAMES
from monitor.errors import UnsupportedLinkType
from monitor.values import (
    Packet,
)
from tests.monitor.decode.frames import (
    ETHERNET_CASES,
    EXPECTED_V4,
    EXPECTED_V6,
    LINK_CASES,
    MAC,
    PEER_MAC,
    V4,
    V6,
    decode,
    eth,
    nflog,
    read_capture,
    sll,
    sll2,
)


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
