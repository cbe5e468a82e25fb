"""Addresses as text: IPv4, IPv6 (RFC 5952) and MAC, formatted once and memoised.

The caches are bound once (``cached_ipv4`` and friends are their ``get``) and cleared when full,
never replaced, so the fast paths (``monitor.decode.fastpath``, ``monitor.compiled.scanloop``)
can call ``cached_x(raw) or format_x(raw)``.
"""

from __future__ import annotations

import struct

__all__ = [
    "cached_ipv4",
    "cached_ipv6",
    "cached_mac",
    "format_ipv4",
    "format_ipv6",
    "format_mac",
    "render_ipv6",
]

_ADDRESS_CACHE_ENTRIES = 65536
"""Memoised address strings per cache; a full cache is emptied, not grown."""

_EIGHT_U16 = struct.Struct("!8H").unpack

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
