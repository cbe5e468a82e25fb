"""Capture workers (``capture.workers`` above 1): decoding spread over processes by flow.

Each worker process opens the same interfaces as the daemon would, with the same kernel filter,
and joins a ``PACKET_FANOUT`` group per interface: the kernel hands each packet to one member by
its symmetric flow hash, so both directions of a flow (a DNS query and its answer, a TCP
connection) and every fragment of a datagram reach the same worker, whose decoder and extractor
hold that flow's state as one process would. A worker decodes and extracts (``Pipeline``, through
the compiled loop as ``scan`` when it is built: ``fastscan.live_observer``), and
sends its observations, in the order it made them, with its running totals, over a pipe to the
daemon's main process, where one thread feeds them to the one engine (classify, policy,
incidents) and so to the one writer.

Nothing is lost in between: a pipe delivers what was sent, in order; on stop each worker
finishes the batch in hand, sends what it has with its final totals and a last message, and the
daemon reads every pipe to that message before it closes the engine and drains the writer. A
worker that dies stops the daemon (as a dead capture thread does), loudly.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import operator
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from monitor.fastscan import live_observer
from monitor.pipeline import Pipeline
from monitor.values import Observation, StageCounters

logger = logging.getLogger(__name__)

REPORT_INTERVAL_S = 1.0
"""How often an idle worker sends its totals (kernel counters included)."""
START_TIMEOUT_S = 60.0
"""How long the daemon waits for every worker to have its sockets open."""

observation_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(Observation)))
"""An observation as the plain tuple of its fields, ``Observation(*fields)`` again: pickled
that way it costs the daemon about half the time of the dataclass (5 against 10 µs measured on
the busy 2-core machine), and whatever fields ``Observation`` gains travel too."""


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What a worker process needs to open its share of the capture (picklable)."""

    interfaces: tuple[str, ...]
    bpf: str
    snaplen: int
    buffer_bytes: int
    dns_ports: frozenset[int]
    fanout_group: int


@dataclass(frozen=True, slots=True)
class WorkerTotals:
    """One worker's running totals since it started."""

    frames: int = 0
    malformed: int = 0
    interfaces: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per interface: packets the kernel delivered to this worker, and dropped from its ring."""


def fanout_group_base(pid: int | None = None) -> int:
    """A fanout group id for this daemon (one per interface follows it): distinct per process,
    so two daemons on one machine do not share their packets."""
    return (pid if pid is not None else os.getpid()) & 0xFF00


def run_worker(plan: WorkerPlan, conn: Connection, stop: Any) -> None:
    """A worker process's body: capture its share, decode, send observations until ``stop``."""
    from monitor.sources.live import CaptureSetupError, LiveSource

    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    # The daemon stops its workers itself; a signal to the whole group (Ctrl-C, systemd's stop)
    # ends this worker the same orderly way: flush, then the last message.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        source = LiveSource(
            list(plan.interfaces),
            bpf=plan.bpf,
            snaplen=plan.snaplen,
            buffer_bytes=plan.buffer_bytes,
            fanout_group=plan.fanout_group,
        )
    except CaptureSetupError as e:
        conn.send(("failed", str(e)))
        conn.close()
        return
    conn.send(("ready", None))
    pipeline = Pipeline(dns_ports=plan.dns_ports)
    counters = pipeline.counters
    observe = live_observer(pipeline)  # the compiled loop, as in the daemon's own capture

    def totals() -> WorkerTotals:
        return WorkerTotals(counters.frames, sum(counters.malformed.values()), source.stats())

    class Either:
        @staticmethod
        def is_set() -> bool:
            return stopping.is_set() or stop.is_set()

    next_report = time.monotonic() + REPORT_INTERVAL_S
    try:
        for batch in source.batches(Either):
            found = observe(batch)
            now = time.monotonic()
            if found or now >= next_report:
                report = None
                if now >= next_report:
                    next_report = now + REPORT_INTERVAL_S
                    report = totals()
                conn.send(("batch", ([observation_fields(each) for each in found], report)))
        conn.send(("done", totals()))
    finally:
        source.close()
        conn.close()


