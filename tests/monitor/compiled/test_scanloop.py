"""The compiled record loop (monitor/compiled/scanloop.pyx): built, current, and reading DNS as
Python does.

Its output as a whole is compared with the general path in test_fastscan.py. Here: its reader
of DNS messages not seen before, which answers only for the common message and must then give
exactly the entry the Python reader gives, by the rules handed to it; its IPv6 text; and where
a walk stops, by the limit it is given. And the live daemon's entry point, ``observe_frames``:
the same observations and counters as the general path (``Pipeline.batches``), a drain at a
time.
"""

from __future__ import annotations

import heapq
import ipaddress
import struct
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.decode.addresses import render_ipv6
from monitor.decode.decoder import Decoder
from monitor.errors import UnsupportedLinkType
from monitor.extract import dns
from monitor.fastscan import (
    SCANLOOP,
    Observe,
    RecordWalk,
    can_observe,
    dns_entry,
    general_observations,
    live_observer,
    loop_rules,
)
from monitor.pipeline import Pipeline
from monitor.sources.pcap import read_capture
from monitor.values import IPPROTO_UDP, Frame, Observation, Packet
from tests.bench.make_mix import write_mix
from tests.compiled import assert_built_from_current_source, compiled_or_skip
from tests.compiled_agreement import GOLDEN

scanloop = compiled_or_skip(SCANLOOP)
RULES = loop_rules(dns.DNS_PORTS)


def test_the_compiled_module_is_built_from_the_current_source() -> None:
    """A stale build would test (and scan with) yesterday's loop: scripts/setup rebuilds it
    whenever the .pyx changes."""
    assert_built_from_current_source(SCANLOOP)


def wire(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"


def message(*questions: bytes, response: bool = False, answers: list[bytes] | None = None) -> bytes:
    answers = answers or []
    flags = 0x8180 if response else 0x0100
    header = struct.pack("!HHHHHH", 0xBEEF, flags, len(questions), len(answers), 0, 0)
    body = b"".join(name + b"\x00\x01\x00\x01" for name in questions)
    return header + body + b"".join(answers)


def record(owner: bytes, rtype: int, rdata: bytes, rclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, 60, len(rdata)) + rdata


TO_QUESTION = b"\xc0\x0c"


def python_entry(data: bytes) -> object:
    return dns_entry(dns._parse_dns_message(data))


def compiled_entry(data: bytes) -> object:
    return scanloop.common_dns_entry(data, RULES)


def cname_chain_message() -> bytes:
    """www.example.com -> edge.example.net -> cdn.example.org, with addresses of both."""
    question = wire("www.example.com")
    edge_at = 12 + len(question) + 4 + 12  # after the first record's fixed part
    first = record(TO_QUESTION, 5, wire("edge.example.net"))
    cdn_at = 12 + len(question) + 4 + len(first) + 12
    second = record(struct.pack("!H", 0xC000 | edge_at), 5, b"\x03cdn\x07example\x03org\x00")
    return message(
        question,
        response=True,
        answers=[
            first,
            second,
            record(struct.pack("!H", 0xC000 | cdn_at), 1, bytes([93, 184, 216, 34])),
            record(struct.pack("!H", 0xC000 | cdn_at), 28, bytes(15) + b"\x01"),
            record(TO_QUESTION, 1, bytes([10, 0, 0, 1])),
        ],
    )


COMMON = {
    "query": message(wire("www.example.com")),
    "query in capitals": message(wire("WWW.Example.COM")),
    "query for the root": message(b"\x00"),
    "query for a DoH resolver": message(wire("dns.google")),
    "name with a space and an underscore": message(wire("my printer._ipp.local")),
    "response without answers": message(wire("x.example"), response=True),
    "response with an address": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 1, bytes([192, 0, 2, 7]))]
    ),
    "response with an IPv6 address": message(
        wire("a.example"),
        response=True,
        answers=[record(TO_QUESTION, 28, bytes.fromhex("20010db8000000000000000000000001"))],
    ),
    "mDNS cache-flush class": message(
        wire("p.local"), response=True, answers=[record(TO_QUESTION, 1, bytes(4), 0x8001)]
    ),
    "address of another class": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 1, bytes(4), 3)]
    ),
    "A record of the wrong length": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 1, bytes(5))]
    ),
    "other record types skipped": message(
        wire("a.example"),
        response=True,
        answers=[record(TO_QUESTION, 16, b"\x05hello"), record(TO_QUESTION, 1, bytes(4))],
    ),
    "CNAME chain": cname_chain_message(),
    "CNAME loop (b.example points back to the question)": message(
        wire("a.example"),
        response=True,
        answers=[record(TO_QUESTION, 5, wire("b.example")), record(b"\xc0\x27", 5, TO_QUESTION)],
    ),
}


