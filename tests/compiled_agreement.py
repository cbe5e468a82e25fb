"""What the Python originals of the compiled twins were asked, and answered, over the golden
captures: replayed on a twin, its answers must be the same (tests/monitor/compiled/).

One scan of every golden capture on the general path with the Python readers records each call
of the ClientHello readers (``monitor.extract.tls``) and each step of the TCP reassembler and
the QUIC tracker, with what it answered (a ValueError's text included) and, for the two
stateful ones, the state a caller sees after it (``skipped_gap``, ``evicted``, the counters).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from monitor.extract import quic, reassembly, tls
from monitor.extract.extractor import Extractor
from monitor.pipeline import Pipeline
from monitor.sources.pcap import read_capture
from monitor.values import FlowKey

GOLDEN = sorted((Path(__file__).resolve().parent / "data" / "pcaps").glob("*.pcap*"))

Answer = tuple[str, Any]
"""``("ok", result)`` or ``("ValueError", text)``."""


@dataclass
class Step:
    method: str
    args: tuple[Any, ...]
    answer: Answer
    state: tuple[Any, ...] = ()


@dataclass
class Recorded:
    hello_calls: dict[str, list[tuple[tuple[Any, ...], Answer]]] = field(default_factory=dict)
    reassembler_steps: list[list[Step]] = field(default_factory=list)
    tracker_steps: list[list[Step]] = field(default_factory=list)


def answer(call: Callable[..., Any], *args: Any) -> Answer:
    try:
        return ("ok", call(*args))
    except ValueError as e:
        return ("ValueError", str(e))


def reassembler_state(streams: Any) -> tuple[Any, ...]:
    return (streams.skipped_gap, list(streams.evicted), len(streams), streams.pending_bytes)


def tracker_state(tracker: Any) -> tuple[Any, ...]:
    return (
        len(tracker),
        tracker.decrypt_failures,
        tracker.retries,
        tracker.crypto_overflows,
        tracker.evictions,
    )


class RecordingReassembler(reassembly.StreamReassembler):
    """Records the caller's calls only, not those ``feed`` makes of ``forget`` itself."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = steps
        self.depth = 0

    def _step(self, method: str, args: tuple[Any, ...], stateful: bool = True) -> Any:
        self.depth += 1
        try:
            result = getattr(super(), method)(*args)
        finally:
            self.depth -= 1
        if not self.depth:
            state = reassembler_state(self) if stateful else ()
            self.steps.append(Step(method, args, ("ok", result), state))
        return result

    def feed(self, flow: FlowKey, ts: float, seq: int, flags: int, payload: bytes) -> bytes:
        data: bytes = self._step("feed", (flow, ts, seq, flags, payload))
        return data

    def forget(self, flow: FlowKey) -> None:
        self._step("forget", (flow,))

    def expire(self, now: float) -> int:
        count: int = self._step("expire", (now,))
        return count

    def is_ignored(self, flow: FlowKey) -> bool:
        ignored: bool = self._step("is_ignored", (flow,), stateful=False)
        return ignored


class RecordingTracker(quic.QuicInitialTracker):
    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = steps

    def feed(self, flow: FlowKey, ts: float, datagram: bytes) -> quic.QuicClientHello | None:
        step = Step("feed", (flow, ts, datagram), answer(super().feed, flow, ts, datagram))
        step.state = tracker_state(self)
        self.steps.append(step)
        if step.answer[0] == "ValueError":
            raise ValueError(step.answer[1])
        result: quic.QuicClientHello | None = step.answer[1]
        return result

    def expire(self, now: float) -> int:
        count = super().expire(now)
        self.steps.append(Step("expire", (now,), ("ok", count), tracker_state(self)))
        return count


HELLO_READERS = (
    "find_client_hello_record",
    "parse_client_hello_message",
    "parse_client_hello_records",
)


@functools.cache
def recorded() -> Recorded:
    """Every golden capture through the general path with the Python readers, recorded."""
    found = Recorded({name: [] for name in HELLO_READERS})
    with pytest.MonkeyPatch.context() as patch:
        for name in HELLO_READERS:
            patch.setattr(tls, name, _recording(getattr(tls, name), found.hello_calls[name]))
        for path in GOLDEN:
            pipeline = Pipeline(compiled=False)
            found.reassembler_steps.append([])
            found.tracker_steps.append([])
            pipeline.extractor = Extractor(
                pipeline.counters,
                reassembler=RecordingReassembler(found.reassembler_steps[-1]),
                quic_tracker=RecordingTracker(found.tracker_steps[-1]),
                compiled=False,
            )
            for _ in pipeline.batches(read_capture(path)):
                pass
    return found


def _recording(
    call: Callable[..., Any], calls: list[tuple[tuple[Any, ...], Answer]]
) -> Callable[..., Any]:
    def recording(*args: Any) -> Any:
        got = answer(call, *args)
        calls.append((args, got))
        if got[0] == "ValueError":
            raise ValueError(got[1])
        return got[1]

    return recording


def replay(steps: list[Step], twin: Any, state: Callable[[Any], tuple[Any, ...]]) -> None:
    """Run ``steps`` on ``twin`` (a fresh compiled instance); each answer and state must be
    the recorded one. ``evicted`` is emptied after each step, as the extractor does."""
    for index, step in enumerate(steps):
        got = answer(getattr(twin, step.method), *step.args)
        assert got == step.answer, (index, step.method)
        if step.state:
            assert state(twin) == step.state, (index, step.method)
        evicted = getattr(twin, "evicted", None)
        if evicted:
            evicted.clear()