class CaptureWorkers:
    """The daemon's side of its workers: starts them, reads their pipes, sums their totals.

    Looks like a ``FrameSource`` where the daemon reports (``stats``, ``interfaces``,
    ``close``), and has ``counters`` (frames, malformed) like a ``Pipeline``'s.
    """

    def __init__(self, plan: WorkerPlan, count: int) -> None:
        if count < 2:
            raise ValueError(f"workers must be at least 2 here, not {count}")
        self.plan = plan
        self.count = count
        # spawn: the daemon already runs threads (the writer), which fork would copy half-done.
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        self._totals: list[WorkerTotals] = [WorkerTotals() for _ in range(count)]
        self.counters = StageCounters()
        self.frames_decoded = 0
        for index in range(count):
            parent, child = context.Pipe(duplex=False)
            process = context.Process(
                target=run_worker,
                args=(plan, child, self._stop),
                name=f"hallmonitor-capture-{index + 1}",
                daemon=True,
            )
            process.start()
            child.close()
            self._conns.append(parent)
            self._processes.append(process)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        from monitor.sources.live import CaptureSetupError

        deadline = time.monotonic() + START_TIMEOUT_S
        for index, conn in enumerate(self._conns):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise CaptureSetupError(f"capture worker {index + 1} did not start in time")
            try:
                kind, detail = conn.recv()
            except EOFError:
                raise CaptureSetupError(f"capture worker {index + 1} died while starting") from None
            if kind == "failed":
                raise CaptureSetupError(detail)

    @property
    def interfaces(self) -> list[str]:
        return list(self.plan.interfaces)

    def stats(self) -> dict[str, tuple[int, int]]:
        """Per interface, summed over the workers: packets delivered, and dropped."""
        result: dict[str, tuple[int, int]] = {}
        for totals in self._totals:
            for name, (received, dropped) in totals.interfaces.items():
                before = result.get(name, (0, 0))
                result[name] = (before[0] + received, before[1] + dropped)
        return result

    def _account(self, index: int, totals: WorkerTotals) -> None:
        self._totals[index] = totals
        self.frames_decoded = sum(each.frames for each in self._totals)
        self.counters.frames = self.frames_decoded
        malformed = sum(each.malformed for each in self._totals)
        self.counters.malformed = {"decode": malformed} if malformed else {}

    def receive(self, feed: Callable[[list[Observation]], None], stop: threading.Event) -> None:
        """Hand every worker's observations to ``feed`` until all have sent their last message.

        Asks the workers to stop once ``stop`` is set; sets it when a worker stops by itself (a
        signal to the whole process group), and raises if one dies.
        """
        open_conns = dict(zip(self._conns, range(self.count), strict=True))
        asked = False
        while open_conns:
            if stop.is_set() and not asked:
                self._stop.set()
                asked = True
            for conn in cast(list[Connection], wait(list(open_conns), timeout=0.2)):
                index = open_conns[conn]
                try:
                    kind, body = conn.recv()
                except EOFError:
                    del open_conns[conn]
                    raise RuntimeError(
                        f"capture worker {index + 1} ended without its last message "
                        f"(exit code {self._processes[index].exitcode})"
                    ) from None
                if kind == "batch":
                    observations, totals = body
                    if observations:
                        feed([Observation(*fields) for fields in observations])
                    if totals is not None:
                        self._account(index, totals)
                elif kind == "done":
                    self._account(index, body)
                    del open_conns[conn]
                    if not stop.is_set():  # a signal to the whole process group: stop all
                        logger.info("capture worker %d stopped: stopping the daemon", index + 1)
                        stop.set()

    def close(self) -> None:
        """Stop the workers (if still running) and wait for them."""
        self._stop.set()
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
