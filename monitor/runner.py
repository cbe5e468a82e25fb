"""Lifecycle of the capture daemon and of replays: build, run, stop in order, lose nothing.

``hallmonitor capture`` and ``hallmonitor scan --record`` both come here. One thread captures
(frames -> pipeline -> engine, which hands items to the writer); the main thread owns the
signals and ticks the engine (idle incidents close, counters flush), logs a stats line, runs
the daily purge, forgets devices erased in the review app within ``ERASURE_POLL_INTERVAL_S``
(``monitor.store.erasures``) and reloads lists and configuration on SIGHUP. SIGTERM or SIGINT stops capture,
closes every open incident, and drains the writer's queue before the process exits. A daemon
that was killed instead (``kill -9``, a power cut) left its incidents open: the next start
carries them on from the database (``resume_left_open``), so the same activity grows the same
incident and what stayed idle is closed.

Names: ``engine`` is always the monitor's ``Engine`` (classify, policy, incidents); a SQLAlchemy
engine, opened here only for a moment (schema check, ledger, purge), is called ``database``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from monitor.config.rules import build_rules
from monitor.config.settings import Settings
from monitor.devices import DeviceDirectory
from monitor.engine import Engine
from monitor.errors import CaptureFileError
from monitor.extract.dns import DNS_PORTS
from monitor.fastscan import general_observations, live_observer
from monitor.pipeline import Pipeline
from monitor.records import CaptureRecorded
from monitor.sessions import Sessionizer
from monitor.sources.live import LiveSource, build_bpf_filter
from monitor.sources.pcap import read_capture
from monitor.store.db import ensure_schema_current, make_engine
from monitor.store.erasures import POLL_INTERVAL_S as ERASURE_POLL_INTERVAL_S
from monitor.store.erasures import ErasureWatch
from monitor.store.ledger import (
    LedgerEntry,
    NumberedSink,
    ReplayPosition,
    file_sha256,
    files_digest,
    recorded_capture,
    replay_positions,
)
from monitor.store.queries.health import FRAMES_COUNTER, KERNEL_DROPS_COUNTER
from monitor.store.recovery import left_open_incidents
from monitor.store.retention import purge
from monitor.store.writer import Writer, WriterStats
from monitor.values import Frame, Observation, StageCounters
from monitor.workers import CaptureWorkers, WorkerPlan, fanout_group_base

logger = logging.getLogger(__name__)

TICK_INTERVAL_S = 0.5
"""How often the main thread closes idle incidents and checks signals."""
COUNTS_INTERVAL_S = 30.0
"""How often frames, malformed frames and kernel drops go to the anonymous daily counters."""
STATS_INTERVAL_S = 300.0
"""How often the daemon logs its stats line."""
PURGE_INTERVAL_S = 24 * 3600.0
"""How often the daemon enforces retention."""
DRAIN_TIMEOUT_S = 30.0
"""How long shutdown waits for the writer to drain before the rest goes to the spool."""
REPLAY_TICK_EVERY_FRAMES = 1000
"""During a replay, the capture clock advances the engine this often."""


def local_day_function(timezone: str) -> Callable[[float], date]:
    """The school's calendar day of a UTC timestamp."""
    zone = ZoneInfo(timezone)

    def day_of(ts: float) -> date:
        return datetime.fromtimestamp(ts, zone).date()

    return day_of


def build_engine(settings: Settings, sink: Callable[..., None]) -> Engine:
    """The engine for one process, wired from the configuration."""
    classifier, policy = build_rules(settings)
    day_of = local_day_function(settings.calendar.timezone)
    sessionizer = Sessionizer(
        site=settings.site.name,
        idle_gap_s=settings.incidents.idle_gap_minutes * 60,
        max_evidence=settings.incidents.max_evidence,
        day_of=day_of,
    )
    return Engine(
        site=settings.site.name,
        classifier=classifier,
        policy=policy,
        sessionizer=sessionizer,
        devices=DeviceDirectory(),
        sink=sink,
        day_of=day_of,
    )


def build_writer(settings: Settings, *, wait_when_full: bool = False) -> Writer:
    """The single database writer, with its spool for when the database is away."""
    url = settings.database.url.get_secret_value()
    return Writer(
        lambda: make_engine(url),
        spool_dir=settings.database.spool_dir,
        batch_size=settings.database.batch_size,
        flush_interval_s=settings.database.flush_interval_s,
        wait_when_full=wait_when_full,
    )


