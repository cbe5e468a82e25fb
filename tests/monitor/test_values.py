"""The values passed between stages."""

from __future__ import annotations

from monitor.values import IPPROTO_UDP, Packet


def test_packet_flow_is_the_directed_five_tuple_without_protocol() -> None:
    packet = Packet(0.0, "10.0.0.1", "10.0.0.2", IPPROTO_UDP, 5000, 53, b"")
    assert packet.flow() == ("10.0.0.1", 5000, "10.0.0.2", 53)
    assert packet.src_mac is None and packet.vlan is None
