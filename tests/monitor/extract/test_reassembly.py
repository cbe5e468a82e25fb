# mypy: disallow-untyped-calls=False
# (scapy layer classes are untyped; a pyproject-wide untyped_calls_exclude would replace this)
"""Specification of the bounded TCP stream reassembler (monitor/extract/reassembly.py), and of
its compiled build (monitor.compiled.reassembly: this module compiled by Cython as it is, typed
by monitor/compiled/reassembly.pxd): every test here runs on both, and the compiled one
must give what the Python one gives, segment for segment."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.tls.all import TLS, TLSClientHello
from scapy.layers.tls.extensions import (
    ServerName,
    TLS_Ext_Padding,
    TLS_Ext_ServerName,
    TLS_Ext_SupportedVersion_CH,
    TLS_Ext_Unknown,
)
from scapy.layers.tls.keyexchange_tls13 import KeyShareEntry, TLS_Ext_KeyShare_CH

import monitor.extract.reassembly
from monitor.extract.reassembly import StreamReassembler
from monitor.extract.tls import find_client_hello_record, parse_client_hello_records
from monitor.values import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from tests.compiled import assert_built_from_current_source, compiled_or_skip


@pytest.fixture(autouse=True, params=["python", "compiled"])
def reassembler_twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test on the Python reassembler, then on the compiled one: ``StreamReassembler``
    below names the one under test."""
    if request.param == "compiled":
        compiled = compiled_or_skip("monitor.compiled.reassembly").StreamReassembler
        monkeypatch.setitem(globals(), "StreamReassembler", compiled)


def test_the_compiled_reassembler_is_built_from_the_current_source() -> None:
    assert_built_from_current_source("monitor.compiled.reassembly")


FLOW = ("10.0.0.2", 50000, "192.0.2.1", 443)
REPLY = ("192.0.2.1", 443, "10.0.0.2", 50000)
ISN = 1000
PSH_ACK = 0x08 | TCP_ACK
DATA = bytes(range(256)) * 4


def started(**kwargs: int | float) -> StreamReassembler:
    """A reassembler that has seen the SYN of FLOW (data starts at ISN + 1)."""
    streams = StreamReassembler(**kwargs)  # type: ignore[arg-type]
    assert streams.feed(FLOW, 0.0, ISN, TCP_SYN, b"") == b""
    return streams


def seg(streams: StreamReassembler, offset: int, data: bytes, ts: float = 1.0) -> bytes:
    """Feed FLOW's bytes at ``offset`` from the stream start."""
    return streams.feed(FLOW, ts, (ISN + 1 + offset) % 2**32, PSH_ACK, data)


# --- in order, SYN, mid-stream ------------------------------------------------------------


def test_feed_in_order_returns_each_segment():
    streams = started()
    assert seg(streams, 0, DATA[:100]) == DATA[:100]
    assert seg(streams, 100, DATA[100:300]) == DATA[100:300]
    assert len(streams) == 1


def test_feed_pure_syn_and_ack_return_nothing():
    streams = started()
    assert streams.feed(REPLY, 0.1, 5000, TCP_SYN | TCP_ACK, b"") == b""
    assert streams.feed(FLOW, 0.2, ISN + 1, TCP_ACK, b"") == b""
    assert len(streams) == 2


def test_feed_pure_ack_of_an_unknown_flow_keeps_no_state():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, 77, TCP_ACK, b"") == b""
    assert len(streams) == 0


def test_feed_without_syn_the_first_data_segment_starts_the_stream():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, 123456, PSH_ACK, b"abc") == b"abc"
    assert streams.feed(FLOW, 0.1, 123459, PSH_ACK, b"def") == b"def"
    assert streams.feed(FLOW, 0.2, 123450, PSH_ACK, b"old") == b""  # before the start


def test_feed_data_in_syn_starts_at_isn_plus_one():
    """TCP Fast Open carries data in the SYN."""
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, ISN, TCP_SYN, b"early") == b"early"
    assert seg(streams, 5, b"-late") == b"-late"


def test_feed_retransmitted_syn_changes_nothing():
    streams = started()
    assert seg(streams, 0, b"abc") == b"abc"
    assert streams.feed(FLOW, 0.5, ISN, TCP_SYN, b"") == b""
    assert seg(streams, 3, b"def") == b"def"


