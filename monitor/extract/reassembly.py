"""Bounded in-order reassembly of the first bytes of each directed TCP flow.

A browser's ClientHello no longer fits one TCP segment (post-quantum key shares make it about
1,800 bytes), and a DNS message over TCP may be split too. The extractors need the first few
kilobytes of each client stream in order, and nothing more, so this reassembler is small:

- It keeps, per directed flow, where the stream starts, how many bytes it has delivered, and the
  out-of-order segments it holds. It never keeps delivered bytes: ``feed`` returns them and the
  caller buffers what it needs.
- A SYN (or SYN-ACK) sets the initial sequence number; data starts at ISN+1. Without a SYN, the
  first segment with data starts the stream (capture started mid-connection). A SYN with a
  different ISN restarts the flow (a new connection on the same ports, or the competing SYN-ACKs
  of ``ndpi-tls-multi-synack``); the same ISN again is a retransmission and changes nothing.
- Overlaps and retransmissions are trimmed; the bytes seen first win. Sequence numbers are
  compared modulo 2^32, so wrap-around needs no special case.
- FIN or RST ends the flow: its state goes and later segments are ignored until a new SYN. A FIN
  or RST whose sequence number lies outside any plausible window is ignored, as a TCP stack
  would (RFC 5961; ``sv-tls-subjectaltname`` has such an RST before the SYN is retransmitted).
- Memory is bounded: ``max_flows`` flows (the least recently active is evicted first), at most
  ``max_bytes_per_flow`` bytes delivered per flow (after which the flow is ignored), at most
  ``max_pending_segments`` held segments per flow and ``max_pending_bytes`` held bytes in all.
- Flows the caller gave up on (``forget``) are remembered in a bounded first-in-first-out set,
  so their later segments cost one dictionary lookup.

Gaps. A hole that is never filled (capture loss on a mirror port, ``sv-dns-tcp-ts-gap``) would
stall a flow for good. Like Suricata, the reassembler gives up on the hole and carries on with the
bytes after it when the flow holds more than ``max_pending_segments`` segments (or the reassembler
more than ``max_pending_bytes`` bytes), when the hole is older than ``gap_timeout_s`` at the next
segment of that flow, or when the flow ends (FIN/RST) with segments still held and the FIN or
RST itself completed nothing. The bytes that
``feed`` then returns do not follow the bytes it returned before: ``skipped_gap`` is True after
such a call, and the caller must restart its parse there (drop what it buffered). When several
holes are skipped in one call, only the bytes after the last one are returned.

Pure: time comes in as the packet timestamps.
"""

from __future__ import annotations

from collections.abc import KeysView
from typing import Protocol

from monitor.values import TCP_FIN, TCP_RST, TCP_SYN, FlowKey

SEQ_BITS = 32
SEQ_WINDOW = 1 << 30
"""A FIN or RST more than this far from the stream start is out of any window: ignored."""
NO_ISN = -1
"""The ISN of a stream that started mid-connection (no SYN seen)."""
_SEQ_MOD = 1 << SEQ_BITS
_SEQ_HALF = _SEQ_MOD >> 1
_ENDS_FLOW = TCP_FIN | TCP_RST

DEFAULT_MAX_FLOWS = 65536
DEFAULT_MAX_BYTES_PER_FLOW = 65536
DEFAULT_MAX_PENDING_SEGMENTS = 64
DEFAULT_IDLE_TIMEOUT_S = 60.0
DEFAULT_GAP_TIMEOUT_S = 3.0
DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024


class Reassembler(Protocol):
    """What the extractor needs of a reassembler: ``StreamReassembler`` below, or its compiled
    twin (``monitor/compiled/reassembly.pyx``)."""

    skipped_gap: bool
    evicted: list[FlowKey]

    def __len__(self) -> int: ...
    def flows(self) -> KeysView[FlowKey]: ...
    @property
    def pending_bytes(self) -> int: ...
    def ignored(self) -> KeysView[FlowKey]: ...
    def is_ignored(self, flow: FlowKey) -> bool: ...
    def forget(self, flow: FlowKey) -> None: ...
    def expire(self, now: float) -> int: ...
    def feed(self, flow: FlowKey, ts: float, seq: int, flags: int, payload: bytes) -> bytes: ...


class _Flow:
    """Reassembly state of one directed flow; offsets are relative to the first data byte."""

    __slots__ = ("base", "delivered", "gap_since", "isn", "last_ts", "pending")

    def __init__(self, base: int, isn: int, ts: float) -> None:
        self.base = base
        """Sequence number of the stream's first byte (ISN+1, or the first data segment's)."""
        self.isn = isn
        """The SYN's sequence number, or ``NO_ISN`` when the stream started mid-connection."""
        self.delivered = 0
        """Bytes returned so far: the offset of the next byte expected."""
        self.pending: list[tuple[int, bytes]] = []
        """Held out-of-order pieces: (offset, bytes), sorted, non-overlapping, all > delivered."""
        self.gap_since = ts
        """When the current hole opened (meaningful while ``pending`` is not empty)."""
        self.last_ts = ts


