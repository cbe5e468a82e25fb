"""Link layers: what comes before the IP header, for each link type read.

Ethernet (802.1Q/802.1ad tags at any depth, PPPoE sessions, bridged Ethernet), BSD loopback,
raw IP, Linux cooked captures v1 and v2, PPP and NFLOG. Each reader hands the IP packet inside
to ``monitor.decode.ip``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from monitor.decode import ip, tunnels
from monitor.decode.addresses import cached_mac, format_mac
from monitor.decode.fragments import FragmentTable
from monitor.decode.wire import ETHERTYPE_BRIDGING, ETHERTYPE_IPV4, ETHERTYPE_IPV6, TWO_U16, U16_BE
from monitor.values import Packet

__all__ = [
    "LINK_READERS",
    "LINKTYPE_NAMES",
    "after_ethertype",
    "ethernet",
    "ppp",
    "pppoe",
    "read_loopback",
    "read_nflog",
    "read_ppp",
    "read_raw",
    "read_sll",
    "read_sll2",
]

LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL",
    1: "ETHERNET",
    3: "AX25",
    6: "IEEE802_5",
    8: "SLIP",
    9: "PPP",
    10: "FDDI",
    12: "RAW",
    14: "RAW",
    50: "PPP_HDLC",
    51: "PPP_ETHER",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    107: "FRELAY",
    108: "LOOP",
    113: "LINUX_SLL",
    119: "IEEE802_11_PRISM",
    127: "IEEE802_11_RADIOTAP",
    143: "DOCSIS",
    163: "IEEE802_11_AVS",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4_WITHFCS",
    220: "USB_LINUX_MMAPPED",
    228: "IPV4",
    229: "IPV6",
    230: "IEEE802_15_4_NOFCS",
    239: "NFLOG",
    249: "USBPCAP",
    253: "NETLINK",
    258: "PKTAP",
    276: "LINUX_SLL2",
}
"""pcap LINKTYPE_* values and their names, read or not, for summaries and error messages."""

_ETHERTYPE_PPPOE_SESSION = 0x8864
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))

_AF_INET = 2
_AF_INET6_BSD = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, macOS
_ARPHRD_NETLINK = 824
_NFULA_PAYLOAD = 9

_ETHERNET = struct.Struct("!6x6sH").unpack_from  # source MAC, ethertype
_SLL = struct.Struct("!2xHH6s2xH").unpack_from  # ARPHRD, address length, address, protocol
_SLL2 = struct.Struct("!H6xH1xB6s").unpack_from  # protocol, ARPHRD, address length, address
_U32_LE = struct.Struct("<I").unpack_from
_U32_BE = struct.Struct(">I").unpack_from
_U16_LE = struct.Struct("<H").unpack_from

LinkReader = Callable[[FragmentTable, float, bytes], "Packet | None"]


def read_loopback(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """LINKTYPE_NULL/LOOP: a 4-byte address family, in either byte order."""
    if len(data) < 4:
        raise ValueError(f"loopback: frame of {len(data)} bytes < 4")
    family = _U32_LE(data, 0)[0]
    if family > 0xFFFF:
        family = _U32_BE(data, 0)[0]
    if family == _AF_INET:
        return ip.ipv4(fragments, ts, data, 4, len(data), None, None, 0)
    if family in _AF_INET6_BSD:
        return ip.ipv6(fragments, ts, data, 4, len(data), None, None, 0)
    return None


def read_raw(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """Raw IP link types: the version nibble decides, whatever the link type claims.

    LINKTYPE_IPV4 files exist that hold IPv6 packets; tshark reads those by the nibble too.
    """
    if not data:
        raise ValueError("raw IP: empty frame")
    version = data[0] >> 4
    if version == 4:
        return ip.ipv4(fragments, ts, data, 0, len(data), None, None, 0)
    if version == 6:
        return ip.ipv6(fragments, ts, data, 0, len(data), None, None, 0)
    raise ValueError(f"raw IP: version {version}")


def read_sll(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """LINKTYPE_LINUX_SLL: 16-byte Linux cooked header."""
    if len(data) < 16:
        raise ValueError(f"SLL: frame of {len(data)} bytes < 16")
    hatype, address_length, address, protocol = _SLL(data, 0)
    if hatype == _ARPHRD_NETLINK:
        return None
    mac = format_mac(address) if address_length == 6 else None
    return after_ethertype(fragments, ts, data, 16, len(data), protocol, mac, None, 0)


def read_sll2(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """LINKTYPE_LINUX_SLL2: 20-byte Linux cooked header, version 2."""
    if len(data) < 20:
        raise ValueError(f"SLL2: frame of {len(data)} bytes < 20")
    protocol, hatype, address_length, address = _SLL2(data, 0)
    if hatype == _ARPHRD_NETLINK:
        return None
    mac = format_mac(address) if address_length == 6 else None
    return after_ethertype(fragments, ts, data, 20, len(data), protocol, mac, None, 0)


def read_ppp(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """LINKTYPE_PPP and PPP_HDLC."""
    return ppp(fragments, ts, data, 0, len(data), None, None, 0)


def read_nflog(fragments: FragmentTable, ts: float, data: bytes) -> Packet | None:
    """LINKTYPE_NFLOG: a 4-byte header, then TLVs in the capturing host's byte order."""
    end = len(data)
    if end < 4:
        raise ValueError(f"NFLOG: frame of {end} bytes < 4")
    u16 = _U16_LE
    if end >= 8 and not 4 <= _U16_LE(data, 4)[0] <= end - 4:
        u16 = U16_BE  # written on a big-endian host
    position = 4
    while end - position >= 4:
        length = u16(data, position)[0]
        tlv_type = u16(data, position + 2)[0] & 0x7FFF  # without NLA_F_NESTED
        if length < 4 or length > end - position:
            raise ValueError(f"NFLOG: TLV at byte {position}: length {length} invalid")
        if tlv_type == _NFULA_PAYLOAD:
            return read_raw(fragments, ts, data[position + 4 : position + length])
        position += (length + 3) & ~3
    return None


