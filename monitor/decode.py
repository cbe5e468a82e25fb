"""Captured link-layer frames to the UDP datagrams and TCP segments inside them.

Every captured frame passes through ``Decoder.decode``, so this module is written for speed:
headers are read with precompiled ``struct.Struct`` objects at offsets into the one frame buffer
(no per-layer slicing), addresses are formatted once and memoised, and ``Packet`` tuples are
built without the keyword-argument machinery of ``NamedTuple.__new__``.

What it reads: Ethernet (802.1Q/802.1ad tags at any depth, PPPoE sessions), BSD loopback, raw
IP, Linux cooked captures v1 and v2, PPP, NFLOG; IPv4 and IPv6 (extension headers, fragment
reassembly); and the tunnels GRE (plain, PPTP, ERSPAN II/III, Ethernet bridging), GRE-in-UDP,
VXLAN, Teredo, GTP-U, IP-in-IP and IPv6-in-IP, unwrapped to the innermost UDP or TCP packet.

The only state is the IP fragment reassembly table, bounded in buffers, bytes and time (time
being the frames' own timestamps; this module never reads the clock).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter

from monitor.errors import UnsupportedLinkType
from monitor.values import IPPROTO_TCP, IPPROTO_UDP, FlowKey, Frame, Packet

__all__ = [
    "LINKTYPE_NAMES",
    "SKIPPED",
    "MAX_DATAGRAM_BYTES",
    "MAX_TUNNEL_DEPTH",
    "Decoder",
    "render_ipv6",
    # The fast path's structs and memoised address formatters, shared with monitor.fastscan,
    # which must read the same bytes the same way.
    "COMMON_HEADERS",
    "COMMON_HEADERS_TAGGED",
    "COMMON_IPV6",
    "TCP_AFTER_PORTS",
    "TUNNEL_PORTS",
    "cached_ipv4",
    "cached_ipv6",
    "cached_mac",
    "format_ipv4",
    "format_ipv6",
    "format_mac",
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

MAX_TUNNEL_DEPTH = 8
"""Tunnels unwrapped at most per frame; a deeper frame is malformed (or a loop built to hurt us)."""

MAX_DATAGRAM_BYTES = 65535
"""The most bytes a reassembled IP datagram may hold."""

_ADDRESS_CACHE_ENTRIES = 65536
"""Memoised address strings per cache; a full cache is emptied, not grown."""

_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_PPPOE_SESSION = 0x8864
_ETHERTYPE_BRIDGING = 0x6558
_ETHERTYPE_ERSPAN_2 = 0x88BE
_ETHERTYPE_ERSPAN_3 = 0x22EB
_ETHERTYPE_PPP = 0x880B
_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))

_IPPROTO_IPIP = 4
_IPPROTO_IPV6 = 41
_IPPROTO_GRE = 47
_IPV6_OPTION_HEADERS = frozenset((0, 43, 60))  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_IPV6_NO_NEXT = 59

_PORT_VXLAN = 4789
_PORT_GRE_IN_UDP = 4754
_PORT_TEREDO = 3544
_PORT_GTP_U = 2152
TUNNEL_PORTS = frozenset((_PORT_VXLAN, _PORT_GRE_IN_UDP, _PORT_TEREDO, _PORT_GTP_U))

_AF_INET = 2
_AF_INET6_BSD = frozenset((24, 28, 30))  # NetBSD/OpenBSD, FreeBSD, macOS
_ARPHRD_NETLINK = 824
_NFULA_PAYLOAD = 9

_TCP_FIN_SYN_RST = 0x07
_TCP_SYN = 0x02

_ETHERNET = struct.Struct("!6x6sH").unpack_from  # source MAC, ethertype
_IPV4 = struct.Struct("!BxHHHxB2x4s4s").unpack_from  # ver/ihl, length, id, frag, proto, src, dst
_IPV6 = struct.Struct("!B3xHB1x16s16s").unpack_from  # version, payload length, next, src, dst
_IPV6_FRAGMENT_HEADER = struct.Struct("!BxHI").unpack_from  # next, offset|M, identification
_UDP = struct.Struct("!HHH").unpack_from  # ports, length
_TCP = struct.Struct("!HHI4xBB").unpack_from  # ports, seq, data offset, flags
_TWO_U16 = struct.Struct("!HH").unpack_from
COMMON_HEADERS = struct.Struct("!6x6sHBxH2xHxB2x4s4sHHH").unpack_from
"""Ethernet source and type, IPv4 (ver/ihl, length, frag, proto, addresses), UDP ports, length."""
COMMON_HEADERS_TAGGED = struct.Struct("!6x6s2xHHBxH2xHxB2x4s4sHHH").unpack_from
"""``COMMON_HEADERS`` with an 802.1Q tag: the TCI comes first, then the same fields."""
TCP_AFTER_PORTS = struct.Struct("!I4xBB").unpack_from  # seq, data offset, flags
COMMON_IPV6 = struct.Struct("!B3xHB1x16s16sHHH").unpack_from
"""IPv6 (version, payload length, next header, addresses), then UDP ports and length."""
_SLL = struct.Struct("!2xHH6s2xH").unpack_from  # ARPHRD, address length, address, protocol
_SLL2 = struct.Struct("!H6xH1xB6s").unpack_from  # protocol, ARPHRD, address length, address
_U32_LE = struct.Struct("<I").unpack_from
_U32_BE = struct.Struct(">I").unpack_from
_U16_LE = struct.Struct("<H").unpack_from
_U16_BE = struct.Struct(">H").unpack_from
_EIGHT_U16 = struct.Struct("!8H").unpack

_new_packet = tuple.__new__
"""``tuple.__new__(Packet, fields)``: a Packet without NamedTuple's argument handling (2x faster)."""