class StreamReassembler:
    """Bounded in-order reassembly of the first bytes of each directed TCP flow."""

    def __init__(
        self,
        *,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_bytes_per_flow: int = DEFAULT_MAX_BYTES_PER_FLOW,
        max_pending_segments: int = DEFAULT_MAX_PENDING_SEGMENTS,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        gap_timeout_s: float = DEFAULT_GAP_TIMEOUT_S,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        if max_flows < 1 or max_bytes_per_flow < 1 or max_pending_segments < 1:
            raise ValueError("max_flows, max_bytes_per_flow and max_pending_segments must be >= 1")
        self._max_flows = max_flows
        self._max_bytes = max_bytes_per_flow
        self._max_pending = max_pending_segments
        self._max_pending_bytes = max_pending_bytes
        self._idle_timeout = idle_timeout_s
        self._gap_timeout = gap_timeout_s
        self._flows: dict[FlowKey, _Flow] = {}
        """Active flows, least recently active first."""
        self._ignored: dict[FlowKey, int] = {}
        """Flows given up on, oldest first, with the ISN they had (a new SYN resets them)."""
        self._pending_bytes = 0
        self.skipped_gap = False
        self.evicted: list[FlowKey] = []
        """Flows dropped to stay within ``max_flows``; the caller drops its state for them
        (and clears this list)."""
        """True when the bytes the last ``feed`` returned follow a hole that was given up on."""

    def __len__(self) -> int:
        return len(self._flows)

    def flows(self) -> KeysView[FlowKey]:
        """The flows held (a live, set-like view)."""
        return self._flows.keys()

    @property
    def pending_bytes(self) -> int:
        """Bytes held in out-of-order segments across all flows."""
        return self._pending_bytes

    def ignored(self) -> KeysView[FlowKey]:
        """The flows ``is_ignored`` is true for (a live, set-like view, for loops that test
        many segments: ``flow in view`` without a method call)."""
        return self._ignored.keys()

    def is_ignored(self, flow: FlowKey) -> bool:
        """True for a flow the caller forgot, that ended, or that reached its byte limit."""
        return flow in self._ignored

    def forget(self, flow: FlowKey) -> None:
        """Drop the flow's state and ignore its further segments, until a new SYN."""
        state = self._flows.pop(flow, None)
        isn = NO_ISN
        if state is not None:
            isn = state.isn
            self._drop_pending(state)
        self._ignore(flow, isn)

    def expire(self, now: float) -> int:
        """Drop flows idle for longer than the idle time-out; return how many."""
        deadline = now - self._idle_timeout
        expired = [flow for flow, state in self._flows.items() if state.last_ts < deadline]
        for flow in expired:
            self._drop_pending(self._flows.pop(flow))
        return len(expired)

    def feed(self, flow: FlowKey, ts: float, seq: int, flags: int, payload: bytes) -> bytes:
        """Add one segment of ``flow``; return the bytes that became contiguous because of it.

        ``seq`` is the segment's sequence number and ``flags`` its TCP flag bits. The result is
        ``b""`` for a hole, a retransmission, a pure SYN or ACK, or an ignored flow.
        """
        self.skipped_gap = False
        if not flags & (TCP_SYN | _ENDS_FLOW):
            if not payload:
                return b""
            state = self._flows.pop(flow, None)
            if state is None:
                if flow in self._ignored:
                    return b""
                state = self._new_flow(flow, seq, NO_ISN, ts)
            else:
                self._flows[flow] = state  # move to the most recently active end
            state.last_ts = ts
            offset = (seq - state.base) % _SEQ_MOD
            if offset == state.delivered and not state.pending:
                return self._deliver_in_order(flow, state, payload)
            return self._accept(flow, state, ts, offset, payload)
        if flags & TCP_SYN:
            return self._syn(flow, ts, seq, flags, payload)
        return self._end(flow, ts, seq, payload)

    def _deliver_in_order(self, flow: FlowKey, state: _Flow, payload: bytes) -> bytes:
        end = state.delivered + len(payload)
        if end < self._max_bytes:
            state.delivered = end
            return payload
        data = payload[: self._max_bytes - state.delivered]
        self.forget(flow)
        return data

    def _syn(self, flow: FlowKey, ts: float, seq: int, flags: int, payload: bytes) -> bytes:
        state = self._flows.get(flow)
        old_isn = state.isn if state is not None else self._ignored.get(flow)
        if old_isn == seq:
            return b""  # a retransmitted SYN (or SYN-ACK) of the connection we know
        if state is not None:
            self._drop_pending(state)
            del self._flows[flow]
        self._ignored.pop(flow, None)
        state = self._new_flow(flow, (seq + 1) % _SEQ_MOD, seq, ts)
        data = b""
        if payload:  # TCP Fast Open: data in the SYN
            data = self._accept(flow, state, ts, 0, payload)
        if flags & _ENDS_FLOW:
            self.forget(flow)
        return data

    def _end(self, flow: FlowKey, ts: float, seq: int, payload: bytes) -> bytes:
        """A FIN or RST: deliver what it completes, give up on holes, and end the flow."""
        state = self._flows.get(flow)
        if state is None:
            if flow in self._ignored or not payload:
                return b""
            state = self._new_flow(flow, seq, NO_ISN, ts)
        offset = (seq - state.base) % _SEQ_MOD
        if SEQ_WINDOW <= offset < _SEQ_MOD - 1:
            return b""  # outside any plausible window: stale or forged, ignored (RFC 5961)
        data = b""
        if payload:
            data = self._accept(flow, state, ts, offset, payload)
        if not data and state.pending and flow in self._flows:
            data = self._skip_gaps(state)
        self.forget(flow)
        return data

    def _new_flow(self, flow: FlowKey, base: int, isn: int, ts: float) -> _Flow:
        if len(self._flows) >= self._max_flows:
            oldest = next(iter(self._flows))
            self._drop_pending(self._flows.pop(oldest))
            self.evicted.append(oldest)
        state = _Flow(base, isn, ts)
        self._flows[flow] = state
        return state

    def _ignore(self, flow: FlowKey, isn: int) -> None:
        ignored = self._ignored
        ignored.pop(flow, None)
        ignored[flow] = isn
        if len(ignored) > self._max_flows:
            del ignored[next(iter(ignored))]

    def _drop_pending(self, state: _Flow) -> None:
        for _, piece in state.pending:
            self._pending_bytes -= len(piece)
        state.pending = []

    def _accept(self, flow: FlowKey, state: _Flow, ts: float, offset: int, data: bytes) -> bytes:
        """Place ``data`` at ``offset`` (mod 2^32); return what became contiguous."""
        if offset >= _SEQ_HALF:
            offset -= _SEQ_MOD  # before the stream start: an old retransmission
        delivered = state.delivered
        end = offset + len(data)
        if end > self._max_bytes:
            if offset >= self._max_bytes:
                return b""
            data = data[: self._max_bytes - offset]
            end = self._max_bytes
        if end <= delivered:
            return b""
        if offset < delivered:
            data = data[delivered - offset :]
            offset = delivered
        if not state.pending:
            if offset == delivered:
                return self._deliver_in_order(flow, state, data)
            state.gap_since = ts
        self._hold(state, offset, data)
        out = self._drain(state)
        if out:
            state.gap_since = ts  # the next hole, if any, opens now
        elif (
            len(state.pending) > self._max_pending
            or self._pending_bytes > self._max_pending_bytes
            or ts - state.gap_since > self._gap_timeout
        ):
            out = self._skip_gaps(state, limit=True)
            state.gap_since = ts
        if state.delivered >= self._max_bytes:
            self.forget(flow)
        return out

    def _hold(self, state: _Flow, offset: int, data: bytes) -> None:
        """Add the parts of ``data`` that no held piece covers (first-seen bytes win)."""
        end = offset + len(data)
        pending = state.pending
        pieces: list[tuple[int, bytes]] = []
        cur = offset
        for start, piece in pending:
            if cur >= end or start >= end:
                break
            piece_end = start + len(piece)
            if piece_end <= cur:
                continue
            if start > cur:
                pieces.append((cur, data[cur - offset : start - offset]))
            cur = piece_end
        if cur < end:
            pieces.append((cur, data[cur - offset :]))
        if pieces:
            pending.extend(pieces)
            pending.sort(key=piece_start)
            self._pending_bytes += sum(len(piece) for _, piece in pieces)

    def _drain(self, state: _Flow) -> bytes:
        """Deliver the held pieces that now start at the next expected offset."""
        pending = state.pending
        if not pending or pending[0][0] != state.delivered:
            return b""
        out: list[bytes] = []
        while pending and pending[0][0] == state.delivered:
            _, piece = pending.pop(0)
            out.append(piece)
            state.delivered += len(piece)
            self._pending_bytes -= len(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    def _skip_gaps(self, state: _Flow, *, limit: bool = False) -> bytes:
        """Give up on holes and deliver what follows the last one skipped.

        With ``limit``, skip holes only until the flow is back within its bounds; otherwise
        skip them all (the flow is ending).
        """
        out = b""
        while state.pending and (
            not limit
            or len(state.pending) > self._max_pending
            or self._pending_bytes > self._max_pending_bytes
            or not out
        ):
            state.delivered = state.pending[0][0]
            out = self._drain(state)
            self.skipped_gap = True
        return out


def piece_start(piece: tuple[int, bytes]) -> int:
    return piece[0]
