"""The import ledger of ``scan --record``: which capture files a site has recorded, how far.

A file recorded completely is in ``recorded_captures``; a file being recorded has a position in
``replay_positions`` (see ``NumberedSink``), so a replay killed part way is carried on exactly.

A file is known by the SHA-256 of its bytes, not its name: a copy or a renamed file is the same
capture, and a file that changed is a different one. Hashing reads the file once more (about as
long as the replay's own read; a small part of a replay's time).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from monitor.store.items import Positioned, WriterItem
from monitor.store.models import RecordedCaptureRecord, ReplayPositionRecord
from monitor.values import Incident

CHUNK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """When and under which name a capture file was recorded, with how many frames."""

    file_name: str
    frames: int
    recorded_at: datetime


def recorded_capture(engine: Engine, site: str, sha256: str) -> LedgerEntry | None:
    """The ledger's entry for the file with ``sha256`` at ``site``, or None if not recorded."""
    table = RecordedCaptureRecord
    with engine.connect() as connection:
        row = connection.execute(
            select(table.file_name, table.frames, table.recorded_at).where(
                table.site == site, table.sha256 == sha256
            )
        ).first()
    return LedgerEntry(*row) if row is not None else None


def files_digest(sha256s: Iterable[str]) -> str:
    """One digest of the files (by their SHA-256) a replay read, in order; empty for none."""
    names = list(sha256s)
    return hashlib.sha256("\n".join(names).encode()).hexdigest() if names else ""


@dataclass(frozen=True, slots=True)
class ReplayPosition:
    """How far an earlier replay stored a file's records, and the files it had read before."""

    after: str
    position: int


def replay_positions(
    engine: Engine, site: str, sha256s: Iterable[str]
) -> dict[str, ReplayPosition]:
    """The stored replay position of each of ``sha256s`` at ``site`` that has one."""
    table = ReplayPositionRecord
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.sha256, table.after, table.position).where(
                table.site == site, table.sha256.in_(list(sha256s))
            )
        )
        return {sha256: ReplayPosition(after, position) for sha256, after, position in rows}


class NumberedSink:
    """Numbers the records a replay makes of each file; hands on only those not yet stored.

    The bank ledger of ``scan --record``, so that a replay killed part way and run again stores
    exactly what one clean run stores:

    - A replay reads its files in order through one engine, and makes the same records, in the
      same order, every time it reads the same files with the same lists and configuration (the
      engine has no clock but the capture's). So "record 1,234 of this file" names the same
      record in every run.
    - Each record goes to the writer numbered (``Positioned``); the writer keeps a replay's
      records in order, and the transaction that stores record n moves the file's position
      (``replay_positions``) to n. A record at or below the position is not stored again, in
      that same transaction, so even records a killed run left in the spool are stored once.
    - A run that is run again reads every file again from its start, to rebuild the engine's
      state (open incidents, addresses learnt from DNS answers), and hands on only the records
      past the stored position. Files already recorded completely are read without storing
      anything when a file after them is still to be recorded, else skipped.

    A run that stops part way (an exception, Ctrl-C) makes records no clean run makes: the open
    incidents are closed early and the counters flushed early. Of those only the closed incidents
    are stored, unnumbered (a later run's snapshots of them move them on, as the store's upserts
    do for any incident); the counters are not, as running the replay again makes them.
    """

    def __init__(self, submit: Callable[[WriterItem], None]) -> None:
        self._submit = submit
        self._file: tuple[str, str] | None = None
        self._stored = 0
        self._number = 0
        self.handed_on = 0
        """Records handed to the writer (numbered or not)."""

    def start_file(self, sha256: str, after: str, stored: int | None) -> None:
        """Number the next records as those of ``sha256``; ``stored`` None: all are stored."""
        self._file = (sha256, after)
        self._stored = stored if stored is not None else sys.maxsize
        self._number = 0

    def stop_numbering(self) -> None:
        """The run stopped part way: what follows is not a record a clean run makes."""
        self._file = None

    def __call__(self, item: WriterItem) -> None:
        if self._file is None:
            if isinstance(item, Incident):
                self._hand_on(item)
            return
        assert not isinstance(item, Positioned), "the engine's records are not numbered yet"
        self._number += 1
        if self._number > self._stored:
            sha256, after = self._file
            self._hand_on(Positioned(item, sha256, after, self._number))

    def _hand_on(self, item: WriterItem) -> None:
        self.handed_on += 1
        self._submit(item)
