"""Specification of monitor.decode.tunnels: GRE, VXLAN, Teredo, GTP-U, IP-in-IP unwrapped.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import UDP
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from monitor.decode.decoder import Decoder
from monitor.decode.tunnels import MAX_TUNNEL_DEPTH
from monitor.values import (
    IPPROTO_UDP,
    Frame,
    Packet,
)
from tests.monitor.decode.frames import (
    EXPECTED_V4,
    INNER_MAC,
    OUTER_GRE,
    OUTER_V4,
    PEER_MAC,
    TUNNEL_CASES,
    V4,
    V6,
    decode,
    eth,
    ip_in_ip,
    nested_vxlan,
)


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
