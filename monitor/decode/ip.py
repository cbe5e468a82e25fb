"""IPv4 and IPv6: headers, IPv6 extension headers, and fragments into the fragment table.

What an IP packet carries goes to ``monitor.decode.transport`` (UDP, TCP) or
``monitor.decode.tunnels`` (GRE, IP-in-IP, IPv6-in-IP).
"""

from __future__ import annotations

import struct

from monitor.decode import transport, tunnels
from monitor.decode.addresses import cached_ipv4, cached_ipv6, format_ipv4, format_ipv6
from monitor.decode.fragments import FragmentTable
from monitor.values import IPPROTO_TCP, IPPROTO_UDP, Packet

__all__ = ["ipv4", "ipv6"]

_IPV6_OPTION_HEADERS = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_IPV6_NO_NEXT = 59

_IPV4 = struct.Struct("!BxHHHxB2x4s4s").unpack_from  # ver/ihl, length, id, frag, proto, src, dst
_IPV6 = struct.Struct("!B3xHB1x16s16s").unpack_from  # version, payload length, next, src, dst
_IPV6_FRAGMENT_HEADER = struct.Struct("!BxHI").unpack_from  # next, offset|M, identification


def ipv4(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    available = end - offset
    if available < 20:
        raise ValueError(f"IPv4: {available} bytes < 20")
    version_ihl, total_length, ident, fragment, protocol, source, destination = _IPV4(data, offset)
    header_length = (version_ihl & 0x0F) << 2
    if version_ihl >> 4 != 4:
        raise ValueError(f"IPv4: version {version_ihl >> 4}")
    if header_length < 20 or header_length > available:
        raise ValueError(f"IPv4: header length {header_length} (of {available} bytes)")
    cut = False
    if header_length <= total_length <= available:
        end = offset + total_length  # drops Ethernet padding
    elif total_length > available:
        if protocol != IPPROTO_UDP or fragment & 0x1FFF:
            raise ValueError(f"IPv4: total length {total_length} > {available} bytes captured")
        cut = True
    elif total_length:
        raise ValueError(f"IPv4: total length {total_length} < header length {header_length}")
    # else 0, written by segmentation offload on the capturing host: the frame says how long.
    # A UDP datagram cut by the snap length is read as far as it was captured (its first
    # bytes, a DNS question and the answers that fit, still count), as tshark reads it; so
    # is the first fragment of one (offset 0, more to come): its datagram cannot be
    # reassembled with bytes missing, so what it holds is all there will be. A cut TCP
    # segment, or a cut later fragment, raises: its missing bytes would corrupt the stream
    # or the datagram.
    src = cached_ipv4(source) or format_ipv4(source)
    dst = cached_ipv4(destination) or format_ipv4(destination)
    offset += header_length
    if fragment & 0x3FFF and not cut:  # more fragments, or a fragment offset
        if not total_length:
            raise ValueError("IPv4 fragment: total length 0")
        reassembled = fragments.reassemble(
            ts,
            (4, src, dst, ident, protocol),
            (fragment & 0x1FFF) << 3,
            data[offset:end],
            bool(fragment & 0x2000),
            protocol,
        )
        if reassembled is None:
            return None
        data = reassembled[1]
        offset, end = 0, len(data)
    if protocol == IPPROTO_UDP:
        return transport.udp(fragments, ts, src, dst, data, offset, end, mac, vlan, depth)
    if protocol == IPPROTO_TCP:
        return transport.tcp(ts, src, dst, data, offset, end, mac, vlan)
    return tunnels.tunnel(fragments, ts, protocol, data, offset, end, vlan, depth)


def ipv6(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    available = end - offset
    if available < 40:
        raise ValueError(f"IPv6: {available} bytes < 40")
    version, payload_length, next_header, source, destination = _IPV6(data, offset)
    if version >> 4 != 6:
        raise ValueError(f"IPv6: version {version >> 4}")
    if payload_length > available - 40 and next_header != IPPROTO_UDP:
        raise ValueError(f"IPv6: payload length {payload_length} > {available - 40} bytes captured")
    if 0 < payload_length <= available - 40:
        end = offset + 40 + payload_length  # else a jumbogram, or offload: the frame says
    src = cached_ipv6(source) or format_ipv6(source)
    dst = cached_ipv6(destination) or format_ipv6(destination)
    offset += 40
    position = 1
    while True:
        if next_header == IPPROTO_UDP:
            return transport.udp(fragments, ts, src, dst, data, offset, end, mac, vlan, depth)
        if next_header == IPPROTO_TCP:
            return transport.tcp(ts, src, dst, data, offset, end, mac, vlan)
        if next_header in _IPV6_OPTION_HEADERS or next_header == _IPV6_AH:
            if end - offset < 8:
                raise ValueError(f"IPv6 extension #{position}: {end - offset} bytes < 8")
            if next_header == _IPV6_AH:
                length = (data[offset + 1] + 2) << 2
            else:
                length = (data[offset + 1] + 1) << 3
            if length > end - offset:
                raise ValueError(
                    f"IPv6 extension #{position}: length {length} > {end - offset} bytes left"
                )
            next_header = data[offset]
            offset += length
        elif next_header == _IPV6_FRAGMENT:
            if end - offset < 8:
                raise ValueError(f"IPv6 fragment header: {end - offset} bytes < 8")
            following, offset_flags, ident = _IPV6_FRAGMENT_HEADER(data, offset)
            offset += 8
            if offset_flags & 0xFFF9 == 0:  # atomic fragment: offset 0, no more fragments
                next_header = following
            elif not payload_length:
                raise ValueError("IPv6 fragment: payload length 0")
            else:
                reassembled = fragments.reassemble(
                    ts,
                    (6, src, dst, ident),
                    offset_flags & 0xFFF8,
                    data[offset:end],
                    bool(offset_flags & 1),
                    following,
                )
                if reassembled is None:
                    return None
                next_header, data = reassembled
                offset, end = 0, len(data)
        elif next_header == _IPV6_NO_NEXT:
            return None
        else:
            return tunnels.tunnel(fragments, ts, next_header, data, offset, end, vlan, depth)
        position += 1
