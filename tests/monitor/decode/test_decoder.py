"""Specification of monitor.decode.decoder: every reference capture, and malformed input.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode.decoder import Decoder
from monitor.decode.links import LINKTYPE_NAMES
from monitor.errors import UnsupportedLinkType
from monitor.values import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_SYN,
    Frame,
    Packet,
)
from tests.monitor.decode.frames import (
    ETHERNET_CASES,
    LINK_CASES,
    PCAPS,
    TUNNEL_CASES,
    V4_FRAGMENTS,
    V6_FRAGMENTS,
    decode,
    read_capture,
)


@pytest.mark.parametrize(("buffers", "timeout_s"), [(0, 30.0), (1, 0.0), (1, -1.0)])
def test_decoder_rejects_bad_bounds(buffers: int, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="fragment"):
        Decoder(max_fragment_buffers=buffers, fragment_timeout_s=timeout_s)


CAPTURES = sorted(path.name for path in PCAPS.iterdir() if path.suffix in (".pcap", ".pcapng"))


UNSUPPORTED_CAPTURES = {"zeek-dns-radiotap.pcap": 127, "td-linktype-pktap.pcap": 258}


MOSTLY_MALFORMED_CAPTURES = {
    "ndpi-quic-fuzz-overflow.pcapng": "its one frame is a middle fragment of 1260 bytes",
    "zeek-quic-decrypt-crash.pcap": "fuzzed: IP version 5 and lengths beyond the frame",
    "td-quic-handshake-truncated.pcap": "snap length 256 cuts the large packets",
    "td-dns-udp-2.pcap": "snap length cuts the response",
    "td-dns-over-ppp.pcap": "its one frame's PPP protocol is garbage (0x7e08): nothing to read",
}


@pytest.mark.parametrize("capture", CAPTURES)
def test_decode_real_capture_frames(capture: str) -> None:
    """Every frame gives a Packet, None, ValueError or UnsupportedLinkType; most decode."""
    decoder = Decoder()
    packets = nones = malformed = unsupported = 0
    for frame in read_capture(capture):
        try:
            result = decoder.decode(frame)
        except UnsupportedLinkType as e:
            assert e.linktype == frame.linktype
            unsupported += 1
            continue
        except ValueError:
            malformed += 1
            continue
        if result is None:
            nones += 1
        else:
            assert isinstance(result, Packet)
            assert result.protocol in (IPPROTO_UDP, IPPROTO_TCP)
            packets += 1
    total = packets + nones + malformed + unsupported
    if capture in UNSUPPORTED_CAPTURES:
        assert unsupported == total
        assert UNSUPPORTED_CAPTURES[capture] in LINKTYPE_NAMES
    elif capture not in MOSTLY_MALFORMED_CAPTURES:
        assert unsupported == 0
        assert packets >= 1
        assert malformed <= total // 10, f"{malformed} of {total} frames malformed"


def first_packet(capture: str, number: int = 1) -> Packet:
    decoded = Decoder().decode(read_capture(capture)[number - 1])
    assert decoded is not None
    return decoded


@pytest.mark.parametrize(
    ("capture", "number", "fields", "in_payload"),
    [
        (
            "zeek-dns-vxlan-triple.pcap",
            1,
            {
                "src_ip": "4.4.4.4",
                "dst_ip": "4.4.4.9",
                "dst_port": 53,
                "src_mac": "c8:89:f3:ad:a3:33",
            },
            b"\x03www\x03bbc\x03com\x00",
        ),
        (
            "zeek-dns-false-gtp-vlan.pcap",
            1,
            {"protocol": IPPROTO_UDP, "src_port": 2152, "dst_port": 53, "vlan": 454},
            b"\x04abcd\x03efg",
        ),
        (
            "zeek-dns-in-gre-pptp-vlan.pcap",
            1,
            {"src_ip": "172.16.44.3", "dst_ip": "8.8.8.8", "vlan": 100, "src_mac": None},
            b"xqt-detect-mode2",
        ),
        (
            "zeek-dns-in-gre-over-udp.pcap",
            1,
            {"src_ip": "172.17.0.2", "dst_ip": "1.1.1.1", "dst_port": 53},
            b"\x04zeek\x03org\x00",
        ),
        ("zeek-dns-in-gre.pcap", 33, {"dst_ip": "172.28.2.3", "dst_port": 53}, b"\x07gleeble"),
        (
            "zeek-dns-erspan.pcap",
            126,
            {"src_ip": "192.168.69.10", "src_mac": "00:50:56:82:2b:52", "dst_port": 53},
            b"\x07in-addr",
        ),
        (
            "zeek-tls-pppoe-qinq.pcap",
            1,
            {"dst_ip": "2.2.2.2", "protocol": IPPROTO_TCP, "vlan": 2474, "tcp_flags": TCP_SYN},
            b"",
        ),
        (
            "zeek-tls-openjdk-sll2.pcap",
            1,
            {"src_mac": "fa:37:dc:8d:af:ab", "dst_port": 443, "tcp_flags": TCP_SYN},
            b"",
        ),
        ("ndpi-kakaotalk-sll.pcap", 1, {"dst_ip": "10.188.1.1", "dst_port": 53}, b"\x05kakao"),
        (
            "zeek-dns-svcb-null-link.pcap",
            1,
            {"src_ip": "127.0.0.1", "dst_port": 53},
            b"\x07example",
        ),
        ("td-linktype-ipv6.pcap", 1, {"dst_ip": "2620:fe::9", "dst_port": 53}, b"\x07example"),
        ("td-linktype-raw-ipv4.pcap", 1, {"dst_ip": "9.9.9.9", "dst_port": 53}, b"\x07example"),
        ("td-linktype-ipv4.pcap", 1, {"dst_ip": "9.9.9.9", "dst_port": 53}, b"\x07example"),
        (
            "zeek-dns-https-rr-ech.pcap",
            1,
            {"src_ip": "2a02:6bf:8080:165::1:12", "dst_ip": "2620:fe::fe"},
            b"\x04defo\x02ie",
        ),
        ("sv-dns-vxlan.pcap", 22, {"src_ip": "172.31.0.238", "dst_port": 53}, b"\x07in-addr"),
    ],
)
def test_decode_real_capture_packet(
    capture: str, number: int, fields: dict[str, object], in_payload: bytes
) -> None:
    decoded = first_packet(capture, number)
    assert {name: getattr(decoded, name) for name in fields} == fields
    assert in_payload in decoded.payload


@pytest.mark.parametrize("number", [6, 7, 30, 31])
def test_decode_teredo_frames_in_capture_are_unwrapped(number: int) -> None:
    """These UDP/3544 frames carry ICMPv6 and Teredo bubbles: unwrapped, nothing for us."""
    frame = read_capture("zeek-dns-teredo.pcap")[number - 1]
    assert 3544 in struct.unpack_from("!HH", frame.data, 34)
    assert Decoder().decode(frame) is None


def frame_bytes(case: Any, index: int = 0) -> bytes:
    """The frame in a ``pytest.param`` of the tables above, as bytes."""
    return bytes(case.values[index])


def frame_linktype(case: Any) -> int:
    """The link type in a ``pytest.param`` of ``LINK_CASES``."""
    return int(case.values[0])


PREFIX_CASES = [
    *(pytest.param(frame_linktype(case), frame_bytes(case, 1), id=case.id) for case in LINK_CASES),
    *(pytest.param(1, frame_bytes(case), id=case.id) for case in ETHERNET_CASES),
    *(pytest.param(1, frame_bytes(case), id=case.id) for case in TUNNEL_CASES),
]


@pytest.mark.parametrize(("linktype", "data"), PREFIX_CASES)
def test_decode_truncated_prefix_gives_none_or_value_error(linktype: int, data: bytes) -> None:
    full = decode(data, linktype)
    assert full is not None
    for size in range(len(data)):
        try:
            result = Decoder().decode(Frame(1.0, linktype, data[:size]))
        except ValueError:
            continue
        if result is None or result == full:
            continue  # cutting only bytes after the packet (NFLOG's TLV padding) changes nothing
        # A UDP datagram cut by the snap length keeps what was captured of its payload (for a
        # tunnel cut short, that is the outer datagram).
        assert result.protocol == IPPROTO_UDP, f"prefix of {size} bytes gave {result}"
        assert data[:size].endswith(result.payload)


SUPPORTED_LINKTYPES = [0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 239, 276]


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from(SUPPORTED_LINKTYPES), data=st.binary(max_size=200))
def test_decode_arbitrary_bytes_give_packet_none_or_value_error(linktype: int, data: bytes) -> None:
    try:
        result = Decoder().decode(Frame(1.0, linktype, data))
    except ValueError:
        return
    assert result is None or isinstance(result, Packet)


SEEDS = (
    [(frame_linktype(case), frame_bytes(case, 1)) for case in LINK_CASES]
    + [(1, frame_bytes(case)) for case in TUNNEL_CASES]
    + [(1, data) for data in V4_FRAGMENTS + V6_FRAGMENTS]
)


@settings(max_examples=500, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
)
def test_decode_mutated_frames_give_packet_none_or_value_error(
    seed: tuple[int, bytes], edits: list[tuple[int, int]], cut: int
) -> None:
    """Valid frames with a few bytes changed reach the deep layers that random bytes miss."""
    linktype, original = seed
    data = bytearray(original)
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    decoder = Decoder(max_fragment_buffers=4)
    for frame_data in (bytes(data), bytes(data[: max(len(data) - cut, 0)])):
        try:
            result = decoder.decode(Frame(1.0, linktype, frame_data))
        except ValueError:
            continue
        assert result is None or isinstance(result, Packet)