@pytest.mark.parametrize("name", sorted(COMMON))
def test_a_common_message_gets_the_entry_the_python_reader_gives(name: str) -> None:
    data = COMMON[name]
    entry = compiled_entry(data)
    assert entry is not None, "the compiled reader should answer for this message"
    assert entry == python_entry(data)


def test_the_chain_and_addresses_are_rendered_as_json() -> None:
    entry = compiled_entry(cname_chain_message())
    assert entry == (
        True,
        (
            (
                '"www.example.com"',
                0,
                '"cnames":["edge.example.net","cdn.example.org"],'
                '"addresses":["93.184.216.34","::1","10.0.0.1"]',
            ),
        ),
    )


OTHER = {
    "two questions": message(wire("a.example"), wire("b.example")),
    "no question": message(),
    "a name with a dot inside a label": message(b"\x03a.b\x00"),
    "a name with a quote": message(b'\x03a"b\x00'),
    "a name with a backslash": message(b"\x03a\\b\x00"),
    "a name with a control byte": message(b"\x03a\x01b\x00"),
    "a name with a byte above ASCII": message(b"\x03a\xe9b\x00"),
    "a compressed question": message(b"\xc0\x0c"),
    "an extended label type": message(b"\x41abc\x00"),
    "a name longer than 255 bytes": message(wire(".".join(["a" * 63] * 4 + ["b"]))),
    "question cut before its type": message(wire("a.example"))[:-2],
    "an owner written out": message(
        wire("a.example"), response=True, answers=[record(wire("a.example"), 1, bytes(4))]
    ),
    "an owner pointing into the middle of a name": message(
        wire("a.example"), response=True, answers=[record(b"\xc0\x0e", 1, bytes(4))]
    ),
    "an answer cut in its fixed part": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 1, bytes(4))[:8]]
    ),
    "an answer cut in its data": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 1, bytes(4))[:-1]]
    ),
    "a CNAME whose name does not fill its data": message(
        wire("a.example"),
        response=True,
        answers=[record(TO_QUESTION, 5, wire("b.example") + b"\x00")],
    ),
    "a CNAME with a forward pointer": message(
        wire("a.example"), response=True, answers=[record(TO_QUESTION, 5, b"\x01b\xc0\x40")]
    ),
}


@pytest.mark.parametrize("name", sorted(OTHER))
def test_any_other_message_is_left_to_the_python_reader(name: str) -> None:
    assert compiled_entry(OTHER[name]) is None


@settings(max_examples=400, deadline=None)
@given(
    template=st.sampled_from(sorted(COMMON)),
    changes=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 40),
)
def test_a_damaged_message_gets_the_python_entry_or_none(
    template: str, changes: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(COMMON[template])
    for at, value in changes:
        if at < len(data):
            data[at] = value
    damaged = bytes(data[: max(0, len(data) - cut)])
    entry = compiled_entry(damaged)
    if entry is not None:
        assert entry == python_entry(damaged)


# --- IPv6 text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "::",
        "::1",
        "1::",
        "2001:db8::1",
        "2001:db8:0:1:1:1:1:1",  # a single zero group stays
        "2001:0:0:1::1",  # the longer run wins
        "2001:db8::1:0:0:1",  # of two equal runs, the first
        "fe80::abcd:ef01:2345:6789",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::ffff:c000:201",  # IPv4-mapped, in hex as Python 3.11 writes it
        "100:200:300:4000:5:60:700:8",
    ],
)
def test_ipv6_text_is_rfc_5952(text: str) -> None:
    raw = ipaddress.IPv6Address(text).packed
    assert scanloop.ipv6_text(raw) == text == render_ipv6(raw)


@given(
    st.lists(st.sampled_from([0, 0, 0, 1, 0xA, 0x10, 0xFF, 0x100, 0xFFFF]), min_size=8, max_size=8)
)
def test_ipv6_text_equals_the_decoders_text(groups: list[int]) -> None:
    raw = struct.pack("!8H", *groups)
    assert scanloop.ipv6_text(raw) == render_ipv6(raw) == str(ipaddress.IPv6Address(raw))


# -- the rule for an impossible length, given as data ------------------------------------------


@pytest.mark.parametrize("max_caplen", [59, 60, 99, 100, 1 << 20])
def test_a_walk_stops_at_the_first_record_longer_than_the_limit_it_is_given(
    max_caplen: int,
) -> None:
    lengths = [60, 100, 60]
    buf = bytes(24) + b"".join(
        struct.pack("<IIII", 1_700_000_000 + i, 500_000, n, n) + bytes(n)
        for i, n in enumerate(lengths)
    )
    walk = RecordWalk(Pipeline(), 1, 1e-6, True, max_caplen=max_caplen)
    scanloop.walk_records(walk, buf, 0, 24, len(buf), len(buf) - 16)
    kept = next((i for i, n in enumerate(lengths) if n > max_caplen), len(lengths))
    assert (walk.pos, walk.damaged, walk.frames) == (
        24 + sum(16 + n for n in lengths[:kept]),
        kept < 3,
        kept,
    )
    assert walk.last_ts == (None if kept == 0 else 1_700_000_000 + kept - 1 + 0.5)


