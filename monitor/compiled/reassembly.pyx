# cython: language_level=3, boundscheck=False, initializedcheck=False
"""``StreamReassembler`` of ``monitor.extract.reassembly``, compiled with Cython (in ``monitor.compiled``).

The same flows, bounds, order of eviction and results as the Python reassembler, step for
step (its docstring says what the rules are); sequence arithmetic and the flow state are C
fields instead of Python integers and attributes, which is most of what a segment costs there.

``tests/monitor/extract/test_reassembly.py`` runs every test on both, and
``tests/monitor/compiled/test_reassembly.py`` compares them on the golden captures; the
extractor takes this one when it was built (setup.py, when a C compiler is there). The
constants and default bounds are the Python module's, read when this one is imported.
"""

from libc.stdint cimport int64_t

from monitor import values
from monitor.extract import reassembly
from monitor.extract.reassembly import piece_start

# The Python module's constants, as C values (read when this module is imported).
cdef int TCP_FIN = values.TCP_FIN
cdef int TCP_SYN = values.TCP_SYN
cdef int TCP_RST = values.TCP_RST
cdef int ENDS_FLOW = TCP_FIN | TCP_RST
cdef int64_t _SEQ_MOD = (<int64_t>1) << <int>reassembly.SEQ_BITS
cdef int64_t _SEQ_MASK = _SEQ_MOD - 1
cdef int64_t _SEQ_HALF = _SEQ_MOD >> 1
cdef int64_t _SEQ_WINDOW = reassembly.SEQ_WINDOW
cdef int64_t _NO_ISN = reassembly.NO_ISN
cdef int64_t _NOT_KNOWN = _NO_ISN - 1
"""Neither a flow's nor an ignored flow's ISN: equal to no sequence number."""


cdef class _Flow:
    """Reassembly state of one directed flow (``reassembly._Flow``)."""

    cdef int64_t base, isn, delivered
    cdef list pending
    cdef double gap_since, last_ts

    def __cinit__(self, int64_t base, int64_t isn, double ts):
        self.base = base
        self.isn = isn
        self.delivered = 0
        self.pending = []
        self.gap_since = ts
        self.last_ts = ts