_NOT_A_TUNNEL = Packet(0.0, "not a tunnel", "", 0, 0, 0, b"")
"""Sentinel: a UDP payload on a tunnel port that is not that tunnel's header."""

_NOT_COMMON = Packet(0.0, "not common", "", 0, 0, 0, b"")
"""Sentinel: the fast path does not cover this frame."""

SKIPPED = Packet(0.0, "skipped", "", IPPROTO_TCP, 0, 0, b"")
"""What ``Decoder.decode`` returns for a TCP segment its ``skip_tcp`` predicate rejects."""

SkipTcp = Callable[[FlowKey], bool]
"""Given a directed TCP flow: True when the caller has no use for its segments (it gave up)."""

_ipv4_text: dict[bytes, str] = {}
_ipv6_text: dict[bytes, str] = {}
_mac_text: dict[bytes, str] = {}
cached_ipv4 = _ipv4_text.get  # bound once: the caches are cleared, never replaced
cached_ipv6 = _ipv6_text.get
cached_mac = _mac_text.get


def format_ipv4(raw: bytes) -> str:
    text = _ipv4_text.get(raw)
    if text is None:
        if len(_ipv4_text) >= _ADDRESS_CACHE_ENTRIES:
            _ipv4_text.clear()
        text = _ipv4_text[raw] = ".".join(map(str, raw))
    return text


def format_ipv6(raw: bytes) -> str:
    text = _ipv6_text.get(raw)
    if text is None:
        if len(_ipv6_text) >= _ADDRESS_CACHE_ENTRIES:
            _ipv6_text.clear()
        text = _ipv6_text[raw] = render_ipv6(raw)
    return text


def format_mac(raw: bytes) -> str:
    text = _mac_text.get(raw)
    if text is None:
        if len(_mac_text) >= _ADDRESS_CACHE_ENTRIES:
            _mac_text.clear()
        text = _mac_text[raw] = raw.hex(":")
    return text


def render_ipv6(raw: bytes) -> str:
    """The RFC 5952 text of a 16-byte IPv6 address, as ``str(ipaddress.IPv6Address(raw))``.

    String operations in C instead of a loop over the groups (three times faster): format all
    eight groups, then turn the first of the longest runs of two or more ``0`` groups into
    ``::``, found by searching the colon-framed text for the longest run first.
    """
    framed = _IPV6_FRAMED % _EIGHT_U16(raw)
    if ":0:0:" not in framed:
        return framed[1:-1]
    for run in _ZERO_RUNS:
        at = framed.find(run)
        if at >= 0:
            return framed[1:at] + "::" + framed[at + len(run) : -1]
    return framed[1:-1]


