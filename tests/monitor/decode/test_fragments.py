"""Specification of monitor.decode.fragments: IP fragment reassembly, bounded.

Frames are built with scapy (or with ``struct`` where scapy has no layer, one comment per
field), through ``Decoder.decode``, the decoder's one entry point.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from monitor.decode.decoder import Decoder
from monitor.values import (
    Frame,
)
from tests.monitor.decode.frames import (
    V4_FRAGMENTS,
    V6_FRAGMENTS,
    eth,
)

ORDERS: dict[str, Callable[[int], list[int]]] = {
    "in-order": lambda n: list(range(n)),
    "reversed": lambda n: list(reversed(range(n))),
    "last-first": lambda n: [n - 1, *range(n - 1)],
    "interleaved": lambda n: [*range(1, n, 2), *range(0, n, 2)],
}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("fragments", "payload"),
    [
        pytest.param(V4_FRAGMENTS, bytes(range(100)), id="v4"),
        pytest.param(V6_FRAGMENTS, bytes(range(200)), id="v6"),
    ],
)
def test_decode_fragments_reassemble_in_any_order(
    fragments: list[bytes], payload: bytes, order: str
) -> None:
    assert len(fragments) >= 3
    decoder = Decoder()
    indexes = ORDERS[order](len(fragments))
    results = [decoder.decode(Frame(1.0 + i, 1, fragments[i])) for i in indexes]
    assert results[:-1] == [None] * (len(fragments) - 1)
    last = results[-1]
    assert last is not None
    assert (last.src_port, last.dst_port, last.payload) == (40000, 53, payload)
    assert last.ts == 1.0 + indexes[-1]
    assert decoder.pending_fragment_buffers == 0


def v4_fragment(offset: int, chunk: bytes, more: bool, ident: int = 7) -> bytes:
    ip = IP(src="10.0.0.1", dst="192.0.2.53", id=ident, proto=17, frag=offset // 8)
    ip.flags = "MF" if more else 0
    return bytes(eth(ip / Raw(chunk)))


TRANSPORT = bytes(UDP(sport=40000, dport=53, len=64, chksum=0)) + bytes(range(56))


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        pytest.param("abc", TRANSPORT[:32] + b"B" * 16 + TRANSPORT[48:], id="first-holds-start"),
        pytest.param(
            "bac", TRANSPORT[:16] + b"B" * 32 + TRANSPORT[48:], id="overlap-arrives-first"
        ),
    ],
)
def test_decode_overlapping_fragments_keep_first_arrived_bytes(order: str, expected: bytes) -> None:
    pieces = {
        "a": v4_fragment(0, TRANSPORT[:32], more=True),
        "b": v4_fragment(16, b"B" * 32, more=True),  # overlaps a's bytes 16..32
        "c": v4_fragment(48, TRANSPORT[48:], more=False),
    }
    decoder = Decoder()
    results = [decoder.decode(Frame(1.0, 1, pieces[name])) for name in order]
    assert results[:2] == [None, None]
    assert results[2] is not None
    assert results[2].payload == expected[8:]


def test_decode_duplicate_fragment_changes_nothing() -> None:
    decoder = Decoder()
    frames = [V4_FRAGMENTS[0], V4_FRAGMENTS[0], *V4_FRAGMENTS[1:]]
    results = [decoder.decode(Frame(1.0, 1, data)) for data in frames]
    assert results[-1] is not None
    assert results[-1].payload == bytes(range(100))


def test_decode_fragment_buffers_are_bounded_oldest_evicted() -> None:
    decoder = Decoder(max_fragment_buffers=2)
    first = {ident: v4_fragment(0, TRANSPORT[:32], True, ident) for ident in (1, 2, 3)}
    last = {ident: v4_fragment(32, TRANSPORT[32:], False, ident) for ident in (1, 2, 3)}
    for ident in (1, 2, 3):
        assert decoder.decode(Frame(1.0, 1, first[ident])) is None
    assert decoder.pending_fragment_buffers == 2
    assert decoder.decode(Frame(2.0, 1, last[1])) is None  # 1 was evicted; this evicts 2
    assert decoder.pending_fragment_buffers == 2
    completed = decoder.decode(Frame(2.0, 1, last[3]))
    assert completed is not None
    assert completed.payload == TRANSPORT[8:]


@pytest.mark.parametrize(("gap_s", "completes"), [(29.0, True), (31.0, False)])
def test_decode_fragments_time_out_by_frame_timestamps(gap_s: float, completes: bool) -> None:
    decoder = Decoder(fragment_timeout_s=30.0)
    assert decoder.decode(Frame(100.0, 1, v4_fragment(0, TRANSPORT[:32], True))) is None
    result = decoder.decode(Frame(100.0 + gap_s, 1, v4_fragment(32, TRANSPORT[32:], False)))
    assert (result is not None) == completes
    assert decoder.pending_fragment_buffers == (0 if completes else 1)


def test_decode_fragment_timeout_frees_other_buffers() -> None:
    decoder = Decoder(fragment_timeout_s=30.0)
    decoder.decode(Frame(0.0, 1, v4_fragment(0, TRANSPORT[:32], True, ident=1)))
    decoder.decode(Frame(100.0, 1, v4_fragment(0, TRANSPORT[:32], True, ident=2)))
    assert decoder.pending_fragment_buffers == 1


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        pytest.param([v4_fragment(65528, bytes(16), False)], "65535", id="beyond-64k"),
        pytest.param([v4_fragment(0, bytes(20), True)], "multiple of 8", id="odd-middle-size"),
        pytest.param(
            [v4_fragment(32, bytes(16), False), v4_fragment(32, bytes(24), False)],
            "second last",
            id="two-different-ends",
        ),
        pytest.param(
            [v4_fragment(32, bytes(8), False), v4_fragment(48, bytes(16), True)],
            "after the last",
            id="bytes-after-the-end",
        ),
    ],
)
def test_decode_inconsistent_fragments_raise_and_drop_the_buffer(
    frames: list[bytes], message: str
) -> None:
    decoder = Decoder()
    for data in frames[:-1]:
        assert decoder.decode(Frame(1.0, 1, data)) is None
    with pytest.raises(ValueError, match=message):
        decoder.decode(Frame(1.0, 1, frames[-1]))
    assert decoder.pending_fragment_buffers == 0
