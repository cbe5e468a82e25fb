"""Specification of monitor.decode.ip: IPv4 and IPv6 headers and extension headers.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from monitor.values import (
    Packet,
)
from tests.monitor.decode.frames import (
    EXPECTED_V4,
    EXPECTED_V6,
    MAC,
    V4,
    V6,
    decode,
    eth,
)

V4_TCP = IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=40000, dport=443) / Raw(b"hello")


V6_TCP = IPv6(src="2001:db8::1", dst="2001:db8::53") / TCP(sport=40000, dport=443) / Raw(b"hello")


def test_decode_ethernet_padding_is_cut_by_ip_length() -> None:
    tcp = IP(src="10.0.0.1", dst="192.0.2.53") / TCP(sport=1, dport=2, flags="PA") / b"ab"
    assert decode(bytes(eth(V4)) + bytes(20)) == EXPECTED_V4._replace(src_mac=MAC)
    decoded = decode(bytes(eth(tcp)) + bytes(6))
    assert decoded is not None
    assert decoded.payload == b"ab"


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
