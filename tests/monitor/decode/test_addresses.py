"""Specification of monitor.decode.addresses: addresses as text.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decode.addresses import render_ipv6
from tests.monitor.decode.frames import (
    V4,
    decode,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # a single zero group stays
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  # the longest run is compressed
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # the first of equal runs
        ("2001:DB8:00AB::0001", "2001:db8:ab::1"),  # lowercase, no leading zeros
        ("fe80::8000:ffff:ffff:fffd", "fe80::8000:ffff:ffff:fffd"),
    ],
)
def test_render_ipv6_is_rfc5952(text: str, expected: str) -> None:
    assert render_ipv6(ipaddress.IPv6Address(text).packed) == expected


@given(st.lists(st.sampled_from([0, 0, 0, 1, 0xDB8, 0xFFFF, 0x2001, 0xA]), min_size=8, max_size=8))
def test_render_ipv6_matches_ipaddress_for_zero_runs(groups: list[int]) -> None:
    raw = struct.pack("!8H", *groups)
    assert render_ipv6(raw) == str(ipaddress.IPv6Address(raw))


@given(st.binary(min_size=16, max_size=16))
def test_render_ipv6_matches_ipaddress(raw: bytes) -> None:
    assert render_ipv6(raw) == str(ipaddress.IPv6Address(raw))


@given(st.binary(min_size=4, max_size=4))
def test_decode_formats_ipv4_addresses_like_ipaddress(raw: bytes) -> None:
    packet = bytearray(bytes(V4))
    packet[12:16] = raw
    decoded = decode(bytes(packet), 101)
    assert decoded is not None
    assert decoded.src_ip == str(ipaddress.IPv4Address(raw))