_IPV6_FRAMED = ":%x:%x:%x:%x:%x:%x:%x:%x:"
_ZERO_RUNS = tuple(":" + "0:" * length for length in range(8, 1, -1))
"""``:0:0:...:`` for runs of eight down to two zero groups: the longest is looked for first."""


class _FragmentBuffer:
    """The pieces of one IP datagram so far: sorted, non-overlapping (start, end, bytes)."""

    __slots__ = ("first_ts", "pieces", "received", "total", "protocol")

    def __init__(self, first_ts: float) -> None:
        self.first_ts = first_ts
        self.pieces: list[tuple[int, int, bytes]] = []
        self.received = 0
        self.total = -1
        """The datagram's length, known once the last fragment (more-fragments clear) arrived."""
        self.protocol = -1
        """The transport protocol, known once the first fragment (offset 0) arrived."""

    def add(self, start: int, chunk: bytes, more: bool) -> None:
        """Add one fragment; bytes already held win over new ones (first arrival wins)."""
        end = start + len(chunk)
        if end > MAX_DATAGRAM_BYTES:
            raise ValueError(f"fragment: ends at byte {end} > {MAX_DATAGRAM_BYTES}")
        if more:
            if len(chunk) % 8:
                raise ValueError(
                    f"fragment: {len(chunk)} bytes, not a multiple of 8, before the last"
                )
            if 0 <= self.total < end:
                raise ValueError(f"fragment: ends at byte {end} after the last one ({self.total})")
        else:
            if self.total >= 0 and self.total != end:
                raise ValueError(f"fragment: second last fragment ends at {end}, not {self.total}")
            if self.pieces and self.pieces[-1][1] > end:
                raise ValueError(f"fragment: last one ends at {end} before held bytes do")
            self.total = end
        new: list[tuple[int, int, bytes]] = []
        position = start
        for piece_start, piece_end, _ in self.pieces:
            if piece_end <= position:
                continue
            if piece_start >= end:
                break
            if piece_start > position:
                new.append((position, piece_start, chunk[position - start : piece_start - start]))
            position = piece_end
            if position >= end:
                break
        if position < end:
            new.append((position, end, chunk[position - start :]))
        if new:
            self.pieces += new
            self.pieces.sort(key=_piece_start)
            self.received += sum(piece_end - piece_start for piece_start, piece_end, _ in new)

    def is_complete(self) -> bool:
        return self.received == self.total and self.protocol >= 0


_piece_start = itemgetter(0)

_LinkReader = Callable[["Decoder", float, bytes], "Packet | None"]


