"""A durable, append-only disk spool for writes the database could not take (yet).

The spool is a directory of JSON-lines segment files, ``segment-000000000001.jsonl``, ... .
Each line is one record: ``{"v": 1, "id": "<hex>", "n": 2, "items": [...]}``, where ``id`` is
the writer's batch id (recorded in ``applied_batches`` when applied, so a record is applied once
even if it is replayed twice) and each item is a dict tagged with its type and version by the
writer. The spool knows nothing of those types. ``n`` (the number of items) comes before them,
so that a damaged line (a crash mid-write) still says how many items it held: they are counted
as lost, not the line.

A write that fails (the disk is full) is cut back off the file, so the segment never keeps a
torn line from it, and raises ``OSError``: the caller counts those items as lost.

Reading never happens on a segment that is still being appended to: ``sealed_segments()``
closes the active segment first, so a replay reads whole files in order and deletes each only
after the records in it were committed. A lock file keeps two processes off one spool.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SPOOL_FORMAT_VERSION = 1
SEGMENT_MAX_BYTES = 16 * 1024 * 1024
"""Start a new segment file when the active one passes this size."""
SEGMENT_GLOB = "segment-*.jsonl"


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One spooled batch: its id and its items (JSON objects, still to be decoded)."""

    id: str
    items: list[dict[str, Any]]


class SpoolLockedError(RuntimeError):
    """Another process holds this spool directory."""


class Spool:
    """Append records, then read them back oldest first; thread-safe within one process."""

    def __init__(self, directory: Path, *, segment_max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self.directory = directory
        self._segment_max_bytes = segment_max_bytes
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = (directory / "spool.lock").open("a")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            self._lock_file.close()
            raise SpoolLockedError(
                f"{directory}: the spool is in use by another Hall Monitor process"
            ) from e
        existing = self._segment_paths()
        self._next_seq = (_segment_seq(existing[-1]) + 1) if existing else 1
        self._pending_bytes = sum(path.stat().st_size for path in existing)
        self._active: int | None = None
        """The active segment's file descriptor."""
        self._active_size = 0

    def append(self, record_id: str, items: list[dict[str, Any]], *, sync: bool = True) -> None:
        """Append one record; with ``sync`` the segment is fsynced before returning.

        Raises ``OSError`` when the spool cannot be written (disk full, read-only); the
        segment is left as it was before.
        """
        line = json.dumps(
            {"v": SPOOL_FORMAT_VERSION, "id": record_id, "n": len(items), "items": items},
            separators=(",", ":"),
        )
        data = (line + "\n").encode("utf-8")
        with self._lock:
            fd = self._open_active()
            try:
                _write_all(fd, data)
                if sync:
                    os.fsync(fd)
            except OSError:
                self._cut_back(fd)
                raise
            self._active_size += len(data)
            self._pending_bytes += len(data)
            if self._active_size >= self._segment_max_bytes:
                self._close_active()

    def sync(self) -> None:
        """Fsync the active segment (records appended with ``sync=False``)."""
        with self._lock:
            if self._active is not None:
                os.fsync(self._active)

    def has_pending(self) -> bool:
        return self._pending_bytes > 0

    def size_bytes(self) -> int:
        """Bytes waiting in the spool, for the health line."""
        return self._pending_bytes

    def sealed_segments(self) -> list[Path]:
        """Close the active segment and return every segment, oldest first."""
        with self._lock:
            self._close_active()
            return self._segment_paths()

    def read(self, segment: Path) -> tuple[list[SpoolRecord], int]:
        """The records of a sealed segment, and how many items the unreadable lines held.

        A torn last line (a crash mid-write) and any corrupt line are skipped and logged; each
        counts as the ``n`` items it says it held (1 when even that cannot be read).
        """
        records: list[SpoolRecord] = []
        lost = 0
        with segment.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    records.append(_parse_line(line))
                except ValueError as e:
                    held = _items_held(line)
                    lost += held
                    logger.error(
                        "%s line %d: unreadable spool record skipped (%d items lost): %s",
                        segment, number, held, e,
                    )  # fmt: skip
        return records, lost

    def remove(self, segment: Path) -> None:
        """Delete a segment whose records are all committed."""
        with self._lock:
            size = segment.stat().st_size
            segment.unlink()
            self._pending_bytes = max(0, self._pending_bytes - size)

    @property
    def rejected_path(self) -> Path:
        """Where items the database refused are kept, one JSON line each, for a person to look at."""
        return self.directory / "rejected.jsonl"

    def append_rejected(self, item: dict[str, Any], reason: str) -> None:
        """Keep an item the database refused (not a connection problem), with the reason."""
        line = json.dumps({"reason": reason, "item": item}, separators=(",", ":")) + "\n"
        with self._lock, self.rejected_path.open("a", encoding="utf-8") as rejected:
            rejected.write(line)
            rejected.flush()
            os.fsync(rejected.fileno())

    def close(self) -> None:
        with self._lock:
            self._close_active()
        self._lock_file.close()

    def _open_active(self) -> int:
        if self._active is None:
            path = self.directory / f"segment-{self._next_seq:012d}.jsonl"
            self._next_seq += 1
            self._active = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._active_size = 0
            _fsync_directory(self.directory)
        return self._active

    def _close_active(self) -> None:
        if self._active is not None:
            try:
                os.fsync(self._active)
            finally:
                os.close(self._active)
                self._active = None

    def _cut_back(self, fd: int) -> None:
        """Remove what a failed write left of its line; if even that fails, start a new
        segment (a torn line there is skipped and counted when it is read)."""
        try:
            os.ftruncate(fd, self._active_size)
        except OSError:
            os.close(fd)
            self._active = None

    def _segment_paths(self) -> list[Path]:
        return sorted(self.directory.glob(SEGMENT_GLOB), key=_segment_seq)


def _segment_seq(path: Path) -> int:
    return int(path.stem.removeprefix("segment-"))


def _parse_line(line: str) -> SpoolRecord:
    if not line.endswith("\n"):
        raise ValueError("incomplete line (torn write)")
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from e
    if not isinstance(raw, dict) or raw.get("v") != SPOOL_FORMAT_VERSION:
        raise ValueError(f"not a version {SPOOL_FORMAT_VERSION} spool record")
    record_id, items = raw.get("id"), raw.get("items")
    if not isinstance(record_id, str) or not isinstance(items, list):
        raise ValueError("record without an id or items")
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("an item is not a JSON object")
    return SpoolRecord(record_id, items)


_ITEMS_HELD = re.compile(r'^\{"v":\d+,"id":"[^"]*","n":(\d+),')


def _items_held(line: str) -> int:
    """How many items an unreadable line held, by its ``n``; at least 1."""
    found = _ITEMS_HELD.match(line)
    return max(1, int(found.group(1))) if found else 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