def check_schema(settings: Settings) -> None:
    """Refuse to start on a database that is not at the latest migration.

    A database that cannot be reached at all does not stop the start: capture goes on into the
    spool, and the writer replays it when the database returns (it checks nothing itself, so
    run ``hallmonitor db upgrade`` before pointing a sensor at a new database).
    """
    database = make_engine(settings.database.url.get_secret_value())
    try:
        ensure_schema_current(database)
    except OperationalError as e:
        logger.warning(
            "the database %s cannot be reached (%s); starting anyway: records wait in the spool "
            "%s until it returns",
            settings.database.display_url(),
            str(e.orig or e).splitlines()[0],
            settings.database.spool_dir,
        )
    finally:
        database.dispose()


def resume_left_open(settings: Settings, engine: Engine) -> int:
    """Hand the incidents a previous run left open to ``engine``; how many it carries on.

    A database that cannot be read now does not stop the start: those incidents then stay open
    until the next start that can read them.
    """
    database = make_engine(settings.database.url.get_secret_value())
    try:
        left = left_open_incidents(database, settings.site.name)
    except SQLAlchemyError as e:
        logger.warning(
            "could not read the incidents a previous run left open (%s); they stay open until "
            "a start that can read the database",
            str(getattr(e, "orig", None) or e).splitlines()[0],
        )
        return 0
    finally:
        database.dispose()
    if left:
        engine.resume(left)
        logger.info(
            "carrying on %d incidents that a previous run left open (those idle for longer "
            "than the idle gap close now)",
            len(left),
        )
    return len(left)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did, for the last log line or the replay's stderr summary."""

    frames: int
    observations: int
    matches: int
    incidents: int
    writer: WriterStats
    damage: tuple[str, ...] = ()
    """The damaged places of the captures replayed (``CaptureReader.damage_report``)."""
    skipped: tuple[str, ...] = ()
    """One line per capture file not replayed because it was already recorded."""
    carried_on: tuple[str, ...] = ()
    """One line per capture file read again after an earlier run (``plan_replay``)."""

    def describe(self) -> str:
        writer = self.writer
        text = (
            f"{self.frames:,} frames, {self.observations:,} observations, "
            f"{self.matches:,} platform matches, {self.incidents:,} incidents; "
            f"{writer.written:,} records written"
        )
        if writer.spool_bytes:
            text += (
                f", {writer.spool_bytes:,} bytes waiting in the spool for the database "
                "(written on the next start)"
            )
        if writer.dropped:
            causes = "; ".join(f"{n:,} because {cause}" for cause, n in writer.drop_causes.items())
            text += f", {writer.dropped:,} DROPPED ({causes or 'cause unknown'})"
            if writer.last_error:
                text += f"; the database had failed with: {writer.last_error}"
        if self.damage:
            text += "; the captures are damaged (above): what was read is recorded"
        if self.skipped:
            text += f"; {len(self.skipped):,} files skipped as already recorded (above)"
        return text


@dataclass(frozen=True, slots=True)
class _ReplayFile:
    """One file of a replay, as the import ledger knows it."""

    path: str
    sha256: str | None
    """None when the file cannot be read (``read_capture`` says why, at its turn)."""
    recorded: LedgerEntry | None = None
    """Its entry when the site recorded it completely before."""
    stored: int = 0
    """Records of it an interrupted run stored (``NumberedSink``)."""


def _ledger(
    settings: Settings, sha256s: list[str]
) -> tuple[dict[str, LedgerEntry], dict[str, ReplayPosition]]:
    """What the ledger holds of these files. A database that cannot be read now does not stop
    the replay: the files are recorded (into the spool) without the check, and the log says so."""
    database = make_engine(settings.database.url.get_secret_value())
    try:
        site = settings.site.name
        recorded = {sha256: entry for sha256 in sha256s
                    if (entry := recorded_capture(database, site, sha256)) is not None}  # fmt: skip
        return recorded, replay_positions(database, site, sha256s)
    except SQLAlchemyError as e:
        logger.warning(
            "could not read the import ledger (%s); recording without knowing whether the files "
            "were recorded before",
            str(getattr(e, "orig", None) or e).splitlines()[0],
        )
        return {}, {}
    finally:
        database.dispose()


