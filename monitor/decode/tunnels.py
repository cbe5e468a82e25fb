"""Tunnels, unwrapped to the packet inside: GRE (plain, PPTP, ERSPAN II/III, Ethernet bridging),
GRE-in-UDP, VXLAN, Teredo, GTP-U, IP-in-IP and IPv6-in-IP, at most ``MAX_TUNNEL_DEPTH`` deep.
"""

from __future__ import annotations

from monitor.decode import ip, links
from monitor.decode.fragments import FragmentTable
from monitor.decode.wire import (
    ETHERTYPE_BRIDGING,
    PORT_GRE_IN_UDP,
    PORT_GTP_U,
    PORT_VXLAN,
    TWO_U16,
    U16_BE,
)
from monitor.values import Packet

__all__ = [
    "MAX_TUNNEL_DEPTH",
    "NOT_A_TUNNEL",
    "check_depth",
    "gre",
    "gtp_u",
    "teredo",
    "tunnel",
    "udp_tunnel",
]

MAX_TUNNEL_DEPTH = 8
"""Tunnels unwrapped at most per frame; a deeper frame is malformed (or a loop built to hurt us)."""

_ETHERTYPE_ERSPAN_2 = 0x88BE
_ETHERTYPE_ERSPAN_3 = 0x22EB
_ETHERTYPE_PPP = 0x880B
_IPPROTO_IPIP = 4
_IPPROTO_IPV6 = 41
_IPPROTO_GRE = 47

NOT_A_TUNNEL = Packet(0.0, "not a tunnel", "", 0, 0, 0, b"")
"""Sentinel: a UDP payload on a tunnel port that is not that tunnel's header."""


def check_depth(depth: int) -> None:
    if depth >= MAX_TUNNEL_DEPTH:
        raise ValueError(f"tunnel: more than {MAX_TUNNEL_DEPTH} nested")


def udp_tunnel(
    fragments: FragmentTable,
    ts: float,
    port: int,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """VXLAN, GRE-in-UDP, GTP-U or Teredo; ``NOT_A_TUNNEL`` if the payload is not that tunnel."""
    if port == PORT_VXLAN:
        if end - offset < 8 + 14 or not data[offset] & 0x08:  # the I flag: VNI is valid
            return NOT_A_TUNNEL
        check_depth(depth)
        return links.ethernet(fragments, ts, data, offset + 8, end, vlan, depth + 1)
    if port == PORT_GRE_IN_UDP:
        return gre(fragments, ts, data, offset, end, vlan, depth)
    if port == PORT_GTP_U:
        return gtp_u(fragments, ts, data, offset, end, vlan, depth)
    return teredo(fragments, ts, data, offset, end, vlan, depth)


def gtp_u(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """GTP-U (3GPP TS 29.281) user data: a mobile operator's mirror port carries it.

    Only a G-PDU (version 1, protocol type GTP, message 0xff) whose length field matches
    the datagram exactly and whose payload starts like an IP header is unwrapped: DNS on
    port 2152 that merely looks like GTP (``zeek-dns-false-gtp-vlan``) stays plain UDP.
    """
    if end - offset < 8 + 20:
        return NOT_A_TUNNEL
    flags = data[offset]
    if flags >> 5 != 1 or not flags & 0x10 or data[offset + 1] != 0xFF:
        return NOT_A_TUNNEL
    if U16_BE(data, offset + 2)[0] != end - offset - 8:
        return NOT_A_TUNNEL
    inner = offset + 8
    if flags & 0x07:  # sequence number, N-PDU number, next extension header type
        inner += 4
        next_type = data[inner - 1]
        while next_type:
            if inner >= end or data[inner] == 0:
                return NOT_A_TUNNEL
            inner += 4 * data[inner]
            if inner > end:
                return NOT_A_TUNNEL
            next_type = data[inner - 1]
    if inner >= end:
        return NOT_A_TUNNEL
    version = data[inner] >> 4
    check_depth(depth)
    if version == 4:
        return ip.ipv4(fragments, ts, data, inner, end, None, vlan, depth + 1)
    if version == 6:
        return ip.ipv6(fragments, ts, data, inner, end, None, vlan, depth + 1)
    return NOT_A_TUNNEL


def teredo(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """Teredo (RFC 4380): optional authentication and origin indication, then IPv6."""
    if end - offset >= 4 and data[offset] == 0 and data[offset + 1] == 1:
        offset += 4 + data[offset + 2] + data[offset + 3] + 8 + 1  # id, value, nonce, conf.
    if end - offset >= 8 and data[offset] == 0 and data[offset + 1] == 0:
        offset += 8
    if (
        end - offset < 40
        or data[offset] >> 4 != 6
        or U16_BE(data, offset + 4)[0] != end - offset - 40
    ):
        return NOT_A_TUNNEL
    check_depth(depth)
    return ip.ipv6(fragments, ts, data, offset, end, None, vlan, depth + 1)


def tunnel(
    fragments: FragmentTable,
    ts: float,
    protocol: int,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """IP protocols that carry packets: GRE, IP-in-IP, IPv6-in-IP. Others carry nothing for us."""
    if protocol == _IPPROTO_GRE:
        return gre(fragments, ts, data, offset, end, vlan, depth)
    if protocol == _IPPROTO_IPIP:
        check_depth(depth)
        return ip.ipv4(fragments, ts, data, offset, end, None, vlan, depth + 1)
    if protocol == _IPPROTO_IPV6:
        check_depth(depth)
        return ip.ipv6(fragments, ts, data, offset, end, None, vlan, depth + 1)
    return None


def gre(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """GRE (RFC 2784/2890), PPTP's enhanced GRE (RFC 2637) and ERSPAN II/III payloads."""
    check_depth(depth)
    depth += 1
    if end - offset < 4:
        raise ValueError(f"GRE: {end - offset} bytes < 4")
    flags, protocol = TWO_U16(data, offset)
    version = flags & 0x07
    offset += 4
    if version == 0:
        if flags & 0x4000:  # RFC 1701 source routing: obsolete, not read
            return None
        offset += 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    elif version == 1:
        if protocol != _ETHERTYPE_PPP or not flags & 0x2000:
            raise ValueError(f"GRE v1: protocol {protocol:#06x}, flags {flags:#06x}")
        offset += 4 * (1 + bool(flags & 0x1000) + bool(flags & 0x0080))  # key, seq, ack
    else:
        raise ValueError(f"GRE: version {version}")
    if offset > end:
        raise ValueError(f"GRE: header of {offset - end} bytes more than the packet")
    if protocol == _ETHERTYPE_PPP:
        return links.ppp(fragments, ts, data, offset, end, None, vlan, depth)
    if protocol == ETHERTYPE_BRIDGING:
        return links.ethernet(fragments, ts, data, offset, end, vlan, depth)
    if protocol == _ETHERTYPE_ERSPAN_2:
        if flags & 0x1000:  # type II has a sequence number and an 8-byte header; type I neither
            if end - offset < 8 or data[offset] >> 4 != 1:
                raise ValueError("ERSPAN II: header missing or not version 1")
            offset += 8
        return links.ethernet(fragments, ts, data, offset, end, vlan, depth)
    if protocol == _ETHERTYPE_ERSPAN_3:
        if end - offset < 12 or data[offset] >> 4 != 2:
            raise ValueError("ERSPAN III: header missing or not version 2")
        offset += 20 if data[offset + 11] & 0x01 else 12  # O flag: platform subheader
        return links.ethernet(fragments, ts, data, offset, end, vlan, depth)
    return links.after_ethertype(fragments, ts, data, offset, end, protocol, None, vlan, depth)
