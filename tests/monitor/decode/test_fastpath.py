"""Specification of monitor.decode.fastpath: the one-unpack path agrees with the general one.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    IPv6,
)
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from monitor.decode.decoder import Decoder
from monitor.decode.fastpath import SKIPPED
from monitor.values import (
    TCP_SYN,
    Frame,
    Packet,
)
from tests.monitor.decode.frames import (
    V4,
    decode,
    eth,
    sll,
)


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
