"""The import ledger of ``scan --record``: which capture files a site has already recorded.

A file is known by the SHA-256 of its bytes, not its name: a copy or a renamed file is the same
capture, and a file that changed is a different one. Hashing reads the file once more (about as
long as the replay's own read; a small part of a replay's time).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from monitor.store.models import RecordedCaptureRecord

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
