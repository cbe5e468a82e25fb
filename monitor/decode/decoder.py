"""Captured link-layer frames to the UDP datagrams and TCP segments inside them.

Every captured frame passes through ``Decoder.decode``, so the package is written for speed:
headers are read with precompiled ``struct.Struct`` objects at offsets into the one frame buffer
(no per-layer slicing), addresses are formatted once and memoised (``addresses``), and ``Packet``
tuples are built without the keyword-argument machinery of ``NamedTuple.__new__``. Most frames
take the fast path (``fastpath``); the others are read layer by layer: ``links``, ``ip``
(fragments into ``fragments``), ``transport`` and ``tunnels``, which call each other.

What it reads: Ethernet (802.1Q/802.1ad tags at any depth, PPPoE sessions), BSD loopback, raw
IP, Linux cooked captures v1 and v2, PPP, NFLOG; IPv4 and IPv6 (extension headers, fragment
reassembly); and the tunnels GRE (plain, PPTP, ERSPAN II/III, Ethernet bridging), GRE-in-UDP,
VXLAN, Teredo, GTP-U, IP-in-IP and IPv6-in-IP, unwrapped to the innermost UDP or TCP packet.

The only state is the IP fragment reassembly table, bounded in buffers, bytes and time (time
being the frames' own timestamps; the decoder never reads the clock).
"""

from __future__ import annotations

import struct

from monitor.decode import links
from monitor.decode.fastpath import NOT_COMMON, SkipTcp, decode_common_ethernet
from monitor.decode.fragments import FragmentTable
from monitor.errors import UnsupportedLinkType
from monitor.values import Frame, Packet

__all__ = ["Decoder"]


class Decoder:
    """Stateful only for IP fragment reassembly (bounded)."""

    __slots__ = ("_fragments",)

    def __init__(
        self, *, max_fragment_buffers: int = 1024, fragment_timeout_s: float = 30.0
    ) -> None:
        if max_fragment_buffers < 1:
            raise ValueError(f"max_fragment_buffers must be at least 1, not {max_fragment_buffers}")
        if not fragment_timeout_s > 0:
            raise ValueError(f"fragment_timeout_s must be positive, not {fragment_timeout_s}")
        self._fragments = FragmentTable(max_fragment_buffers, fragment_timeout_s)

    @property
    def pending_fragment_buffers(self) -> int:
        """How many datagrams are waiting for more fragments."""
        return len(self._fragments)

    def decode(self, frame: Frame) -> Packet | None:
        """The innermost UDP datagram or TCP segment in ``frame``, or None if it carries none.

        Raises ``ValueError`` for malformed frames and ``UnsupportedLinkType`` for link types
        this decoder does not read (see ``monitor.decode.links.LINKTYPE_NAMES``).
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
                    packet = decode_common_ethernet(ts, data, size, skip_tcp)
                    if packet is not NOT_COMMON:
                        return packet
                return links.ethernet(self._fragments, ts, data, 0, size, None, 0)
            reader = links.LINK_READERS.get(linktype)
            if reader is None:
                raise UnsupportedLinkType(linktype)
            return reader(self._fragments, ts, data)
        except (struct.error, IndexError) as e:  # a length check missed: still malformed input
            raise ValueError(f"link type {linktype}: {e}") from e
