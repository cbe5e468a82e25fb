# The C types of monitor/extract/reassembly.py, which setup.py compiles as it is (Cython's
# pure-Python mode) into monitor.compiled.reassembly: one source for both, so no rule is
# written twice. These declarations only type it: the code, the constants and the defaults are
# the Python module's. Measured (the segments of the benchmark's dense and bulk mixes, fed
# alone): about 1.6 times faster a segment than the Python class; a hand-written .pyx was about
# 1.15 times faster still, which is a tenth of a percent of a scan, so it was not kept.

cimport cython
from libc.stdint cimport int64_t

cdef int64_t _SEQ_MOD, _SEQ_HALF, SEQ_WINDOW, NO_ISN
cdef int _ENDS_FLOW


cdef class _Flow:
    cdef public int64_t base, isn, delivered
    cdef public list pending
    cdef public double gap_since, last_ts


cdef class StreamReassembler:
    cdef Py_ssize_t _max_flows, _max_bytes, _max_pending, _max_pending_bytes, _pending_bytes
    cdef double _idle_timeout, _gap_timeout
    cdef dict _flows, _ignored
    cdef public bint skipped_gap
    cdef public list evicted

    @cython.locals(state=_Flow, offset=int64_t)
    cpdef bytes feed(self, tuple flow, double ts, int64_t seq, int flags, bytes payload)
    @cython.locals(end=int64_t)
    cdef bytes _deliver_in_order(self, tuple flow, _Flow state, bytes payload)
    @cython.locals(state=_Flow)
    cdef bytes _syn(self, tuple flow, double ts, int64_t seq, int flags, bytes payload)
    @cython.locals(state=_Flow, offset=int64_t)
    cdef bytes _end(self, tuple flow, double ts, int64_t seq, bytes payload)
    @cython.locals(state=_Flow)
    cdef _Flow _new_flow(self, tuple flow, int64_t base, int64_t isn, double ts)
    cdef _ignore(self, tuple flow, int64_t isn)
    cdef _drop_pending(self, _Flow state)
    @cython.locals(delivered=int64_t, end=int64_t, out=bytes)
    cdef bytes _accept(self, tuple flow, _Flow state, double ts, int64_t offset, bytes data)
    @cython.locals(
        end=int64_t, cur=int64_t, start=int64_t, piece_end=int64_t, pieces=list, pending=list
    )
    cdef _hold(self, _Flow state, int64_t offset, bytes data)
    @cython.locals(pending=list, out=list)
    cdef bytes _drain(self, _Flow state)
    @cython.locals(out=bytes)
    cdef bytes _skip_gaps(self, _Flow state, bint limit=*)