def test_feed_syn_with_new_isn_restarts_the_stream():
    """As in ndpi-tls-multi-synack: competing SYN-ACKs with different ISNs."""
    streams = StreamReassembler()
    assert streams.feed(REPLY, 0.0, 5000, TCP_SYN | TCP_ACK, b"") == b""
    assert streams.feed(REPLY, 0.1, 5001, PSH_ACK, b"first") == b"first"
    assert streams.feed(REPLY, 0.2, 90000, TCP_SYN | TCP_ACK, b"") == b""
    assert streams.feed(REPLY, 0.3, 90001, PSH_ACK, b"second") == b"second"
    assert len(streams) == 1


# --- out of order, retransmission, overlap -------------------------------------------------


def test_feed_out_of_order_is_held_until_the_gap_fills():
    streams = started()
    assert seg(streams, 200, DATA[200:300]) == b""
    assert seg(streams, 100, DATA[100:200]) == b""
    assert streams.pending_bytes == 200
    assert seg(streams, 0, DATA[:100]) == DATA[:300]
    assert streams.pending_bytes == 0
    assert streams.skipped_gap is False


def test_feed_retransmission_returns_nothing():
    streams = started()
    assert seg(streams, 0, DATA[:100]) == DATA[:100]
    assert seg(streams, 0, DATA[:100]) == b""
    assert seg(streams, 50, DATA[50:100]) == b""


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param([(0, b"abcd"), (2, b"XXef")], b"abcdef", id="overlaps-delivered"),
        pytest.param([(4, b"efgh"), (2, b"XXXXXXij"), (0, b"abYY")], b"abXXefghij", id="overlaps-held"),
        pytest.param([(4, b"ef"), (8, b"ij"), (0, b"abcdXXghXXkl")], b"abcdefghijkl", id="covers-two-held"),
        pytest.param([(2, b"cdef"), (2, b"XX")], None, id="duplicate-held"),
        pytest.param([(2, b"cd"), (1, b"XXXXX"), (0, b"a")], b"aXcdXX", id="fills-around-held"),
    ],
)  # fmt: skip
def test_feed_overlaps_keep_the_first_seen_bytes(segments, expected):
    streams = started()
    out = b"".join(seg(streams, offset, data) for offset, data in segments)
    if expected is not None:
        assert out == expected
    else:
        assert out == b""
        assert streams.pending_bytes == 4


def test_feed_sequence_numbers_wrap_around():
    isn = 2**32 - 3  # data starts at 2**32 - 2
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, isn, TCP_SYN, b"") == b""
    assert streams.feed(FLOW, 0.1, 2**32 - 2, PSH_ACK, b"abcd") == b"abcd"  # crosses zero
    assert streams.feed(FLOW, 0.2, 4, PSH_ACK, b"gh") == b""  # ahead, after the wrap
    assert streams.feed(FLOW, 0.3, 2, PSH_ACK, b"ef") == b"efgh"
    assert streams.feed(FLOW, 0.4, 2**32 - 1, PSH_ACK, b"bcd") == b""  # old, before the wrap


def test_feed_isn_at_the_top_wraps_the_stream_start():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, 2**32 - 1, TCP_SYN, b"") == b""
    assert streams.feed(FLOW, 0.1, 0, PSH_ACK, b"abc") == b"abc"


# --- end of a flow, forget, ignore ----------------------------------------------------------


@pytest.mark.parametrize("flag", [TCP_FIN, TCP_RST])
def test_feed_fin_or_rst_ends_the_flow(flag):
    streams = started()
    assert seg(streams, 0, b"abc") == b"abc"
    assert streams.feed(FLOW, 2.0, ISN + 4, flag | TCP_ACK, b"") == b""
    assert len(streams) == 0
    assert streams.is_ignored(FLOW)
    assert seg(streams, 3, b"late") == b""


def test_feed_fin_with_data_delivers_it_then_ends():
    streams = started()
    assert streams.feed(FLOW, 1.0, ISN + 1, TCP_FIN | PSH_ACK, b"bye") == b"bye"
    assert len(streams) == 0


def test_feed_rst_outside_the_window_is_ignored():
    """sv-tls-subjectaltname: a stale RST far from the stream, then the SYN again and data."""
    streams = started()
    assert streams.feed(FLOW, 1.0, ISN + 2**31, TCP_RST, b"") == b""
    assert streams.feed(FLOW, 1.1, ISN, TCP_SYN, b"") == b""
    assert seg(streams, 0, b"hello") == b"hello"


