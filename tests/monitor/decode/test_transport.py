"""Specification of monitor.decode.transport: UDP datagrams and TCP segments.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.packet import Packet as ScapyPacket

from monitor.decode.decoder import Decoder
from monitor.values import (
    IPPROTO_TCP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Packet,
)
from tests.monitor.decode.frames import (
    MAC,
    decode,
    eth,
    read_capture,
)


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