cdef class StreamReassembler:
    """Bounded in-order reassembly of the first bytes of each directed TCP flow: see
    ``monitor.extract.reassembly.StreamReassembler``, whose every rule this one keeps."""

    cdef Py_ssize_t _max_flows, _max_bytes, _max_pending, _max_pending_bytes, _pending_bytes
    cdef double _idle_timeout, _gap_timeout
    cdef dict _flows, _ignored
    cdef public bint skipped_gap
    cdef public list evicted

    def __init__(
        self,
        *,
        Py_ssize_t max_flows=reassembly.DEFAULT_MAX_FLOWS,
        Py_ssize_t max_bytes_per_flow=reassembly.DEFAULT_MAX_BYTES_PER_FLOW,
        Py_ssize_t max_pending_segments=reassembly.DEFAULT_MAX_PENDING_SEGMENTS,
        double idle_timeout_s=reassembly.DEFAULT_IDLE_TIMEOUT_S,
        double gap_timeout_s=reassembly.DEFAULT_GAP_TIMEOUT_S,
        Py_ssize_t max_pending_bytes=reassembly.DEFAULT_MAX_PENDING_BYTES,
    ):
        if max_flows < 1 or max_bytes_per_flow < 1 or max_pending_segments < 1:
            raise ValueError("max_flows, max_bytes_per_flow and max_pending_segments must be >= 1")
        self._max_flows = max_flows
        self._max_bytes = max_bytes_per_flow
        self._max_pending = max_pending_segments
        self._max_pending_bytes = max_pending_bytes
        self._idle_timeout = idle_timeout_s
        self._gap_timeout = gap_timeout_s
        self._flows = {}
        self._ignored = {}
        self._pending_bytes = 0
        self.skipped_gap = False
        self.evicted = []

    def __len__(self):
        return len(self._flows)

    def flows(self):
        """The flows held (a live, set-like view)."""
        return self._flows.keys()

    @property
    def pending_bytes(self):
        """Bytes held in out-of-order segments across all flows."""
        return self._pending_bytes

    def ignored(self):
        """The flows ``is_ignored`` is true for (a live, set-like view)."""
        return self._ignored.keys()

    def is_ignored(self, flow):
        """True for a flow the caller forgot, that ended, or that reached its byte limit."""
        return flow in self._ignored

    def forget(self, flow):
        """Drop the flow's state and ignore its further segments, until a new SYN."""
        self._forget(flow)

    def expire(self, double now):
        """Drop flows idle for longer than the idle time-out; return how many."""
        cdef double deadline = now - self._idle_timeout
        expired = [flow for flow, state in self._flows.items() if (<_Flow>state).last_ts < deadline]
        for flow in expired:
            self._drop_pending(self._flows.pop(flow))
        return len(expired)

    def feed(self, flow, double ts, int64_t seq, int flags, bytes payload):
        """Add one segment of ``flow``; return the bytes that became contiguous because of it."""
        cdef _Flow state
        cdef int64_t offset
        self.skipped_gap = False
        if not flags & (TCP_SYN | ENDS_FLOW):
            if not payload:
                return b""
            found = self._flows.pop(flow, None)
            if found is None:
                if flow in self._ignored:
                    return b""
                state = self._new_flow(flow, seq, _NO_ISN, ts)
            else:
                state = <_Flow>found
                self._flows[flow] = state  # move to the most recently active end
            state.last_ts = ts
            offset = (seq - state.base) & _SEQ_MASK
            if offset == state.delivered and not state.pending:
                return self._deliver_in_order(flow, state, payload)
            return self._accept(flow, state, ts, offset, payload)
        if flags & TCP_SYN:
            return self._syn(flow, ts, seq, flags, payload)
        return self._end(flow, ts, seq, payload)

    cdef bytes _deliver_in_order(self, flow, _Flow state, bytes payload):
        cdef Py_ssize_t end = state.delivered + len(payload)
        if end < self._max_bytes:
            state.delivered = end
            return payload
        data = payload[: self._max_bytes - state.delivered]
        self._forget(flow)
        return data

    cdef bytes _syn(self, flow, double ts, int64_t seq, int flags, bytes payload):
        cdef _Flow state = None
        cdef int64_t old_isn = _NOT_KNOWN
        found = self._flows.get(flow)
        if found is not None:
            state = <_Flow>found
            old_isn = state.isn
        else:
            ignored_isn = self._ignored.get(flow)
            if ignored_isn is not None:
                old_isn = ignored_isn
        if old_isn == seq:
            return b""  # a retransmitted SYN (or SYN-ACK) of the connection we know
        if state is not None:
            self._drop_pending(state)
            del self._flows[flow]
        self._ignored.pop(flow, None)
        state = self._new_flow(flow, (seq + 1) & _SEQ_MASK, seq, ts)
        data = b""
        if payload:  # TCP Fast Open: data in the SYN
            data = self._accept(flow, state, ts, 0, payload)
        if flags & ENDS_FLOW:
            self._forget(flow)
        return data

    cdef bytes _end(self, flow, double ts, int64_t seq, bytes payload):
        """A FIN or RST: deliver what it completes, give up on holes, and end the flow."""
        cdef _Flow state
        cdef int64_t offset
        found = self._flows.get(flow)
        if found is None:
            if flow in self._ignored or not payload:
                return b""
            state = self._new_flow(flow, seq, _NO_ISN, ts)
        else:
            state = <_Flow>found
        offset = (seq - state.base) & _SEQ_MASK
        if _SEQ_WINDOW <= offset < _SEQ_MOD - 1:
            return b""  # outside any plausible window: stale or forged, ignored (RFC 5961)
        data = b""
        if payload:
            data = self._accept(flow, state, ts, offset, payload)
        if not data and state.pending and flow in self._flows:
            data = self._skip_gaps(state, False)
        self._forget(flow)
        return data

    cdef _Flow _new_flow(self, flow, int64_t base, int64_t isn, double ts):
        if len(self._flows) >= self._max_flows:
            oldest = next(iter(self._flows))
            self._drop_pending(self._flows.pop(oldest))
            self.evicted.append(oldest)
        state = _Flow(base, isn, ts)
        self._flows[flow] = state
        return state

    cdef _forget(self, flow):
        found = self._flows.pop(flow, None)
        cdef int64_t isn = _NO_ISN
        if found is not None:
            isn = (<_Flow>found).isn
            self._drop_pending(<_Flow>found)
        ignored = self._ignored
        ignored.pop(flow, None)
        ignored[flow] = isn
        if len(ignored) > self._max_flows:
            del ignored[next(iter(ignored))]

    cdef _drop_pending(self, _Flow state):
        for _, piece in state.pending:
            self._pending_bytes -= len(piece)
        state.pending = []

    cdef bytes _accept(self, flow, _Flow state, double ts, int64_t offset, bytes data):
        """Place ``data`` at ``offset`` (mod 2^32); return what became contiguous."""
        cdef int64_t delivered, end
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
            out = self._skip_gaps(state, True)
            state.gap_since = ts
        if state.delivered >= self._max_bytes:
            self._forget(flow)
        return out

    cdef _hold(self, _Flow state, int64_t offset, bytes data):
        """Add the parts of ``data`` that no held piece covers (first-seen bytes win)."""
        cdef int64_t end = offset + len(data), cur = offset, start, piece_end
        cdef Py_ssize_t added = 0
        pieces = []
        for held in state.pending:
            start = held[0]
            if cur >= end or start >= end:
                break
            piece_end = start + len(held[1])
            if piece_end <= cur:
                continue
            if start > cur:
                pieces.append((cur, data[cur - offset : start - offset]))
            cur = piece_end
        if cur < end:
            pieces.append((cur, data[cur - offset :]))
        if pieces:
            state.pending.extend(pieces)
            state.pending.sort(key=piece_start)
            for _, piece in pieces:
                added += len(piece)
            self._pending_bytes += added

    cdef bytes _drain(self, _Flow state):
        """Deliver the held pieces that now start at the next expected offset."""
        cdef list pending = state.pending
        if not pending or pending[0][0] != state.delivered:
            return b""
        out = []
        while pending and pending[0][0] == state.delivered:
            _, piece = pending.pop(0)
            out.append(piece)
            state.delivered += len(piece)
            self._pending_bytes -= len(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    cdef bytes _skip_gaps(self, _Flow state, bint limit):
        """Give up on holes and deliver what follows the last one skipped (all of them
        unless ``limit``: then only until the flow is back within its bounds)."""
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
