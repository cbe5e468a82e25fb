"""Numbers and header layouts that more than one layer of the decoder reads.

A leaf module: the layers (``links``, ``ip``, ``transport``, ``tunnels``) call each other
through their modules, and take the values they share from here.
"""

from __future__ import annotations

import struct

__all__ = [
    "ETHERTYPE_BRIDGING",
    "ETHERTYPE_IPV4",
    "ETHERTYPE_IPV6",
    "PORT_GRE_IN_UDP",
    "PORT_GTP_U",
    "PORT_TEREDO",
    "PORT_VXLAN",
    "TCP_FIN_SYN_RST",
    "TCP_SYN",
    "TUNNEL_PORTS",
    "TWO_U16",
    "U16_BE",
    "new_packet",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_BRIDGING = 0x6558

PORT_VXLAN = 4789
PORT_GRE_IN_UDP = 4754
PORT_TEREDO = 3544
PORT_GTP_U = 2152
TUNNEL_PORTS = frozenset((PORT_VXLAN, PORT_GRE_IN_UDP, PORT_TEREDO, PORT_GTP_U))

TCP_FIN_SYN_RST = 0x07
TCP_SYN = 0x02

TWO_U16 = struct.Struct("!HH").unpack_from
U16_BE = struct.Struct(">H").unpack_from

new_packet = tuple.__new__
"""``tuple.__new__(Packet, fields)``: a Packet without NamedTuple's argument handling (2x faster)."""