def test_feed_fin_of_an_unknown_flow_keeps_no_state():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, 5, TCP_FIN | TCP_ACK, b"") == b""
    assert len(streams) == 0
    assert not streams.is_ignored(FLOW)


def test_feed_fin_with_data_of_an_unknown_flow_delivers_it():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, 5, TCP_FIN | PSH_ACK, b"last") == b"last"
    assert streams.is_ignored(FLOW)


def test_feed_syn_with_fin_delivers_and_ends():
    streams = StreamReassembler()
    assert streams.feed(FLOW, 0.0, ISN, TCP_SYN | TCP_FIN, b"x") == b"x"
    assert len(streams) == 0
    assert streams.is_ignored(FLOW)


def test_forget_ignores_the_flow_until_a_new_syn():
    streams = started()
    assert seg(streams, 0, b"abc") == b"abc"
    streams.forget(FLOW)
    assert streams.is_ignored(FLOW)
    assert len(streams) == 0
    assert seg(streams, 3, b"def") == b""
    assert streams.feed(FLOW, 2.0, ISN, TCP_SYN, b"") == b""  # same connection's SYN again
    assert streams.is_ignored(FLOW)
    assert streams.feed(FLOW, 3.0, 777, TCP_SYN, b"") == b""  # a new connection
    assert not streams.is_ignored(FLOW)
    assert streams.feed(FLOW, 3.1, 778, PSH_ACK, b"new") == b"new"


def test_forget_an_unknown_flow_ignores_it():
    streams = StreamReassembler()
    streams.forget(FLOW)
    assert streams.is_ignored(FLOW)
    assert streams.feed(FLOW, 0.0, 1, PSH_ACK, b"x") == b""
    assert streams.feed(FLOW, 0.1, 1, TCP_SYN, b"") == b""
    assert not streams.is_ignored(FLOW)


def test_forget_drops_held_segments():
    streams = started()
    assert seg(streams, 10, b"later") == b""
    streams.forget(FLOW)
    assert streams.pending_bytes == 0


# --- bounds --------------------------------------------------------------------------------


def flow_n(n: int) -> tuple[str, int, str, int]:
    return ("10.0.0.2", 1024 + n, "192.0.2.1", 443)


def test_max_flows_evicts_the_least_recently_active():
    streams = StreamReassembler(max_flows=3)
    for n in range(3):
        streams.feed(flow_n(n), float(n), 100, PSH_ACK, b"a")
    streams.feed(flow_n(0), 3.0, 101, PSH_ACK, b"b")  # flow 0 is active again
    streams.feed(flow_n(3), 4.0, 100, PSH_ACK, b"a")  # evicts flow 1
    assert len(streams) == 3
    assert set(streams.flows()) == {flow_n(0), flow_n(2), flow_n(3)}
    assert not streams.is_ignored(flow_n(1))


def test_max_flows_bounds_the_ignored_set():
    streams = StreamReassembler(max_flows=2)
    for n in range(5):
        streams.forget(flow_n(n))
    assert [streams.is_ignored(flow_n(n)) for n in range(5)] == [False, False, False, True, True]


def test_max_bytes_per_flow_cuts_the_stream_and_ignores_the_flow():
    streams = started(max_bytes_per_flow=10)
    assert seg(streams, 0, b"abcdef") == b"abcdef"
    assert seg(streams, 6, b"ghijklmn") == b"ghij"
    assert streams.is_ignored(FLOW)
    assert len(streams) == 0


def test_max_bytes_per_flow_limits_held_segments():
    streams = started(max_bytes_per_flow=10)
    assert seg(streams, 12, b"beyond") == b""  # wholly past the limit: dropped
    assert seg(streams, 5, b"fghijk") == b""  # held, cut to the limit
    assert streams.pending_bytes == 5
    assert seg(streams, 0, b"abcde") == b"abcdefghij"
    assert streams.is_ignored(FLOW)
    assert streams.pending_bytes == 0


def test_max_pending_segments_skips_the_gap():
    streams = started(max_pending_segments=3)
    for n in range(1, 4):
        assert seg(streams, 10 * n, DATA[10 * n : 10 * n + 5]) == b""
    assert streams.skipped_gap is False
    assert seg(streams, 40, DATA[40:45]) == DATA[10:15]  # a 4th held segment: give up on 0..10
    assert streams.skipped_gap is True
    assert seg(streams, 15, DATA[15:20]) == DATA[15:25]
    assert streams.skipped_gap is False