def plan_replay(
    settings: Settings, paths: Iterable[str]
) -> tuple[list[_ReplayFile], list[str], list[str]]:
    """The files to read, in order, and the lines saying which are skipped or carried on.

    A file named twice is read once. A file recorded before is read again (without storing)
    only when a file after it is still to be recorded, whose records its state shapes; else it
    is skipped. A file an interrupted run had begun is carried on only after the same files as
    then (``CaptureFileError`` otherwise): its numbered records depend on them.
    """
    files: list[_ReplayFile] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for path in paths:
        try:
            sha256: str | None = file_sha256(path)
        except OSError:
            sha256 = None
        if sha256 is not None and sha256 in seen:
            skipped.append(f"{path}: the same capture as a file before it in this run: skipped")
            continue
        if sha256 is not None:
            seen.add(sha256)
        files.append(_ReplayFile(path, sha256))
    recorded, positions = _ledger(settings, sorted(seen))
    files = [
        _ReplayFile(
            file.path,
            file.sha256,
            recorded.get(file.sha256 or ""),
            positions[file.sha256].position if file.sha256 in positions else 0,
        )
        for file in files
    ]
    to_record = [index for index, file in enumerate(files) if file.recorded is None]
    last = to_record[-1] if to_record else -1
    for file in files[last + 1 :]:
        entry = file.recorded
        assert entry is not None
        skipped.append(
            f"{file.path}: already recorded on {entry.recorded_at:%Y-%m-%d %H:%M} UTC "
            f"(as {entry.file_name}, {entry.frames:,} frames): skipped"
        )
    files = files[: last + 1]
    notes: list[str] = []
    for index, file in enumerate(files):
        after = files_digest(f.sha256 or "" for f in files[:index])
        position = positions.get(file.sha256 or "")
        if file.recorded is not None:
            notes.append(
                f"{file.path}: already recorded: read again without storing anything, for what "
                "continues into the files after it"
            )
        elif position is not None and position.after != after:
            raise CaptureFileError(
                file.path,
                f"an interrupted run stored {position.position:,} records of it after reading "
                "other files before it; to carry it on, record it again after the same files, "
                "in the same order",
            )
        elif file.stored:
            notes.append(
                f"{file.path}: carrying on after the {file.stored:,} records an interrupted run "
                "stored"
            )
    return files, skipped, notes


def record_captures(settings: Settings, paths: Iterable[str]) -> RunSummary:
    """Replay capture files through the daemon's path into the database (``scan --record``).

    Exactly once, however often it is killed and run again: a file the site's import ledger
    already holds (same bytes) is skipped, and a file an interrupted run had begun is carried on
    after the records that run stored (``plan_replay``, ``monitor.store.ledger.NumberedSink``).
    Each file's records end with its counters (with the engine's close at the last file), and
    its ledger entry follows them.
    """
    check_schema(settings)
    files, skipped, notes = plan_replay(settings, paths)
    writer = build_writer(settings, wait_when_full=True)
    writer.start()
    sink = NumberedSink(writer.submit)
    engine = build_engine(settings, sink)
    frames = 0
    damage: list[str] = []
    extra_ports = set(settings.capture.dns_ports)
    try:
        for index, file in enumerate(files):
            pipeline = Pipeline(dns_ports=DNS_PORTS | extra_ports)
            last_ts = 0.0
            with read_capture(file.path) as reader:
                assert file.sha256 is not None  # read_capture said why it cannot be read
                after = files_digest(f.sha256 or "" for f in files[:index])
                stored = None if file.recorded is not None else file.stored
                sink.start_file(file.sha256, after, stored)
                file_frames = frames
                for frame in reader:
                    frames += 1
                    for observation in pipeline.process(frame):
                        engine.feed(observation)
                    last_ts = frame.ts
                    if frames % REPLAY_TICK_EVERY_FRAMES == 0:
                        engine.tick(last_ts)
            damage += reader.damage_report()
            engine.tick(last_ts)
            CaptureCounts().report(engine, last_ts, pipeline.counters, 0)
            if index == len(files) - 1:
                engine.close()
            else:
                engine.flush_counters()
            if file.recorded is None:
                writer.submit(
                    CaptureRecorded(
                        site=settings.site.name,
                        sha256=file.sha256,
                        file_name=Path(file.path).name,
                        size_bytes=Path(file.path).stat().st_size,
                        frames=frames - file_frames,
                    )
                )
    finally:
        sink.stop_numbering()
        engine.close()
        stats = writer.stop(DRAIN_TIMEOUT_S)
    return RunSummary(
        frames,
        engine.stats.observations,
        engine.stats.matches,
        engine.stats.incidents_opened,
        stats,
        tuple(damage),
        tuple(skipped),
        tuple(notes),
    )