# -- against the Python originals, on the golden captures and on generated lists ---------------


@pytest.mark.slow
def test_every_dns_message_of_the_golden_captures_gets_the_python_entry_or_none() -> None:
    decoder = Decoder()
    read = 0
    for path in GOLDEN:
        for frame in read_capture(path):
            try:
                packet = decoder.decode(frame)
            except (ValueError, UnsupportedLinkType):
                continue
            if packet is None or packet.protocol != IPPROTO_UDP or not packet.payload:
                continue
            if packet.src_port not in dns.DNS_PORTS and packet.dst_port not in dns.DNS_PORTS:
                continue
            entry = compiled_entry(packet.payload)
            if entry is not None:
                read += 1
                assert entry == python_entry(packet.payload), (path.name, packet.payload.hex())
    assert read > 500, "the compiled reader should read most of the golden captures' DNS"


@given(
    st.lists(st.integers(0, 50), max_size=30).map(sorted),
    st.lists(st.integers(0, 50), max_size=30).map(sorted),
)
def test_merge_lines_merges_as_heapq_merge_by_frame(
    frames_a: list[int], frames_b: list[int]
) -> None:
    lines_a = [f"a{index}" for index in range(len(frames_a))]
    lines_b = [f"b{index}" for index in range(len(frames_b))]
    merged = list(
        heapq.merge(
            zip(frames_a, lines_a, strict=True),
            zip(frames_b, lines_b, strict=True),
            key=lambda pair: pair[0],
        )
    )
    frames, lines = scanloop.merge_lines(frames_a, lines_a, frames_b, lines_b)
    assert (frames, lines) == ([f for f, _ in merged], [line for _, line in merged])


# --- the live daemon's path: observe_frames ---------------------------------------------------

DRAIN = 64
"""Frames a test hands over at a time, as a socket drain of the live capture does."""


def observed(pipeline: Pipeline, frames: list[Frame], *, compiled: bool) -> list[Observation]:
    """Every observation of ``frames``, a drain at a time, through ``observe_frames`` on one
    observing walk, or through the general path (``general_observations``)."""
    observe: Observe = (
        partial(scanloop.observe_frames, RecordWalk(pipeline, observing=True))
        if compiled
        else partial(general_observations, pipeline)
    )
    found: list[Observation] = []
    for start in range(0, len(frames), DRAIN):
        found += observe(frames[start : start + DRAIN])
    return found


@pytest.mark.parametrize("path", GOLDEN, ids=lambda path: path.name)
def test_the_live_path_observes_what_the_general_path_does_on_golden_capture(path: Path) -> None:
    frames = list(read_capture(path))
    general, live = Pipeline(), Pipeline()
    expected = observed(general, frames, compiled=False)
    assert observed(live, frames, compiled=True) == expected
    assert live.counters == general.counters


def test_the_live_path_observes_what_the_general_path_does_on_a_dense_mix(tmp_path: Path) -> None:
    path = tmp_path / "dense.pcap"
    write_mix(path, "dense", 3000, seed=5)
    frames = list(read_capture(path))
    general, live = Pipeline(), Pipeline()
    expected = observed(general, frames, compiled=False)
    assert expected
    assert observed(live, frames, compiled=True) == expected
    assert live.counters == general.counters


def test_the_live_paths_counters_move_with_every_drain() -> None:
    frames = list(read_capture(GOLDEN[0]))[:DRAIN]
    pipeline = Pipeline()
    live_observer(pipeline)(frames)
    assert pipeline.counters.frames == len(frames)


def test_the_live_daemon_takes_the_compiled_loop_with_the_stock_pipeline_only() -> None:
    class Substitute(Decoder):
        def decode(self, frame: Frame) -> Packet | None:
            return super().decode(frame)

    assert can_observe(Pipeline())
    substituted = Pipeline()
    substituted.decoder = Substitute()
    assert not can_observe(substituted)
    frames = list(read_capture(GOLDEN[0]))
    assert live_observer(substituted)(frames) == general_observations(Pipeline(), frames)


def test_observe_frames_refuses_a_walk_that_writes_lines() -> None:
    with pytest.raises(ValueError, match="observing"):
        scanloop.observe_frames(RecordWalk(Pipeline()), [])