def test_max_pending_bytes_skips_the_gap():
    streams = started(max_pending_bytes=8)
    assert seg(streams, 10, b"abcd") == b""
    assert seg(streams, 20, b"efghi") == b"abcd"
    assert streams.skipped_gap is True
    assert streams.pending_bytes == 5


def test_gap_timeout_skips_a_hole_that_never_fills():
    streams = started(gap_timeout_s=3.0)
    assert seg(streams, 0, b"ab", ts=1.0) == b"ab"
    assert seg(streams, 5, b"fg", ts=1.5) == b""  # hole at 2..5 opens
    assert seg(streams, 9, b"jk", ts=4.0) == b""
    assert seg(streams, 12, b"mn", ts=4.6) == b"fg"  # hole older than 3 s: skipped
    assert streams.skipped_gap is True
    assert seg(streams, 7, b"hi", ts=4.7) == b"hijk"  # the next hole filled in time
    assert streams.skipped_gap is False


def test_fin_with_a_hole_delivers_what_follows_it():
    """sv-dns-tcp-ts-gap: the middle query is never captured; the FIN releases the last."""
    streams = started()
    assert seg(streams, 0, b"query-1") == b"query-1"
    assert seg(streams, 14, b"query-3") == b""
    assert streams.feed(FLOW, 2.0, ISN + 1 + 21, TCP_FIN | TCP_ACK, b"") == b"query-3"
    assert streams.skipped_gap is True
    assert len(streams) == 0
    assert streams.pending_bytes == 0


def test_expire_drops_idle_flows():
    streams = StreamReassembler(idle_timeout_s=60.0)
    streams.feed(flow_n(0), 0.0, 100, PSH_ACK, b"a")
    streams.feed(flow_n(1), 50.0, 100, PSH_ACK, b"a")
    streams.feed(flow_n(2), 10.0, 100, PSH_ACK, b"a")
    streams.feed(flow_n(2), 10.0, 200, PSH_ACK, b"held")
    streams.feed(flow_n(0), 30.0, 101, PSH_ACK, b"b")
    assert streams.expire(80.0) == 1  # flow 2, idle since 10.0
    assert set(streams.flows()) == {flow_n(0), flow_n(1)}
    assert streams.pending_bytes == 0
    assert streams.expire(200.0) == 2
    assert len(streams) == 0


def test_constructor_refuses_zero_bounds():
    with pytest.raises(ValueError, match="must be >= 1"):
        StreamReassembler(max_flows=0)


# --- properties ---------------------------------------------------------------------------


