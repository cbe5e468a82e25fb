"""The erasure signal: what ``erase_device`` leaves for the capture and the writer.

An erasure deletes every row about a device in one transaction (``monitor.store.queries.
exports.erase_device``) and adds one ``erasures`` row per identity it removed (the MAC, the
addresses), named only by ``monitor.devices.identity_digest``. Two readers act on them:

- the running capture polls the table every ``POLL_INTERVAL_S`` (``ErasureWatch``) and hands
  new rows to ``Engine.forget``, which drops the device's open incidents and directory entries;
- the writer, in the transaction of every batch (``drop_erased``), drops items of an erased
  device dated at or before its erasure: those queued or spooled before the capture heard of it.

On PostgreSQL the erasure holds an exclusive transaction lock (``lock_for_erasure``) that every
batch takes shared (``lock_for_batch``), so a batch either commits before the erasure (whose
deletes then take its rows) or reads the erasure's rows; SQLite serialises writers already.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.devices import Erasure, ErasureSet
from monitor.store.models import ErasureRecord

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 5.0
"""How often the running capture looks for new erasures."""
LOCK_KEY = 0x48_4D_45_52  # "HMER"
"""The PostgreSQL advisory lock that orders erasures and the writer's batches."""

TIMES = {"incident": "start_at", "observation": "ts", "device": "ts", "embedded": "day"}
"""Per writer item type: the time the erasure is compared with."""
DEVICES = {
    "incident": ("device_mac", "device_ip"),
    "observation": ("client_mac", "client_ip"),
    "device": ("mac", "ip"),
    "embedded": ("device_mac", "device_ip"),
}
"""Per writer item type: the fields naming its device (MAC, address)."""


def erasure_of(record: ErasureRecord) -> Erasure:
    """The engine's view of one stored row."""
    return Erasure(record.digest, record.erased_at.timestamp(), record.every_device)


def read_erasures(
    db: Session | Connection, site: str | None, after_id: int = 0
) -> list[tuple[int, Erasure]]:
    """The erasures after ``after_id`` (of ``site``, or every site), oldest first, with ids."""
    query = select(ErasureRecord).where(ErasureRecord.id > after_id).order_by(ErasureRecord.id)
    if site is not None:
        query = query.where(ErasureRecord.site == site)
    session = db if isinstance(db, Session) else Session(bind=db)
    return [(record.id, erasure_of(record)) for record in session.scalars(query)]


def lock_for_erasure(db: Session) -> None:
    """Wait for the batches being written, and hold the next ones until this one commits."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def lock_for_batch(connection: Connection) -> None:
    """Wait for an erasure being made (see ``lock_for_erasure``)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": LOCK_KEY})


def drop_erased(connection: Connection, grouped: dict[str, list[dict[str, Any]]]) -> int:
    """Remove from ``grouped`` (item type -> decoded rows) what erased devices did up to their
    erasure; how many items were dropped. Call after the batch's first write (SQLite then holds
    the write lock) and after ``lock_for_batch``."""
    lock_for_batch(connection)
    rows = connection.execute(
        select(ErasureRecord.site, ErasureRecord.digest, ErasureRecord.erased_at, ErasureRecord.every_device)
    ).all()  # fmt: skip
    if not rows:
        return 0
    by_site: dict[str, ErasureSet] = {}
    for site, digest, erased_at, every_device in rows:
        at = _aware(erased_at).timestamp()
        by_site.setdefault(site, ErasureSet()).add([Erasure(digest, at, every_device)])
    dropped = 0
    for kind, (mac_field, ip_field) in DEVICES.items():
        kept = []
        for row in grouped.get(kind, []):
            erased = by_site.get(row["site"])
            if erased is not None and erased.erases(
                row[mac_field], row[ip_field], _ts(row[TIMES[kind]])
            ):
                dropped += 1
            else:
                kept.append(row)
        grouped[kind] = kept
    if dropped:
        logger.info("refused %d items of erased devices, dated before their erasure", dropped)
    return dropped


class ErasureWatch:
    """The capture's poll of the erasures of its site: new ones since the last poll."""

    def __init__(self, engine: Engine, site: str) -> None:
        self.engine = engine
        self.site = site
        self.last_id = 0

    def poll(self) -> list[Erasure]:
        """The erasures made since the last poll (every one at the first); none when the
        database cannot be read now (the next poll catches up)."""
        try:
            with self.engine.connect() as connection:
                found = read_erasures(connection, self.site, self.last_id)
        except SQLAlchemyError as e:
            logger.warning(
                "could not read erasures (will try again): %s",
                str(getattr(e, "orig", None) or e).splitlines()[0],
            )
            return []
        if found:
            self.last_id = found[-1][0]
        return [erasure for _, erasure in found]


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite through a plain Connection select: UtcDateTime applies
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ts(value: datetime | date) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.combine(value, time.min, UTC).timestamp()