class Decoder:
    """Stateful only for IP fragment reassembly (bounded)."""

    __slots__ = ("_fragments", "_max_fragment_buffers", "_fragment_timeout_s")

    def __init__(
        self, *, max_fragment_buffers: int = 1024, fragment_timeout_s: float = 30.0
    ) -> None:
        if max_fragment_buffers < 1:
            raise ValueError(f"max_fragment_buffers must be at least 1, not {max_fragment_buffers}")
        if not fragment_timeout_s > 0:
            raise ValueError(f"fragment_timeout_s must be positive, not {fragment_timeout_s}")
        self._fragments: dict[tuple[object, ...], _FragmentBuffer] = {}
        self._max_fragment_buffers = max_fragment_buffers
        self._fragment_timeout_s = fragment_timeout_s

    @property
    def pending_fragment_buffers(self) -> int:
        """How many datagrams are waiting for more fragments."""
        return len(self._fragments)

    def decode(self, frame: Frame) -> Packet | None:
        """The innermost UDP datagram or TCP segment in ``frame``, or None if it carries none.

        Raises ``ValueError`` for malformed frames and ``UnsupportedLinkType`` for link types
        this decoder does not read (see ``LINKTYPE_NAMES``).
        """
        return self.decode_skipping(frame, None)

    def decode_skipping(self, frame: Frame, skip_tcp: SkipTcp | None) -> Packet | None:
        """``decode``, except that unwanted TCP segments come back as ``SKIPPED``.

        A TCP segment on the Ethernet fast path (plain IPv4 or IPv6, at most one VLAN tag)
        that has no SYN and whose flow ``skip_tcp`` rejects is returned as ``SKIPPED``,
        before its payload is copied: bulk transfers on flows the extractor gave up on cost
        little more than their header checks. Other frames decode as ``decode`` does.
        """
        ts, linktype, data = frame
        try:
            if linktype == 1:
                size = len(data)
                if size >= 42:
                    packet = _decode_common_ethernet(ts, data, size, skip_tcp)
                    if packet is not _NOT_COMMON:
                        return packet
                return self._ethernet(ts, data, 0, size, None, 0)
            reader = _LINK_READERS.get(linktype)
            if reader is None:
                raise UnsupportedLinkType(linktype)
            return reader(self, ts, data)
        except (struct.error, IndexError) as e:  # a length check missed: still malformed input
            raise ValueError(f"link type {linktype}: {e}") from e

    # -- link layers -------------------------------------------------------------------------

    def _read_loopback(self, ts: float, data: bytes) -> Packet | None:
        """LINKTYPE_NULL/LOOP: a 4-byte address family, in either byte order."""
        if len(data) < 4:
            raise ValueError(f"loopback: frame of {len(data)} bytes < 4")
        family = _U32_LE(data, 0)[0]
        if family > 0xFFFF:
            family = _U32_BE(data, 0)[0]
        if family == _AF_INET:
            return self._ipv4(ts, data, 4, len(data), None, None, 0)
        if family in _AF_INET6_BSD:
            return self._ipv6(ts, data, 4, len(data), None, None, 0)
        return None

    def _read_raw(self, ts: float, data: bytes) -> Packet | None:
        """Raw IP link types: the version nibble decides, whatever the link type claims.

        LINKTYPE_IPV4 files exist that hold IPv6 packets; tshark reads those by the nibble too.
        """
        if not data:
            raise ValueError("raw IP: empty frame")
        version = data[0] >> 4
        if version == 4:
            return self._ipv4(ts, data, 0, len(data), None, None, 0)
        if version == 6:
            return self._ipv6(ts, data, 0, len(data), None, None, 0)
        raise ValueError(f"raw IP: version {version}")

    def _read_sll(self, ts: float, data: bytes) -> Packet | None:
        """LINKTYPE_LINUX_SLL: 16-byte Linux cooked header."""
        if len(data) < 16:
            raise ValueError(f"SLL: frame of {len(data)} bytes < 16")
        hatype, address_length, address, protocol = _SLL(data, 0)
        if hatype == _ARPHRD_NETLINK:
            return None
        mac = format_mac(address) if address_length == 6 else None
        return self._ethertype(ts, data, 16, len(data), protocol, mac, None, 0)

    def _read_sll2(self, ts: float, data: bytes) -> Packet | None:
        """LINKTYPE_LINUX_SLL2: 20-byte Linux cooked header, version 2."""
        if len(data) < 20:
            raise ValueError(f"SLL2: frame of {len(data)} bytes < 20")
        protocol, hatype, address_length, address = _SLL2(data, 0)
        if hatype == _ARPHRD_NETLINK:
            return None
        mac = format_mac(address) if address_length == 6 else None
        return self._ethertype(ts, data, 20, len(data), protocol, mac, None, 0)

    def _read_ppp(self, ts: float, data: bytes) -> Packet | None:
        """LINKTYPE_PPP and PPP_HDLC."""
        return self._ppp(ts, data, 0, len(data), None, None, 0)

    def _read_nflog(self, ts: float, data: bytes) -> Packet | None:
        """LINKTYPE_NFLOG: a 4-byte header, then TLVs in the capturing host's byte order."""
        end = len(data)
        if end < 4:
            raise ValueError(f"NFLOG: frame of {end} bytes < 4")
        u16 = _U16_LE
        if end >= 8 and not 4 <= _U16_LE(data, 4)[0] <= end - 4:
            u16 = _U16_BE  # written on a big-endian host
        position = 4
        while end - position >= 4:
            length = u16(data, position)[0]
            tlv_type = u16(data, position + 2)[0] & 0x7FFF  # without NLA_F_NESTED
            if length < 4 or length > end - position:
                raise ValueError(f"NFLOG: TLV at byte {position}: length {length} invalid")
            if tlv_type == _NFULA_PAYLOAD:
                return self._read_raw(ts, data[position + 4 : position + length])
            position += (length + 3) & ~3
        return None

    def _ethernet(
        self, ts: float, data: bytes, offset: int, end: int, vlan: int | None, depth: int
    ) -> Packet | None:
        if end - offset < 14:
            raise ValueError(f"Ethernet: {end - offset} bytes < 14")
        source, ethertype = _ETHERNET(data, offset)
        mac = cached_mac(source) or format_mac(source)
        if ethertype == _ETHERTYPE_IPV4:
            return self._ipv4(ts, data, offset + 14, end, mac, vlan, depth)
        return self._ethertype(ts, data, offset + 14, end, ethertype, mac, vlan, depth)

    def _ethertype(
        self,
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
            tci, ethertype = _TWO_U16(data, offset)
            if tci & 0xFFF:  # VLAN id 0 is a priority tag, not a VLAN
                vlan = tci & 0xFFF
            offset += 4
        if ethertype == _ETHERTYPE_IPV4:
            return self._ipv4(ts, data, offset, end, mac, vlan, depth)
        if ethertype == _ETHERTYPE_IPV6:
            return self._ipv6(ts, data, offset, end, mac, vlan, depth)
        if ethertype == _ETHERTYPE_PPPOE_SESSION:
            return self._pppoe(ts, data, offset, end, mac, vlan, depth)
        if ethertype == _ETHERTYPE_BRIDGING:
            _check_depth(depth)
            return self._ethernet(ts, data, offset, end, vlan, depth + 1)
        return None

    def _pppoe(
        self,
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
        return self._ppp(ts, data, offset + 6, end, mac, vlan, depth)

    def _ppp(
        self,
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
            return self._ipv4(ts, data, offset, end, mac, vlan, depth)
        if protocol == 0x0057:
            return self._ipv6(ts, data, offset, end, mac, vlan, depth)
        return None

    # -- IP ----------------------------------------------------------------------------------

    def _ipv4(
        self,
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
        version_ihl, total_length, ident, fragment, protocol, source, destination = _IPV4(
            data, offset
        )
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
            reassembled = self._reassemble(
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
            return self._udp(ts, src, dst, data, offset, end, mac, vlan, depth)
        if protocol == IPPROTO_TCP:
            return _tcp(ts, src, dst, data, offset, end, mac, vlan)
        return self._tunnel(ts, protocol, data, offset, end, vlan, depth)

    def _ipv6(
        self,
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
            raise ValueError(
                f"IPv6: payload length {payload_length} > {available - 40} bytes captured"
            )
        if 0 < payload_length <= available - 40:
            end = offset + 40 + payload_length  # else a jumbogram, or offload: the frame says
        src = cached_ipv6(source) or format_ipv6(source)
        dst = cached_ipv6(destination) or format_ipv6(destination)
        offset += 40
        position = 1
        while True:
            if next_header == IPPROTO_UDP:
                return self._udp(ts, src, dst, data, offset, end, mac, vlan, depth)
            if next_header == IPPROTO_TCP:
                return _tcp(ts, src, dst, data, offset, end, mac, vlan)
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
                    reassembled = self._reassemble(
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
                return self._tunnel(ts, next_header, data, offset, end, vlan, depth)
            position += 1

    def _reassemble(
        self,
        ts: float,
        key: tuple[object, ...],
        start: int,
        chunk: bytes,
        more: bool,
        protocol: int,
    ) -> tuple[int, bytes] | None:
        """Add a fragment; the (protocol, payload) of the datagram once it is complete."""
        buffers = self._fragments
        horizon = ts - self._fragment_timeout_s
        while buffers:  # time out the oldest buffers (insertion order ~ capture order)
            oldest = next(iter(buffers))
            if buffers[oldest].first_ts >= horizon:
                break
            del buffers[oldest]
        buffer = buffers.get(key)
        if buffer is not None and buffer.first_ts < horizon:  # old, behind a newer one
            del buffers[key]
            buffer = None
        if buffer is None:
            if len(buffers) >= self._max_fragment_buffers:
                del buffers[next(iter(buffers))]
            buffer = buffers[key] = _FragmentBuffer(ts)
        try:
            buffer.add(start, chunk, more)
        except ValueError:
            del buffers[key]
            raise
        if start == 0 and buffer.protocol < 0:
            buffer.protocol = protocol
        if not buffer.is_complete():
            return None
        del buffers[key]
        return buffer.protocol, b"".join([piece for _, _, piece in buffer.pieces])

    # -- transport and tunnels ---------------------------------------------------------------

    def _udp(
        self,
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
                inner = self._udp_tunnel(
                    ts,
                    destination_port if destination_port in TUNNEL_PORTS else source_port,
                    data,
                    offset,
                    end,
                    vlan,
                    depth,
                )
            except ValueError:
                inner = _NOT_A_TUNNEL  # not this tunnel after all: a plain datagram
            if inner is not _NOT_A_TUNNEL:
                return inner
        return _new_packet(
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

    def _udp_tunnel(
        self, ts: float, port: int, data: bytes, offset: int, end: int, vlan: int | None, depth: int
    ) -> Packet | None:
        """VXLAN, GRE-in-UDP, GTP-U or Teredo; ``_NOT_A_TUNNEL`` if the payload is not that tunnel."""
        if port == _PORT_VXLAN:
            if end - offset < 8 + 14 or not data[offset] & 0x08:  # the I flag: VNI is valid
                return _NOT_A_TUNNEL
            _check_depth(depth)
            return self._ethernet(ts, data, offset + 8, end, vlan, depth + 1)
        if port == _PORT_GRE_IN_UDP:
            return self._gre(ts, data, offset, end, vlan, depth)
        if port == _PORT_GTP_U:
            return self._gtp_u(ts, data, offset, end, vlan, depth)
        return self._teredo(ts, data, offset, end, vlan, depth)

    def _gtp_u(
        self, ts: float, data: bytes, offset: int, end: int, vlan: int | None, depth: int
    ) -> Packet | None:
        """GTP-U (3GPP TS 29.281) user data: a mobile operator's mirror port carries it.

        Only a G-PDU (version 1, protocol type GTP, message 0xff) whose length field matches
        the datagram exactly and whose payload starts like an IP header is unwrapped: DNS on
        port 2152 that merely looks like GTP (``zeek-dns-false-gtp-vlan``) stays plain UDP.
        """
        if end - offset < 8 + 20:
            return _NOT_A_TUNNEL
        flags = data[offset]
        if flags >> 5 != 1 or not flags & 0x10 or data[offset + 1] != 0xFF:
            return _NOT_A_TUNNEL
        if _U16_BE(data, offset + 2)[0] != end - offset - 8:
            return _NOT_A_TUNNEL
        inner = offset + 8
        if flags & 0x07:  # sequence number, N-PDU number, next extension header type
            inner += 4
            next_type = data[inner - 1]
            while next_type:
                if inner >= end or data[inner] == 0:
                    return _NOT_A_TUNNEL
                inner += 4 * data[inner]
                if inner > end:
                    return _NOT_A_TUNNEL
                next_type = data[inner - 1]
        if inner >= end:
            return _NOT_A_TUNNEL
        version = data[inner] >> 4
        _check_depth(depth)
        if version == 4:
            return self._ipv4(ts, data, inner, end, None, vlan, depth + 1)
        if version == 6:
            return self._ipv6(ts, data, inner, end, None, vlan, depth + 1)
        return _NOT_A_TUNNEL

    def _teredo(
        self, ts: float, data: bytes, offset: int, end: int, vlan: int | None, depth: int
    ) -> Packet | None:
        """Teredo (RFC 4380): optional authentication and origin indication, then IPv6."""
        if end - offset >= 4 and data[offset] == 0 and data[offset + 1] == 1:
            offset += 4 + data[offset + 2] + data[offset + 3] + 8 + 1  # id, value, nonce, conf.
        if end - offset >= 8 and data[offset] == 0 and data[offset + 1] == 0:
            offset += 8
        if (
            end - offset < 40
            or data[offset] >> 4 != 6
            or _U16_BE(data, offset + 4)[0] != end - offset - 40
        ):
            return _NOT_A_TUNNEL
        _check_depth(depth)
        return self._ipv6(ts, data, offset, end, None, vlan, depth + 1)

    def _tunnel(
        self,
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
            return self._gre(ts, data, offset, end, vlan, depth)
        if protocol == _IPPROTO_IPIP:
            _check_depth(depth)
            return self._ipv4(ts, data, offset, end, None, vlan, depth + 1)
        if protocol == _IPPROTO_IPV6:
            _check_depth(depth)
            return self._ipv6(ts, data, offset, end, None, vlan, depth + 1)
        return None

    def _gre(
        self, ts: float, data: bytes, offset: int, end: int, vlan: int | None, depth: int
    ) -> Packet | None:
        """GRE (RFC 2784/2890), PPTP's enhanced GRE (RFC 2637) and ERSPAN II/III payloads."""
        _check_depth(depth)
        depth += 1
        if end - offset < 4:
            raise ValueError(f"GRE: {end - offset} bytes < 4")
        flags, protocol = _TWO_U16(data, offset)
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
            return self._ppp(ts, data, offset, end, None, vlan, depth)
        if protocol == _ETHERTYPE_BRIDGING:
            return self._ethernet(ts, data, offset, end, vlan, depth)
        if protocol == _ETHERTYPE_ERSPAN_2:
            if flags & 0x1000:  # type II has a sequence number and an 8-byte header; type I neither
                if end - offset < 8 or data[offset] >> 4 != 1:
                    raise ValueError("ERSPAN II: header missing or not version 1")
                offset += 8
            return self._ethernet(ts, data, offset, end, vlan, depth)
        if protocol == _ETHERTYPE_ERSPAN_3:
            if end - offset < 12 or data[offset] >> 4 != 2:
                raise ValueError("ERSPAN III: header missing or not version 2")
            offset += 20 if data[offset + 11] & 0x01 else 12  # O flag: platform subheader
            return self._ethernet(ts, data, offset, end, vlan, depth)
        return self._ethertype(ts, data, offset, end, protocol, None, vlan, depth)


def _decode_common_ethernet(
    ts: float, data: bytes, size: int, skip_tcp: SkipTcp | None = None
) -> Packet | None:
    """The fast path: Ethernet, at most one 802.1Q tag, plain IPv4 or IPv6, then UDP or TCP.

    Covers nearly every frame a gateway sees, with one ``unpack_from`` for all the headers.
    Returns ``_NOT_COMMON`` for anything else, or anything odd, which the general path then
    reads layer by layer (and reports on). ``size`` is ``len(data)``, at least 42.
    """
    if data[12] == 0x81 and data[13] == 0x00:  # one 802.1Q tag
        if size < 46:
            return _NOT_COMMON
        (
            source,
            tci,
            ethertype,
            version_ihl,
            total_length,
            fragment,
            protocol,
            source_ip,
            destination_ip,
            source_port,
            destination_port,
            udp_length,
        ) = COMMON_HEADERS_TAGGED(data, 0)
        vlan = (tci & 0xFFF) or None  # VLAN id 0 is a priority tag, not a VLAN
        network = 18
    else:
        (
            source,
            ethertype,
            version_ihl,
            total_length,
            fragment,
            protocol,
            source_ip,
            destination_ip,
            source_port,
            destination_port,
            udp_length,
        ) = COMMON_HEADERS(data, 0)
        vlan = None
        network = 14
    if ethertype != _ETHERTYPE_IPV4 or version_ihl != 0x45 or fragment & 0x3FFF:
        if ethertype == _ETHERTYPE_IPV6:
            return _decode_common_ipv6(ts, data, size, network, source, vlan, skip_tcp)
        return _NOT_COMMON
    transport = network + 20
    end = network + total_length
    if end > size:
        return _NOT_COMMON
    if protocol == IPPROTO_UDP:
        if (
            udp_length < 8
            or udp_length > total_length - 20
            or source_port in TUNNEL_PORTS
            or destination_port in TUNNEL_PORTS
        ):
            return _NOT_COMMON
        return _new_packet(
            Packet,
            (
                ts,
                cached_ipv4(source_ip) or format_ipv4(source_ip),
                cached_ipv4(destination_ip) or format_ipv4(destination_ip),
                IPPROTO_UDP,
                source_port,
                destination_port,
                data[transport + 8 : transport + udp_length],
                cached_mac(source) or format_mac(source),
                vlan,
                0,
                0,
            ),
        )
    if protocol == IPPROTO_TCP and total_length >= 40:
        seq, data_offset, flags = TCP_AFTER_PORTS(data, transport + 4)
        header_length = (data_offset >> 4) << 2
        if header_length < 20 or header_length > total_length - 20:
            return _NOT_COMMON
        if transport + header_length == end and not flags & _TCP_FIN_SYN_RST:
            return None
        src = cached_ipv4(source_ip) or format_ipv4(source_ip)
        dst = cached_ipv4(destination_ip) or format_ipv4(destination_ip)
        if (
            skip_tcp is not None
            and not flags & _TCP_SYN
            and skip_tcp((src, source_port, dst, destination_port))
        ):
            return SKIPPED
        return _new_packet(
            Packet,
            (
                ts,
                src,
                dst,
                protocol,
                source_port,
                destination_port,
                data[transport + header_length : end],
                cached_mac(source) or format_mac(source),
                vlan,
                seq,
                flags,
            ),
        )
    return _NOT_COMMON


def _decode_common_ipv6(
    ts: float,
    data: bytes,
    size: int,
    network: int,
    source: bytes,
    vlan: int | None,
    skip_tcp: SkipTcp | None,
) -> Packet | None:
    """``_decode_common_ethernet`` for IPv6 without extension headers (and no jumbogram)."""
    transport = network + 40
    if size < transport + 8:
        return _NOT_COMMON
    (
        version,
        payload_length,
        next_header,
        source_ip,
        destination_ip,
        source_port,
        destination_port,
        udp_length,
    ) = COMMON_IPV6(data, network)
    end = transport + payload_length
    if version >> 4 != 6 or not payload_length or end > size:
        return _NOT_COMMON
    if next_header == IPPROTO_UDP:
        if (
            udp_length < 8
            or udp_length > payload_length
            or source_port in TUNNEL_PORTS
            or destination_port in TUNNEL_PORTS
        ):
            return _NOT_COMMON
        return _new_packet(
            Packet,
            (
                ts,
                cached_ipv6(source_ip) or format_ipv6(source_ip),
                cached_ipv6(destination_ip) or format_ipv6(destination_ip),
                IPPROTO_UDP,
                source_port,
                destination_port,
                data[transport + 8 : transport + udp_length],
                cached_mac(source) or format_mac(source),
                vlan,
                0,
                0,
            ),
        )
    if next_header == IPPROTO_TCP and payload_length >= 20:
        seq, data_offset, flags = TCP_AFTER_PORTS(data, transport + 4)
        header_length = (data_offset >> 4) << 2
        if header_length < 20 or header_length > payload_length:
            return _NOT_COMMON
        if header_length == payload_length and not flags & _TCP_FIN_SYN_RST:
            return None
        src = cached_ipv6(source_ip) or format_ipv6(source_ip)
        dst = cached_ipv6(destination_ip) or format_ipv6(destination_ip)
        if (
            skip_tcp is not None
            and not flags & _TCP_SYN
            and skip_tcp((src, source_port, dst, destination_port))
        ):
            return SKIPPED
        return _new_packet(
            Packet,
            (
                ts,
                src,
                dst,
                next_header,
                source_port,
                destination_port,
                data[transport + header_length : end],
                cached_mac(source) or format_mac(source),
                vlan,
                seq,
                flags,
            ),
        )
    return _NOT_COMMON


def _check_depth(depth: int) -> None:
    if depth >= MAX_TUNNEL_DEPTH:
        raise ValueError(f"tunnel: more than {MAX_TUNNEL_DEPTH} nested")


def _tcp(
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
    if not payload and not flags & _TCP_FIN_SYN_RST:
        return None
    return _new_packet(
        Packet,
        (ts, src, dst, IPPROTO_TCP, source_port, destination_port, payload, mac, vlan, seq, flags),
    )


_LINK_READERS: dict[int, _LinkReader] = {
    0: Decoder._read_loopback,
    108: Decoder._read_loopback,
    12: Decoder._read_raw,
    14: Decoder._read_raw,
    101: Decoder._read_raw,
    228: Decoder._read_raw,
    229: Decoder._read_raw,
    113: Decoder._read_sll,
    276: Decoder._read_sll2,
    9: Decoder._read_ppp,
    50: Decoder._read_ppp,
    239: Decoder._read_nflog,
}
"""Link types other than Ethernet (which ``decode`` tests first) and how to read them."""