@given(
    data=st.binary(min_size=1, max_size=600),
    cuts=st.lists(st.integers(min_value=1, max_value=599), max_size=20),
    seed=st.integers(min_value=0, max_value=2**32),
    isn=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_feed_any_order_with_duplicates_rebuilds_the_stream(data, cuts, seed, isn):
    """Segments in any order, some sent twice, some overlapping: the bytes come out once,
    in order."""
    rng = random.Random(seed)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segments = [(a, data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    segments += rng.sample(segments, k=len(segments) // 2)  # retransmissions
    for _ in range(3):  # overlapping resends of arbitrary ranges
        a = rng.randrange(len(data))
        segments.append((a, data[a : rng.randrange(a, len(data)) + 1]))
    rng.shuffle(segments)
    streams = StreamReassembler(max_pending_segments=1000, max_bytes_per_flow=1000)
    streams.feed(FLOW, 0.0, isn, TCP_SYN, b"")
    out = b"".join(
        streams.feed(FLOW, 0.0, (isn + 1 + offset) % 2**32, PSH_ACK, piece)
        for offset, piece in segments
    )
    assert out == data
    assert streams.pending_bytes == 0


FLAGS = st.sampled_from([TCP_ACK, PSH_ACK, TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN, TCP_RST, 0x3F])


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4),  # flow
            st.floats(min_value=0, max_value=1000),  # ts
            st.integers(min_value=0, max_value=2**32 - 1),  # seq
            FLAGS,
            st.binary(max_size=40),
            st.sampled_from(["feed", "feed", "feed", "forget", "expire"]),
        ),
        max_size=60,
    )
)
def test_feed_arbitrary_segments_keep_the_bounds(events):
    streams = StreamReassembler(
        max_flows=3, max_bytes_per_flow=64, max_pending_segments=4, max_pending_bytes=100
    )
    for n, ts, seq, flags, payload, action in events:
        if action == "forget":
            streams.forget(flow_n(n))
        elif action == "expire":
            streams.expire(ts)
        else:
            out = streams.feed(flow_n(n), ts, seq, flags, payload)
            assert len(out) <= 64
        assert len(streams) <= 3
        assert 0 <= streams.pending_bytes <= 100 + 40
    held = len(streams)
    assert streams.expire(float("inf")) == held
    assert len(streams) == 0
    assert streams.pending_bytes == 0  # the held-bytes account balances


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4),  # flow
            st.sampled_from([0.0, 1.0, 2.0, 5.0, 70.0, 200.0]),  # ts
            st.sampled_from([ISN - 5, ISN, ISN + 1, ISN + 9, ISN + 30, 2**32 - 3, 2**31 + ISN]),
            FLAGS,
            st.binary(max_size=40),
            st.sampled_from(["feed", "feed", "feed", "feed", "forget", "expire"]),
        ),
        max_size=60,
    )
)
def test_compiled_reassembler_agrees_with_python(events):
    """Segment for segment, the same bytes, gaps, evictions, ignored flows and held bytes, on
    sequence numbers close enough to overlap, wrap and leave holes."""
    bounds = {"max_flows": 3, "max_bytes_per_flow": 64, "max_pending_segments": 4}
    twin = compiled_or_skip("monitor.compiled.reassembly").StreamReassembler(
        max_pending_bytes=100, **bounds
    )
    python = monitor.extract.reassembly.StreamReassembler(max_pending_bytes=100, **bounds)
    for n, ts, seq, flags, payload, action in events:
        flow = flow_n(n)
        if action == "forget":
            twin.forget(flow)
            python.forget(flow)
        elif action == "expire":
            assert twin.expire(ts) == python.expire(ts)
        else:
            fed = twin.feed(flow, ts, seq, flags, payload)
            assert fed == python.feed(flow, ts, seq, flags, payload)
            assert twin.skipped_gap == python.skipped_gap
        assert twin.evicted == python.evicted
        assert list(twin.flows()) == list(python.flows())
        assert list(twin.ignored()) == list(python.ignored())
        assert twin.pending_bytes == python.pending_bytes


# --- a post-quantum ClientHello over two segments ---------------------------------------


def post_quantum_client_hello() -> bytes:
    """A Chrome-like ClientHello record: X25519MLKEM768 key share (1,216 bytes), X25519, GREASE
    ECH and padding; 1,8xx bytes in all."""
    hello = TLSClientHello(
        version=0x0303,
        gmt_unix_time=0,
        random_bytes=bytes(28),
        sid=bytes(32),
        ciphers=[0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F],
        ext=[
            TLS_Ext_ServerName(servernames=[ServerName(servername=b"www.instagram.com")]),
            TLS_Ext_SupportedVersion_CH(versions=[0x0304, 0x0303]),
            TLS_Ext_KeyShare_CH(
                client_shares=[
                    KeyShareEntry(group=0x11EC, key_exchange=bytes(range(256)) * 4 + bytes(192)),
                    KeyShareEntry(group=0x001D, key_exchange=bytes(32)),
                ]
            ),
            TLS_Ext_Unknown(type=0xFE0D, val=bytes(282)),
            TLS_Ext_Padding(padding=bytes(180)),
        ],
    )
    return bytes(TLS(type=22, version=0x0301, msg=[hello]))


@pytest.mark.parametrize("order", ["in-order", "reversed", "retransmitted"])
def test_post_quantum_client_hello_over_two_segments(order):
    record = post_quantum_client_hello()
    assert 1800 <= len(record) <= 2 * 1448
    mss = 1448
    first, second = record[:mss], record[mss:]
    segments = [(0, first), (mss, second)]
    if order == "reversed":
        segments.reverse()
    elif order == "retransmitted":
        segments = [(0, first), (0, first), (mss, second), (mss, second)]
    streams = started()
    stream = b""
    for offset, piece in segments:
        stream += seg(streams, offset, piece)
        if stream:
            start = find_client_hello_record(stream)
            assert start == 0
            hello = parse_client_hello_records(stream)
            if len(stream) < len(record):
                assert hello is None
    hello = parse_client_hello_records(stream)
    assert hello is not None
    assert (hello.sni, hello.has_ech) == ("www.instagram.com", True)