class CaptureCounts:
    """Hands the growth of the pipeline's and the kernel's totals to the engine's daily counters.

    Reads totals and remembers what it reported, so the capture thread's counters are never
    reset from another thread.
    """

    def __init__(self) -> None:
        self._reported: dict[str, int] = {}

    def report(self, engine: Engine, ts: float, counters: StageCounters, kernel_drops: int) -> None:
        totals = {
            FRAMES_COUNTER: counters.frames,
            "capture.malformed": sum(counters.malformed.values()),
            KERNEL_DROPS_COUNTER: kernel_drops,
        }
        for name, total in totals.items():
            engine.count(ts, name, total - self._reported.get(name, 0))
            self._reported[name] = total


def default_interfaces() -> list[str]:
    """Every interface that is up, except loopback: what to capture when none is configured."""
    names = []
    for entry in sorted(Path("/sys/class/net").iterdir()):
        try:
            up = (entry / "operstate").read_text().strip() in ("up", "unknown")
            loopback = (entry / "type").read_text().strip() == "772"
        except OSError:
            continue
        if up and not loopback:
            names.append(entry.name)
    return names


class FrameSource(Protocol):
    """Where the daemon's frames come from: live interfaces, or a replay (``up --demo``)."""

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames until ``stop`` is set."""
        ...

    def stats(self) -> dict[str, tuple[int, int]]:
        """Packets received and dropped by the kernel, per interface, since start."""
        ...

    @property
    def interfaces(self) -> list[str]:
        """Names for the log line."""
        ...

    def close(self) -> None:
        """Release sockets or files."""
        ...


def open_live_source(settings: Settings) -> FrameSource:
    """The configured interfaces (every interface that is up when none is), with the BPF filter."""
    plan = worker_plan(settings)
    return LiveSource(
        list(plan.interfaces),
        bpf=plan.bpf,
        snaplen=plan.snaplen,
        buffer_bytes=plan.buffer_bytes,
    )


def worker_plan(settings: Settings) -> WorkerPlan:
    """What live capture opens, in one process or in each of ``capture.workers``."""
    capture = settings.capture
    ports = DNS_PORTS | set(capture.dns_ports)
    return WorkerPlan(
        interfaces=tuple(capture.interfaces or default_interfaces()),
        bpf=build_bpf_filter(sorted(ports)),
        snaplen=capture.snaplen,
        buffer_bytes=capture.buffer_mb << 20,
        dns_ports=frozenset(ports),
        fanout_group=fanout_group_base(),
    )


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """Totals since the daemon started, for the stats line, metrics and health. No identities."""

    packets: int
    """Packets the kernel passed through the BPF filter."""
    kernel_drops: int
    frames: int
    """Frames the pipeline read."""
    malformed: int
    observations: int
    matches: int
    incidents_opened: int
    incidents_closed: int
    writer: WriterStats


class CaptureDaemon:
    """``hallmonitor capture``: live capture into the database until SIGTERM.

    ``open_source`` replaces the live interfaces (``hallmonitor up --demo`` replays sample
    traffic, and gives its own ``clock``). Signals are handled only when ``run`` is called on the
    main thread; otherwise whoever started it stops it with ``stop``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        reload_settings: Callable[[], Settings] | None = None,
        stats_interval_s: float = STATS_INTERVAL_S,
        open_source: Callable[[Settings], FrameSource] = open_live_source,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        """The engine's "now" (``up --demo`` moves it into the school day with its frames)."""
        self.reload_settings = reload_settings
        self.stats_interval_s = stats_interval_s
        self.open_source = open_source
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.started = threading.Event()
        """Set once capture runs (the source is open and the writer started)."""
        self.started_at: float | None = None
        """When capture started (seconds since the epoch), for the metrics."""
        self.lock = threading.Lock()
        self.frames = 0
        self.capture_counts = CaptureCounts()
        self.capture_error: BaseException | None = None
        self.source: FrameSource | CaptureWorkers | None = None
        self.counters: StageCounters | None = None
        """The decoders' counters: the capture thread's pipeline's, or the workers' summed."""
        self.engine: Engine | None = None
        self.writer: Writer | None = None

    def stop(self) -> None:
        """Ask ``run`` to stop (from another thread, or a signal handler)."""
        self.stop_event.set()

    def reload(self) -> None:
        """Ask ``run`` to reload lists and configuration (SIGHUP does this)."""
        self.reload_event.set()

    def status(self) -> DaemonStatus | None:
        """Totals now, or None before capture has started."""
        source, counters, engine, writer = self.source, self.counters, self.engine, self.writer
        if source is None or counters is None or engine is None or writer is None:
            return None
        received = drops = 0
        for packets, dropped in source.stats().values():
            received += packets
            drops += dropped
        stats = engine.stats
        return DaemonStatus(
            packets=received,
            kernel_drops=drops,
            frames=counters.frames,
            malformed=sum(counters.malformed.values()),
            observations=stats.observations,
            matches=stats.matches,
            incidents_opened=stats.incidents_opened,
            incidents_closed=stats.incidents_closed,
            writer=writer.stats(),
        )

    def run(self) -> RunSummary:
        """Start, serve until a stop signal, then stop every part in order."""
        settings = self.settings
        check_schema(settings)
        ports = DNS_PORTS | set(settings.capture.dns_ports)
        workers: CaptureWorkers | None = None
        source: FrameSource | CaptureWorkers
        if settings.capture.workers > 1 and self.open_source is open_live_source:
            source = workers = CaptureWorkers(worker_plan(settings), settings.capture.workers)
        else:
            source = self.open_source(settings)
        writer = build_writer(settings)
        writer.start()
        engine = build_engine(settings, writer.submit)
        resume_left_open(settings, engine)
        erasures = ErasureWatch(
            make_engine(settings.database.url.get_secret_value()), settings.site.name
        )
        engine.forget(erasures.poll())
        pipeline = Pipeline(dns_ports=ports)
        counters = pipeline.counters if workers is None else workers.counters
        self.source, self.counters, self.engine, self.writer = source, counters, engine, writer
        previous = self._install_signal_handlers()
        logger.info(
            "capturing on %s for site %r%s; database %s",
            ", ".join(source.interfaces),
            settings.site.name,
            "" if workers is None else f" with {workers.count} capture workers",
            settings.database.display_url(),
        )
        self.started_at = time.time()
        self.started.set()
        if workers is None:
            thread = threading.Thread(
                target=self._capture, args=(source, pipeline, engine), name="capture", daemon=True
            )
        else:
            thread = threading.Thread(
                target=self._receive, args=(workers, engine), name="capture", daemon=True
            )
        thread.start()
        try:
            self._serve(source, counters, engine, thread, erasures)
        finally:
            erasures.engine.dispose()
            self.stop_event.set()
            # Workers send what they hold before their last message: wait for all of it.
            thread.join(timeout=10 if workers is None else DRAIN_TIMEOUT_S)
            if workers is not None:
                self.frames = workers.frames_decoded
            self._log_stats()  # the totals, kernel drops included, as capture ends
            drops = sum(dropped for _, dropped in source.stats().values())
            source.close()
            with self.lock:
                self.capture_counts.report(engine, self.clock(), counters, drops)
                engine.close()
            stats = writer.stop(DRAIN_TIMEOUT_S)
            self._restore_signal_handlers(previous)
        summary = RunSummary(
            self.frames,
            engine.stats.observations,
            engine.stats.matches,
            engine.stats.incidents_opened,
            stats,
        )
        logger.info("stopped: %s", summary.describe())
        if self.capture_error is not None:
            raise RuntimeError(f"capture failed: {self.capture_error}") from self.capture_error
        return summary

    def _capture(self, source: FrameSource, pipeline: Pipeline, engine: Engine) -> None:
        lock = self.lock
        feed = engine.feed
        # Live frames come a socket drain at a time, and go through the compiled loop together
        # (scan's per-frame decisions; the pipeline's hoisted loop when it is not built, see
        # fastscan.live_observer), its counters moving once per batch. A replay's come one
        # frame at a time, through the pipeline (the loop's set-up would cost more than a frame).
        try:
            batches: Iterable[list[Frame]]
            if isinstance(source, LiveSource):
                observe = live_observer(pipeline)
                batches = source.batches(self.stop_event)
            else:
                observe = partial(general_observations, pipeline)
                batches = ([frame] for frame in source.frames(self.stop_event))
            for batch in batches:
                self.frames += len(batch)
                found = observe(batch)
                if found:
                    with lock:
                        for observation in found:
                            feed(observation)
        except Exception as e:  # a dead capture thread must stop the daemon, not hang it
            logger.exception("capture stopped")
            self.capture_error = e
            self.stop_event.set()

    def _receive(self, workers: CaptureWorkers, engine: Engine) -> None:
        lock = self.lock

        def feed(observations: list[Observation]) -> None:
            with lock:
                for observation in observations:
                    engine.feed(observation)

        try:
            workers.receive(feed, self.stop_event)
        except Exception as e:  # as in _capture: a dead worker stops the daemon
            logger.exception("capture stopped")
            self.capture_error = e
            self.stop_event.set()
        self.frames = workers.frames_decoded

    def _serve(
        self,
        source: FrameSource | CaptureWorkers,
        counters: StageCounters,
        engine: Engine,
        thread: threading.Thread,
        erasures: ErasureWatch,
    ) -> None:
        next_stats = time.monotonic() + self.stats_interval_s
        next_erasures = time.monotonic() + ERASURE_POLL_INTERVAL_S
        next_purge = time.monotonic()
        capture_counts = self.capture_counts
        next_counts = time.monotonic()
        while not self.stop_event.wait(TICK_INTERVAL_S):
            if time.monotonic() >= next_counts:
                next_counts = time.monotonic() + COUNTS_INTERVAL_S
                drops = sum(dropped for _, dropped in source.stats().values())
                with self.lock:
                    capture_counts.report(engine, self.clock(), counters, drops)
            with self.lock:
                engine.tick(self.clock())
            if self.reload_event.is_set():
                self.reload_event.clear()
                self._reload(engine)
            if time.monotonic() >= next_erasures:
                next_erasures = time.monotonic() + ERASURE_POLL_INTERVAL_S
                self._forget_erased(engine, erasures)
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + self.stats_interval_s
                self._log_stats()
            if now >= next_purge:
                next_purge = now + PURGE_INTERVAL_S
                self._purge()
            if not thread.is_alive():
                break

    def _forget_erased(self, engine: Engine, erasures: ErasureWatch) -> None:
        found = erasures.poll()
        if found:
            with self.lock:
                dropped = engine.forget(found)
            logger.info(
                "forgot %d erased identities (%d open incidents dropped)", len(found), dropped
            )

    def _reload(self, engine: Engine) -> None:
        if self.reload_settings is None:
            return
        try:
            settings = self.reload_settings()
            classifier, policy = build_rules(settings)
        except Exception as e:  # keep running on the old rules: say why, loudly
            logger.error("reload failed, keeping the previous lists and configuration: %s", e)
            return
        with self.lock:
            engine.replace_rules(classifier, policy)
        self.settings = settings
        logger.info("reloaded lists and configuration")

    def _purge(self) -> None:
        retention = self.settings.retention
        try:
            database = make_engine(self.settings.database.url.get_secret_value())
            try:
                result = purge(
                    database,
                    datetime.now(UTC),
                    observations_days=retention.observations_days,
                    incidents_days=retention.incidents_days,
                    false_positive_days=retention.false_positive_days,
                    site=self.settings.site.name,
                )
            finally:
                database.dispose()
        except Exception as e:  # the database may be away: the next day's purge catches up
            logger.warning("retention purge failed, will try again tomorrow: %s", e)
            return
        logger.info("retention purge: %s", result)

    def _log_stats(self) -> None:
        status = self.status()
        if status is None:
            return
        logger.info(
            "packets %d, kernel drops %d, frames %d, malformed %d, observations %d, matches %d, "
            "incidents %d, queue %d, spool %d bytes",
            status.packets,
            status.kernel_drops,
            status.frames,
            status.malformed,
            status.observations,
            status.matches,
            status.incidents_opened,
            status.writer.queued,
            status.writer.spool_bytes,
        )

    def _install_signal_handlers(self) -> dict[int, object]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, object] = {}

        def stop(signum: int, _frame: FrameType | None) -> None:
            logger.info("received %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.reload_event.set()

        for signum, handler in (
            (signal.SIGTERM, stop),
            (signal.SIGINT, stop),
            (signal.SIGHUP, reload),
        ):
            previous[signum] = signal.signal(signum, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
