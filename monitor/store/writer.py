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
and never once a reviewer has taken them into review (later hits go to a linked continuation;
see ``monitor.store.items``), counters add, device bindings keep the earliest first-seen and latest last-seen. Order is kept
except when the queue overflows, where spooled items may land before older queued ones; a replay
(``wait_when_full``) waits for room instead, so its numbered records stay in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from monitor.store.db import display_url
from monitor.store.items import WriterItem, apply_records, encode_item
from monitor.store.spool import Spool, SpoolRecord

__all__ = ["Writer", "WriterStats"]

logger = logging.getLogger(__name__)

WAKE_INTERVAL_S = 0.25
"""The writer thread wakes at least this often to retry, replay or notice a stop."""
SPOOL_SYNC_INTERVAL_S = 1.0
"""Items spooled by the capture thread (queue full) are fsynced at least this often."""
ERROR_LOG_INTERVAL_S = 60.0
"""Repeated errors of one kind (drops, queue overflow) are logged at most this often."""


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
    recovered: int
    """Spooled items found already committed when replayed: their commit went through but its
    acknowledgement was lost (the connection dropped), so they were spooled as well. Written
    once; counted here, not in ``written`` or ``replayed``."""
    dropped: int
    """Items lost: the spool was unwritable, or a spool line was unreadable."""
    rejected: int
    """Items the database refused (not a connection problem), kept in ``rejected.jsonl``."""
    spool_bytes: int
    """Bytes waiting in the spool now."""
    last_error: str | None
    drop_causes: dict[str, int] = field(default_factory=dict)
    """Why items were dropped: each cause, in words, with how many items it lost."""


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
        wait_when_full: bool = False,
    ) -> None:
        """``wait_when_full``: ``submit`` waits for room on a full queue instead of spooling,
        so the items keep their order (a replay, which has no packets to lose by waiting)."""
        self._engine_factory = engine_factory
        self._wait_when_full = wait_when_full
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
        self._counts = {
            "written": 0,
            "spooled": 0,
            "replayed": 0,
            "recovered": 0,
            "dropped": 0,
            "rejected": 0,
        }
        self._last_error: str | None = None
        self._drop_causes: Counter[str] = Counter()
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
        """Queue ``item`` for writing; never waits for the database (unless ``wait_when_full``)."""
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            pass
        while self._wait_when_full and self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(item, timeout=WAKE_INTERVAL_S)
                return
            except queue.Full:
                continue
        try:
            self._spool.append(uuid.uuid4().hex, [encode_item(item)], sync=False)
        except OSError as e:
            self._drop(1, e)
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
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "the database writer did not finish within %.0fs; %d items still queued",
                    timeout,
                    self._queue.qsize(),
                )
                return self.stats()
        # Not started, or the thread failed: keep what is still queued.
        self._spool_batch(self._take_batch(wait=False, limit=self._queue.qsize()))
        self._spool.close()
        stats = self.stats()
        logger.info(
            "writer stopped: %d written, %d replayed, %d recovered, %d spooled (%d bytes "
            "waiting), %d dropped, %d rejected",
            stats.written, stats.replayed, stats.recovered, stats.spooled, stats.spool_bytes,
            stats.dropped, stats.rejected,
        )  # fmt: skip
        return stats

    def stats(self) -> WriterStats:
        with self._stats_lock:
            return WriterStats(
                queued=self._queue.qsize(),
                spool_bytes=self._spool.size_bytes(),
                last_error=self._last_error,
                drop_causes=dict(self._drop_causes),
                **self._counts,
            )

    # --- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # a bug: say so once, loudly; stop() still spools the queue
            logger.exception("the database writer thread failed; queued items stay unwritten")
            with self._stats_lock:
                self._last_error = f"writer thread failed: {type(e).__name__}: {e}"
        finally:
            if self._engine is not None:
                self._engine.dispose()

    def _loop(self) -> None:
        last_try_done = False
        while True:
            if self._spool.has_pending() and self._database_due():
                self._replay_spool()
            stopping = self._stopping.is_set()
            batch = self._take_batch(wait=not stopping, limit=self._batch_size)
            if batch:
                self._handle(batch)
            elif stopping:
                if self._spool.has_pending() and not last_try_done:
                    # Stopping while waiting out a retry delay: one more replay now, whatever
                    # the backoff (the database may be back); if it fails, the spool waits for
                    # the next start.
                    last_try_done = True
                    self._retry_at = 0.0
                    continue
                break
            if time.monotonic() - self._last_sync >= SPOOL_SYNC_INTERVAL_S:
                self._spool.sync()
                self._last_sync = time.monotonic()

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
            written = self._apply([record], skip_applied=False)
        except SQLAlchemyError as e:
            if is_transient(e):
                self._note_unreachable(e)
                self._spool_record(record)
                return
            logger.error("the database refused a batch (%s); writing its items one by one",
                         describe_error(e))  # fmt: skip
            written, unreachable = self._apply_singly(record, spool_rest=True)
            if unreachable is not None:
                self._note_unreachable(unreachable)
                self._count("written", written)
                return
        self._count("written", written)
        self._note_reachable()

    def _apply(self, records: list[SpoolRecord], *, skip_applied: bool) -> int:
        if self._engine is None:
            raise RuntimeError("Writer.start() was not called")
        skipped: list[SpoolRecord] = []
        with self._engine.begin() as connection:
            applied, bad_items = apply_records(
                connection,
                records,
                now=datetime.now(UTC),
                skip_applied=skip_applied,
                skipped=skipped,
            )
        if skipped:
            self._count("recovered", sum(len(record.items) for record in skipped))
        for item, reason in bad_items:
            self._reject(item, reason)
        return applied

    def _apply_singly(
        self, record: SpoolRecord, *, spool_rest: bool
    ) -> tuple[int, SQLAlchemyError | None]:
        """Apply a refused record item by item, rejecting the items the database refuses.

        Item ``i`` gets the id ``<record id>.<i>``, so doing this again after a crash or an
        outage applies each item once. On a connection error it stops, spools the items not yet
        applied (with ``spool_rest``) and returns the error.
        """
        applied = 0
        for index, item in enumerate(record.items):
            single = SpoolRecord(f"{record.id}.{index}", [item])
            try:
                applied += self._apply([single], skip_applied=True)
            except SQLAlchemyError as e:
                if not is_transient(e):
                    self._reject(item, describe_error(e))
                    continue
                if spool_rest:
                    for rest, rest_item in enumerate(record.items[index:], start=index):
                        self._spool_record(SpoolRecord(f"{record.id}.{rest}", [rest_item]))
                return applied, e
        return applied, None

    def _replay_spool(self) -> None:
        replayed = 0
        for segment in self._spool.sealed_segments():
            records, unreadable = self._spool.read(segment)
            if unreadable:
                self._drop(unreadable, f"unreadable lines in the spool in {self._spool.directory}")
            for group in _groups(records, self._batch_size):
                if not self._database_due():
                    return
                applied, unreachable = self._replay_group(group)
                replayed += applied
                self._count("replayed", applied)
                if unreachable is not None:
                    self._note_unreachable(unreachable)
                    return
            self._spool.remove(segment)
        self._note_reachable()
        if replayed:
            logger.info("replayed %d spooled items into the database", replayed)

    def _replay_group(self, group: list[SpoolRecord]) -> tuple[int, SQLAlchemyError | None]:
        try:
            return self._apply(group, skip_applied=True), None
        except SQLAlchemyError as e:
            if is_transient(e):
                return 0, e
            logger.error("the database refused spooled records (%s); replaying one by one",
                         describe_error(e))  # fmt: skip
        applied = 0
        for record in group:
            try:
                applied += self._apply([record], skip_applied=True)
            except SQLAlchemyError as e:
                if is_transient(e):
                    return applied, e
                done, unreachable = self._apply_singly(record, spool_rest=False)
                applied += done
                if unreachable is not None:
                    return applied, unreachable
        return applied, None

    def _spool_batch(self, batch: list[WriterItem]) -> None:
        if batch:
            self._spool_record(SpoolRecord(uuid.uuid4().hex, [encode_item(i) for i in batch]))

    def _spool_record(self, record: SpoolRecord) -> None:
        try:
            self._spool.append(record.id, record.items, sync=True)
        except OSError as e:
            self._drop(len(record.items), e)
            return
        self._count("spooled", len(record.items))

    def _reject(self, item: dict[str, Any], reason: str) -> None:
        self._count("rejected")
        try:
            self._spool.append_rejected(item, reason)
        except OSError as e:
            self._log_rate_limited(
                "keep-rejected", logging.ERROR, "cannot keep a rejected item in %s: %s",
                self._spool.directory, e,
            )  # fmt: skip
        self._log_rate_limited(
            "reject", logging.ERROR, "the database refused an item of type %s (%s); kept in %s",
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
            logger.info("database reachable again after %.0fs", time.monotonic() - self._down_since)
            self._down_since = None
        self._retry_delay_s = self._retry_initial_s
        self._retry_at = 0.0

    def _drop(self, items: int, cause: OSError | str) -> None:
        """Count ``items`` as lost, by cause; the error is logged once a minute, not per batch
        (a full disk fails every batch)."""
        reason = spool_drop_cause(self._spool.directory, cause)
        with self._stats_lock:
            self._counts["dropped"] += items
            self._drop_causes[reason] += items
            total = self._counts["dropped"]
        self._log_rate_limited(
            "drop", logging.ERROR, "%d items dropped (%d so far): %s; free space there or fix "
            "its permissions", items, total, reason,
        )  # fmt: skip

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self._counts[name] += n

    def _log_rate_limited(self, kind: str, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(kind, -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
            self._last_logged[kind] = now
            logger.log(level, message, *args)


def _groups(records: list[SpoolRecord], batch_size: int) -> Iterator[list[SpoolRecord]]:
    """Consecutive records with about ``batch_size`` items together: one transaction each."""
    group: list[SpoolRecord] = []
    size = 0
    for record in records:
        group.append(record)
        size += len(record.items)
        if size >= batch_size:
            yield group
            group, size = [], 0
    if group:
        yield group


def spool_drop_cause(directory: Path, cause: OSError | str) -> str:
    """Why items were lost, in words: the spool's OS error (e.g. "No space left on device")."""
    if isinstance(cause, str):
        return cause
    return f"the spool in {directory} could not be written ({cause.strerror or cause})"


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
