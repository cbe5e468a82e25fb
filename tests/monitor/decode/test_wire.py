"""Specification of monitor.decode.wire: the values the decoder's layers share."""

from __future__ import annotations

from monitor.decode.wire import TUNNEL_PORTS, new_packet
from monitor.values import IPPROTO_UDP, Packet


def test_new_packet_builds_the_packet_the_constructor_builds() -> None:
    fields = (1.0, "10.0.0.1", "192.0.2.53", IPPROTO_UDP, 40000, 53, b"query", None, None, 0, 0)
    built = new_packet(Packet, fields)
    assert type(built) is Packet
    assert built == Packet(*fields)


def test_tunnel_ports_are_vxlan_gre_in_udp_teredo_and_gtp_u() -> None:
    assert sorted(TUNNEL_PORTS) == [2152, 3544, 4754, 4789]
