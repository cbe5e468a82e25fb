"""Frames and case tables shared by the tests of monitor.decode.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrFragment,
    fragment6,
)
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import RawPcapNgReader, RawPcapReader

from monitor.decode.decoder import Decoder
from monitor.decode.links import LINKTYPE_NAMES
from monitor.decode.tunnels import MAX_TUNNEL_DEPTH
from monitor.values import (
    IPPROTO_UDP,
    Frame,
    Packet,
)

PCAPS = Path(__file__).resolve().parents[2] / "data" / "pcaps"


MAC = "02:00:00:00:00:01"


PEER_MAC = "02:00:00:00:00:02"


INNER_MAC = "02:00:00:00:00:99"


MAC_BYTES = bytes.fromhex("020000000001")


V4 = IP(src="10.0.0.1", dst="192.0.2.53") / UDP(sport=40000, dport=53) / Raw(b"query")


V6 = IPv6(src="2001:db8::1", dst="2001:db8::53") / UDP(sport=40000, dport=53) / Raw(b"query")


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
