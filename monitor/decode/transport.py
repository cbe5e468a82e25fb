"""UDP datagrams and TCP segments: the packets ``Decoder.decode`` returns.

A UDP datagram on a tunnel port is offered to ``monitor.decode.tunnels`` first.
"""

from __future__ import annotations

import struct

from monitor.decode import tunnels
from monitor.decode.fragments import FragmentTable
from monitor.decode.wire import TCP_FIN_SYN_RST, TUNNEL_PORTS, new_packet
from monitor.values import IPPROTO_TCP, IPPROTO_UDP, Packet

__all__ = ["tcp", "udp"]

_UDP = struct.Struct("!HHH").unpack_from  # ports, length
_TCP = struct.Struct("!HHI4xBB").unpack_from  # ports, seq, data offset, flags


def udp(
    fragments: FragmentTable,
    ts: float,
    src: str,
    dst: str,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """A UDP datagram, its payload cut to ``min(UDP length, IP payload) - 8`` bytes.

    A UDP length beyond the IP payload (a snap length cut, or a lie) keeps the IP payload,
    as Zeek and tshark do: the bytes were sent, whatever the header claims. A length under
    8 is malformed, except 0, which IPv6 jumbograms and segmentation offload write.
    """
    available = end - offset
    if available < 8:
        raise ValueError(f"UDP: {available} bytes < 8")
    source_port, destination_port, length = _UDP(data, offset)
    if 8 <= length <= available:
        end = offset + length
    elif 0 < length < 8:
        raise ValueError(f"UDP: length {length} < 8")
    offset += 8
    if destination_port in TUNNEL_PORTS or source_port in TUNNEL_PORTS:
        try:
            inner = tunnels.udp_tunnel(
                fragments,
                ts,
                destination_port if destination_port in TUNNEL_PORTS else source_port,
                data,
                offset,
                end,
                vlan,
                depth,
            )
        except ValueError:
            inner = tunnels.NOT_A_TUNNEL  # not this tunnel after all: a plain datagram
        if inner is not tunnels.NOT_A_TUNNEL:
            return inner
    return new_packet(
        Packet,
        (
            ts,
            src,
            dst,
            IPPROTO_UDP,
            source_port,
            destination_port,
            data[offset:end],
            mac,
            vlan,
            0,
            0,
        ),
    )


def tcp(
    ts: float,
    src: str,
    dst: str,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
) -> Packet | None:
    """A TCP segment; None when it has no payload and no SYN, FIN or RST."""
    available = end - offset
    if available < 20:
        raise ValueError(f"TCP: {available} bytes < 20")
    source_port, destination_port, seq, data_offset, flags = _TCP(data, offset)
    header_length = (data_offset >> 4) << 2
    if header_length < 20 or header_length > available:
        raise ValueError(f"TCP: header length {header_length} (of {available} bytes)")
    payload = data[offset + header_length : end]
    if not payload and not flags & TCP_FIN_SYN_RST:
        return None
    return new_packet(
        Packet,
        (ts, src, dst, IPPROTO_TCP, source_port, destination_port, payload, mac, vlan, seq, flags),
    )
