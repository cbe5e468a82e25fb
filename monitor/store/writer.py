"""The single database writer: batches from a bounded queue, a disk spool when the DB is away.

The capture thread calls ``submit(item)``, which never waits for the database: the item goes on
a bounded queue, or, when the queue is full, straight to the disk spool (only if the spool is
unwritable too is it dropped, counted and logged at ERROR). One writer thread takes batches of
up to ``batch_size`` items or ``flush_interval_s`` seconds and applies each in one transaction.

When the database is unreachable the batch is appended to the spool (fsynced), later batches
follow it there, and the writer retries with exponential backoff. When the database answers
again the spool is replayed in order before new batches, and each segment file is deleted only
after its records are committed.

Nothing is applied twice. Each batch carries an id that is inserted into ``applied_batches`` in
the batch's own transaction; a replayed record whose id is there is skipped, so counters are
exactly-once even when a commit succeeded but its acknowledgement was lost. Every write is also
order-independent: incidents are upserted by key and only move forward (more hits, or closed),
counters add, device bindings keep the earliest first-seen and latest last-seen. Order is kept
except when the queue overflows, where spooled items may land before older queued ones.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from monitor.store.db import display_url
from monitor.store.rows import apply_records, encode_item
from monitor.store.spool import Spool, SpoolRecord
from monitor.values import Incident, Match, Observation

logger = logging.getLogger(__name__)

WAKE_INTERVAL_S = 0.25
"""The writer thread wakes at least this often to retry, replay or notice a stop."""
SPOOL_SYNC_INTERVAL_S = 1.0
"""Items spooled by the capture thread (queue full) are fsynced at least this often."""
ERROR_LOG_INTERVAL_S = 60.0
"""Repeated errors of one kind (drops, queue overflow) are logged at most this often."""


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """A matched observation to store, with the incident it counted towards (if any)."""

    site: str
    observation: Observation
    match: Match
    incident_key: str | None = None


@dataclass(frozen=True, slots=True)
class CounterIncrement:
    """Add ``count`` to an anonymous daily counter (``observations.dns``, ``matches.outside_hours``)."""

    site: str
    day: date
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class EmbeddedCountRow:
    """Add ``count`` embedded-only hits for one device, platform and day."""

    site: str
    day: date
    device_ip: str
    device_mac: str | None
    platform: str
    count: int


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A device (MAC, where known) was seen at an address at ``ts``, perhaps with a host name."""

    site: str
    mac: str | None
    ip: str
    host_name: str | None
    ts: float


