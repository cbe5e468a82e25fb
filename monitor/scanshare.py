"""One scan shared among processes, by flow (``hallmonitor scan --jobs N``).

Why: one process runs a scan on one core, and even compiled, a DNS- and QUIC-dense capture keeps
it busy (rendering DNS answers, deriving QUIC keys and decrypting, reassembling TCP). Here ``N`` processes walk the same
file with the compiled loop, and each extracts only from the frames it owns: all of a flow's
frames go to one process (by its pair of addresses, both directions alike), so its state lives
in one extractor; a DNS message over UDP by its bytes, so that its copies meet the process that
has it in its cache; other frames without flow state go round by number
(``monitor/compiled/scanloop.pyx``).
Every process still accounts for the time of every packet, so expiry passes run when they would
in one process.

This process is number 0. The others are forked before the walk starts; after each stretch of
the file (a window of a pcap file, a batch of pcapng frames) each sends the lines it made, with
their frame numbers, through a pipe, and this process merges them with its own in frame order
and writes them: the output is the same, line for line, as one process's (while no process
reaches the extractor's bounds on what it holds at once, 65,536 TCP flows for one: each process
has its own, so a capture beyond them loses fewer names shared). At the end the others send
their counters, which are added to this one's. Damage in the file (``monitor.sources.damage``)
stops every process at the same record, and each finds the same place to resume, so the
stretches stay in step; process 0's reader names the damage. A process that fails sends its traceback,
and the scan fails with it; whatever way the scan ends, the others are stopped and reaped.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

from monitor.fastscan import RecordWalk, walk_capture
from monitor.pipeline import Pipeline
from monitor.sources.pcap import CaptureReader
from monitor.values import StageCounters

_PIPE_BUFFER_BYTES = 1 << 20


class ScanShareError(RuntimeError):
    """Another process of a shared scan failed, or sent something out of step: one line, with
    the other process's traceback, if it sent one, in ``detail``."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def scan_shared(
    reader: CaptureReader,
    pipeline: Pipeline,
    write: Callable[[str], object],
    by_proto: Counter[str],
    jobs: int,
) -> None:
    """``fastscan.scan_capture`` with ``jobs`` processes (see the module docstring)."""
    from monitor.compiled.scanloop import merge_lines

    sys.stdout.flush()
    sys.stderr.flush()
    others: list[_OtherShare] = []
    try:
        for share in range(1, jobs):
            others.append(_OtherShare.start(reader, pipeline, share, jobs, others))

        def emit(walk: RecordWalk) -> None:
            frames, lines = walk.line_frames, walk.lines
            for other in others:
                other_frames, other_lines = other.receive("lines")
                frames, lines = merge_lines(frames, lines, other_frames, other_lines)
            if lines:
                write("\n".join(lines) + "\n")
            walk.lines.clear()
            walk.line_frames.clear()

        walk_capture(reader, pipeline, by_proto, emit, share=0, shares=jobs)
        for other in others:
            counters, their_by_proto = other.receive("totals")
            add_counters(pipeline.counters, counters)
            by_proto.update(their_by_proto)
    finally:
        for other in others:
            other.stop()


def add_counters(total: StageCounters, part: StageCounters) -> None:
    """Add one process's counters to the scan's."""
    total.frames += part.frames
    total.packets += part.packets
    total.observations += part.observations
    tables: list[tuple[dict[Any, int], dict[Any, int]]] = [
        (total.malformed, part.malformed),
        (total.errors, part.errors),
        (total.unsupported_linktypes, part.unsupported_linktypes),
    ]
    for mine, theirs in tables:
        for key, count in theirs.items():
            mine[key] = mine.get(key, 0) + count


class _OtherShare:
    """Another process of the scan, seen from process 0: its id and the pipe it sends on."""

    def __init__(self, pid: int, stream: IO[bytes]) -> None:
        self.pid = pid
        self.stream = stream

    @classmethod
    def start(
        cls,
        reader: CaptureReader,
        pipeline: Pipeline,
        share: int,
        shares: int,
        started: list[_OtherShare],
    ) -> _OtherShare:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the new process: scan its share, send, and leave without cleaning up
            code = 1
            try:
                os.close(read_fd)
                for other in started:
                    other.stream.close()
                with os.fdopen(write_fd, "wb", buffering=_PIPE_BUFFER_BYTES) as out:
                    code = _run_share(reader, pipeline, share, shares, out)
            finally:
                os._exit(code)
        os.close(write_fd)
        return cls(pid, os.fdopen(read_fd, "rb", buffering=_PIPE_BUFFER_BYTES))

    def receive(self, kind: str) -> tuple[Any, ...]:
        """The next message, which must be of ``kind``."""
        try:
            message = pickle.load(self.stream)
        except (EOFError, pickle.UnpicklingError):  # ended, or died halfway through a message
            raise ScanShareError(
                f"scan process {self.pid} ended without sending its results"
            ) from None
        if message[0] == "error":
            lines = message[1].strip().splitlines() or ["(no traceback)"]
            raise ScanShareError(f"scan process {self.pid} failed: {lines[-1]}", message[1])
        if message[0] != kind:
            raise ScanShareError(
                f"scan process {self.pid} sent {message[0]!r} where {kind!r} was due "
                "(did the capture change while it was being scanned?)"
            )
        return tuple(message[1:])

    def stop(self) -> None:
        """Stop the process if it still runs, and reap it."""
        self.stream.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _run_share(
    reader: CaptureReader, pipeline: Pipeline, share: int, shares: int, out: IO[bytes]
) -> int:
    """In another process: walk the file as share ``share``, sending lines and then totals."""

    def send(*message: object) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        by_proto: Counter[str] = Counter()

        def emit(walk: RecordWalk) -> None:
            send("lines", walk.line_frames, walk.lines)
            walk.lines.clear()
            walk.line_frames.clear()

        walk_capture(reader, pipeline, by_proto, emit, share=share, shares=shares)
        send("totals", pipeline.counters, by_proto)
        return 0
    except BaseException:
        with contextlib.suppress(BaseException):
            send("error", traceback.format_exc())
        return 1