def ethernet(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    if end - offset < 14:
        raise ValueError(f"Ethernet: {end - offset} bytes < 14")
    source, ethertype = _ETHERNET(data, offset)
    mac = cached_mac(source) or format_mac(source)
    if ethertype == ETHERTYPE_IPV4:
        return ip.ipv4(fragments, ts, data, offset + 14, end, mac, vlan, depth)
    return after_ethertype(fragments, ts, data, offset + 14, end, ethertype, mac, vlan, depth)


def after_ethertype(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    ethertype: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """What follows an ethertype: IP, VLAN tags, a PPPoE session, bridged Ethernet."""
    while ethertype in _VLAN_TPIDS:
        if end - offset < 4:
            raise ValueError(f"VLAN tag: {end - offset} bytes < 4")
        tci, ethertype = TWO_U16(data, offset)
        if tci & 0xFFF:  # VLAN id 0 is a priority tag, not a VLAN
            vlan = tci & 0xFFF
        offset += 4
    if ethertype == ETHERTYPE_IPV4:
        return ip.ipv4(fragments, ts, data, offset, end, mac, vlan, depth)
    if ethertype == ETHERTYPE_IPV6:
        return ip.ipv6(fragments, ts, data, offset, end, mac, vlan, depth)
    if ethertype == _ETHERTYPE_PPPOE_SESSION:
        return pppoe(fragments, ts, data, offset, end, mac, vlan, depth)
    if ethertype == ETHERTYPE_BRIDGING:
        tunnels.check_depth(depth)
        return ethernet(fragments, ts, data, offset, end, vlan, depth + 1)
    return None


def pppoe(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """A PPPoE session header (RFC 2516), then PPP with a 2-byte protocol."""
    if end - offset < 8:
        raise ValueError(f"PPPoE: {end - offset} bytes < 8")
    version_type, code = data[offset], data[offset + 1]
    if version_type != 0x11 or code != 0:
        raise ValueError(f"PPPoE session: version/type {version_type:#x}, code {code:#x}")
    # The length field is not used: real captures carry wrong ones (zeek-tls-pppoe-qinq),
    # and the IP header inside says where the packet ends.
    return ppp(fragments, ts, data, offset + 6, end, mac, vlan, depth)


def ppp(
    fragments: FragmentTable,
    ts: float,
    data: bytes,
    offset: int,
    end: int,
    mac: str | None,
    vlan: int | None,
    depth: int,
) -> Packet | None:
    """A PPP frame: optional ff 03 address/control, then a 1- or 2-byte protocol."""
    if end - offset >= 2 and data[offset] == 0xFF and data[offset + 1] == 0x03:
        offset += 2
    if offset >= end:
        raise ValueError("PPP: no protocol field")
    protocol = data[offset]
    if protocol & 1:  # protocol field compression: odd first byte is the whole field
        offset += 1
    elif end - offset < 2:
        raise ValueError("PPP: protocol field cut short")
    else:
        protocol = protocol << 8 | data[offset + 1]
        offset += 2
    if protocol == 0x0021:
        return ip.ipv4(fragments, ts, data, offset, end, mac, vlan, depth)
    if protocol == 0x0057:
        return ip.ipv6(fragments, ts, data, offset, end, mac, vlan, depth)
    return None


LINK_READERS: dict[int, LinkReader] = {
    0: read_loopback,
    108: read_loopback,
    12: read_raw,
    14: read_raw,
    101: read_raw,
    228: read_raw,
    229: read_raw,
    113: read_sll,
    276: read_sll2,
    9: read_ppp,
    50: read_ppp,
    239: read_nflog,
}
"""Link types other than Ethernet (which ``Decoder.decode`` tests first) and how to read them."""
