"""Retention: delete what the school's policy says is kept no longer.

Per record type (defaults in the settings: observations 30 days, incidents 1 year, false
positives 30 days):

- matched observations older than ``observations_days`` (by their time);
- closed incidents that ended more than ``incidents_days`` ago (open ones are never deleted);
- incidents a reviewer marked ``false_positive`` that ended more than ``false_positive_days`` ago;
- daily counters and embedded counts for days older than ``incidents_days``;
- ``applied_batches`` ids older than ``APPLIED_BATCHES_KEEP_DAYS`` (only spool replays need them).

``hallmonitor purge`` and the daemon's daily purge both call ``run_purge``.

A trust's sensors share one database, each with its own configuration: a sensor purges only its
own site (``site``), so that one school's shorter retention never deletes another school's
records, and two sensors purging at once never touch the same rows. ``site=None`` purges every
site (``hallmonitor purge`` by the trust's administrator).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, Delete, Engine, delete
from sqlalchemy.orm import Session

from monitor.store.db import display_url, ensure_schema_current, make_engine
from monitor.store.models import (
    AppliedBatchRecord,
    DailyCounterRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.queries.scope import site_condition

logger = logging.getLogger(__name__)

FALSE_POSITIVE = "false_positive"
"""The review outcome that retention keeps for ``false_positive_days`` only."""
APPLIED_BATCHES_KEEP_DAYS = 30
"""A spool older than this is not expected; its batch ids are forgotten after it."""


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many rows of each kind a purge deleted."""

    observations: int
    incidents: int
    false_positives: int
    daily_counters: int
    embedded_counts: int
    applied_batches: int

    def summary(self) -> str:
        return (
            f"purged {self.observations} observations, {self.incidents} incidents, "
            f"{self.false_positives} false positives, {self.daily_counters} daily counters, "
            f"{self.embedded_counts} embedded counts"
        )

    def __str__(self) -> str:
        return self.summary()


def purge(
    db: Session | Engine,
    now: datetime,
    *,
    observations_days: int,
    incidents_days: int,
    false_positive_days: int,
    site: str | None = None,
) -> PurgeResult:
    """Delete expired rows of ``site`` (None: every site): in a session's transaction (the
    caller commits), or, given an engine, in one transaction of its own committed here."""
    if isinstance(db, Engine):
        with Session(db) as session, session.begin():
            return purge(
                session,
                now,
                observations_days=observations_days,
                incidents_days=incidents_days,
                false_positive_days=false_positive_days,
                site=site,
            )
    if now.tzinfo is None:
        raise ValueError("purge needs a timezone-aware `now`")
    for name, days in (
        ("observations_days", observations_days),
        ("incidents_days", incidents_days),
        ("false_positive_days", false_positive_days),
    ):
        if days < 1:
            raise ValueError(f"{name} is {days}: retention must be at least 1 day")
    incidents_cutoff = now - timedelta(days=incidents_days)
    false_positive_cutoff = now - timedelta(days=false_positive_days)
    return PurgeResult(
        observations=_delete(
            db,
            delete(ObservationRecord).where(
                ObservationRecord.ts < now - timedelta(days=observations_days),
                site_condition(ObservationRecord.site, site),
            ),
        ),
        false_positives=_delete(
            db,
            delete(IncidentRecord).where(
                IncidentRecord.outcome == FALSE_POSITIVE,
                IncidentRecord.end_at < false_positive_cutoff,
                site_condition(IncidentRecord.site, site),
            ),
        ),
        incidents=_delete(
            db,
            delete(IncidentRecord).where(
                IncidentRecord.state == "closed",
                IncidentRecord.end_at < incidents_cutoff,
                site_condition(IncidentRecord.site, site),
            ),
        ),
        daily_counters=_delete(
            db,
            delete(DailyCounterRecord).where(
                DailyCounterRecord.day < incidents_cutoff.date(),
                site_condition(DailyCounterRecord.site, site),
            ),
        ),
        embedded_counts=_delete(
            db,
            delete(EmbeddedCountRecord).where(
                EmbeddedCountRecord.day < incidents_cutoff.date(),
                site_condition(EmbeddedCountRecord.site, site),
            ),
        ),
        applied_batches=_delete(
            db,
            delete(AppliedBatchRecord).where(
                AppliedBatchRecord.applied_at < now - timedelta(days=APPLIED_BATCHES_KEEP_DAYS)
            ),
        ),
    )


def _delete(db: Session, statement: Delete) -> int:
    result = db.execute(statement)
    return result.rowcount if isinstance(result, CursorResult) else 0


def run_purge(
    url: str,
    now: datetime,
    *,
    observations_days: int,
    incidents_days: int,
    false_positive_days: int,
    site: str | None,
) -> str:
    """``hallmonitor purge``: check the schema, purge ``site``'s expired rows (None: every
    site's) in one transaction, return a summary line.

    Raises ``SchemaNotCurrent`` when the database is not at this version's schema.
    """
    engine = make_engine(url)
    try:
        ensure_schema_current(engine)
        result = purge(
            engine,
            now,
            observations_days=observations_days,
            incidents_days=incidents_days,
            false_positive_days=false_positive_days,
            site=site,
        )
    finally:
        engine.dispose()
    scope = "every site" if site is None else f"site {site!r}"
    line = f"{display_url(url)} ({scope}): {result.summary()}"
    logger.info("%s", line)
    return line