WriterItem = Incident | StoredObservation | CounterIncrement | EmbeddedCountRow | DeviceSeen


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What the writer did, for the periodic log line and the health page."""

    queued: int
    """Items waiting on the queue now."""
    written: int
    """Items committed straight from the queue."""
    spooled: int
    """Items appended to the disk spool (queue full or database away)."""
    replayed: int
    """Spooled items committed later."""
    dropped: int
    """Items lost: the spool was unwritable, or a spool line was unreadable."""
    rejected: int
    """Items the database refused (not a connection problem), kept in ``rejected.jsonl``."""
    spool_bytes: int
    """Bytes waiting in the spool now."""
    last_error: str | None


class Writer:
    """The one thread that writes to the database; see the module docstring."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        *,
        spool_dir: Path,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        queue_size: int = 10000,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
    ) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._spool = Spool(spool_dir)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._queue: queue.Queue[WriterItem] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._deadline: float | None = None
        self._stats_lock = threading.Lock()
        self._counts = {"written": 0, "spooled": 0, "replayed": 0, "dropped": 0, "rejected": 0}
        self._last_error: str | None = None
        self._retry_at = 0.0
        self._retry_delay_s = retry_initial_s
        self._down_since: float | None = None
        self._last_sync = 0.0
        self._last_logged: dict[str, float] = {}

    def start(self) -> None:
        """Build the engine and start the writer thread (spooled records are replayed first)."""
        self._engine = self._engine_factory()
        self._thread = threading.Thread(target=self._run, name="hallmonitor-writer", daemon=True)
        self._thread.start()

    def submit(self, item: WriterItem) -> None:
        """Queue ``item`` for writing; never waits for the database."""
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            pass
        try:
            self._spool.append(uuid.uuid4().hex, [encode_item(item)], sync=False)
        except OSError as e:
            self._count("dropped")
            self._log_rate_limited(
                "drop", logging.ERROR, "writer queue full and spool unwritable (%s): item dropped "
                "(%d so far); free space in %s or fix its permissions", e,
                self.stats().dropped, self._spool.directory,
            )  # fmt: skip
            return
        self._count("spooled")
        self._log_rate_limited(
            "overflow", logging.WARNING, "writer queue full (%d items): spilling to the spool "
            "in %s; the database is slower than capture", self._queue.maxsize,
            self._spool.directory,
        )  # fmt: skip

    def stop(self, timeout: float) -> WriterStats:
        """Drain the queue and flush; what cannot reach the database by then goes to the spool."""
        self._deadline = time.monotonic() + timeout * 0.75
        self._stopping.set()
        if self._thread is None:
            self._spool_batch(self._take_batch(wait=False, limit=self._queue.qsize()))
        else:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "the database writer did not finish within %.0fs; %d items still queued",
                    timeout,
                    self._queue.qsize(),
                )
                return self.stats()
        self._spool.close()
        stats = self.stats()
        logger.info(
            "writer stopped: %d written, %d replayed, %d spooled (%d bytes waiting), "
            "%d dropped, %d rejected",
            stats.written, stats.replayed, stats.spooled, stats.spool_bytes,
            stats.dropped, stats.rejected,
        )  # fmt: skip
        return stats

    def stats(self) -> WriterStats:
        with self._stats_lock:
            return WriterStats(
                queued=self._queue.qsize(),
                spool_bytes=self._spool.size_bytes(),
                last_error=self._last_error,
                **self._counts,
            )

    # --- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if self._spool.has_pending() and self._database_due():
                    self._replay_spool()
                stopping = self._stopping.is_set()
                batch = self._take_batch(wait=not stopping, limit=self._batch_size)
                if batch:
                    self._handle(batch)
                elif stopping:
                    break
                if time.monotonic() - self._last_sync >= SPOOL_SYNC_INTERVAL_S:
                    self._spool.sync()
                    self._last_sync = time.monotonic()
        finally:
            if self._engine is not None:
                self._engine.dispose()

    def _database_due(self) -> bool:
        now = time.monotonic()
        if self._deadline is not None and now >= self._deadline:
            return False
        return now >= self._retry_at

    def _take_batch(self, *, wait: bool, limit: int) -> list[WriterItem]:
        try:
            first = self._queue.get(timeout=WAKE_INTERVAL_S) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        flush_at = time.monotonic() + self._flush_interval_s
        while len(batch) < limit:
            remaining = flush_at - time.monotonic()
            try:
                if wait and remaining > 0:
                    batch.append(self._queue.get(timeout=remaining))
                else:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[WriterItem]) -> None:
        if self._spool.has_pending() or not self._database_due():
            self._spool_batch(batch)
            return
        record = SpoolRecord(uuid.uuid4().hex, [encode_item(item) for item in batch])
        try:
            self._apply([record], skip_applied=False)
        except SQLAlchemyError as e:
            if not is_transient(e):
                self._apply_one_by_one(record.items, e)
                return
            self._note_unreachable(e)
            self._spool_record(record)
            return
        self._count("written", len(batch))
        self._note_reachable()

    def _apply(self, records: list[SpoolRecord], *, skip_applied: bool) -> int:
        if self._engine is None:
            raise RuntimeError("Writer.start() was not called")
        with self._engine.begin() as connection:
            return self._apply_in(connection, records, skip_applied=skip_applied)

    def _apply_in(
        self, connection: Connection, records: list[SpoolRecord], *, skip_applied: bool
    ) -> int:
        applied, bad_items = apply_records(
            connection, records, now=datetime.now(UTC), skip_applied=skip_applied
        )
        for item, reason in bad_items:
            self._reject(item, reason)
        return applied

    def _apply_one_by_one(self, items: list[dict[str, Any]], error: SQLAlchemyError) -> None:
        """A batch the database refused: find the item(s) at fault, write the rest."""
        logger.error("the database refused a batch (%s); retrying its items one by one", error)
        for index, item in enumerate(items):
            record = SpoolRecord(uuid.uuid4().hex, [item])
            try:
                self._apply([record], skip_applied=False)
            except SQLAlchemyError as e:
                if is_transient(e):
                    self._note_unreachable(e)
                    self._spool_record(SpoolRecord(uuid.uuid4().hex, items[index:]))
                    return
                self._reject(item, str(e))
                continue
            self._count("written")

    def _replay_spool(self) -> None:
        replayed = 0
        for segment in self._spool.sealed_segments():
            records, unreadable = self._spool.read(segment)
            self._count("dropped", unreadable)
            for start in range(0, len(records), max(1, self._batch_size // 10)):
                group = records[start : start + max(1, self._batch_size // 10)]
                if not self._database_due():
                    return
                try:
                    applied = self._apply(group, skip_applied=True)
                except SQLAlchemyError as e:
                    if is_transient(e):
                        self._note_unreachable(e)
                        return
                    applied = self._replay_one_by_one(group, e)
                replayed += applied
                self._count("replayed", applied)
            self._spool.remove(segment)
        self._note_reachable()
        if replayed:
            logger.info("replayed %d spooled items into the database", replayed)

    def _replay_one_by_one(self, group: list[SpoolRecord], error: SQLAlchemyError) -> int:
        logger.error("the database refused spooled records (%s); retrying one by one", error)
        applied = 0
        for record in group:
            try:
                applied += self._apply([record], skip_applied=True)
            except SQLAlchemyError as e:
                if is_transient(e):
                    raise
                for item in record.items:
                    self._reject(item, str(e))
        return applied

    def _spool_batch(self, batch: list[WriterItem]) -> None:
        if batch:
            self._spool_record(SpoolRecord(uuid.uuid4().hex, [encode_item(i) for i in batch]))

    def _spool_record(self, record: SpoolRecord) -> None:
        try:
            self._spool.append(record.id, record.items, sync=True)
        except OSError as e:
            self._count("dropped", len(record.items))
            logger.error(
                "cannot write %d items to the spool in %s (%s): they are lost; free space there "
                "or fix its permissions",
                len(record.items),
                self._spool.directory,
                e,
            )
            return
        self._count("spooled", len(record.items))

    def _reject(self, item: dict[str, Any], reason: str) -> None:
        self._count("rejected")
        try:
            self._spool.append_rejected(item, reason)
        except OSError as e:
            logger.error("cannot keep a rejected item in %s: %s", self._spool.directory, e)
        self._log_rate_limited(
            "reject", logging.ERROR, "the database refused a %s item (%s); kept in %s",
            item.get("t"), reason, self._spool.rejected_path,
        )  # fmt: skip

    def _note_unreachable(self, error: SQLAlchemyError) -> None:
        now = time.monotonic()
        reason = describe_error(error)
        with self._stats_lock:
            self._last_error = reason
        if self._down_since is None:
            self._down_since = now
            self._retry_delay_s = self._retry_initial_s
        else:
            self._retry_delay_s = min(self._retry_delay_s * 2, self._retry_max_s)
        self._retry_at = now + self._retry_delay_s
        url = display_url(self._engine.url) if self._engine is not None else "?"
        logger.warning(
            "database %s unreachable for %.0fs (%s): writes go to the spool in %s (%d bytes); "
            "retrying in %.0fs. Check that the database server is running and reachable.",
            url, now - self._down_since, reason, self._spool.directory,
            self._spool.size_bytes(), self._retry_delay_s,
        )  # fmt: skip

    def _note_reachable(self) -> None:
        if self._down_since is not None:
            logger.info(
                "database reachable again after %.0fs", time.monotonic() - self._down_since
            )
            self._down_since = None
        self._retry_delay_s = self._retry_initial_s
        self._retry_at = 0.0

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self._counts[name] += n

    def _log_rate_limited(self, kind: str, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(kind, -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
            self._last_logged[kind] = now
            logger.log(level, message, *args)


def is_transient(error: SQLAlchemyError) -> bool:
    """Whether ``error`` means "the database is away" (spool and retry) rather than "refused"."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def describe_error(error: SQLAlchemyError) -> str:
    """One line naming the driver error, without SQL or parameters (they may hold identities)."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line}"
