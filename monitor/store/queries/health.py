"""What the review app's ``/healthz`` and ``/metrics`` read: counts, sites and times only.

Never an address, MAC, host name, person or email address: these figures may be shown to
anyone who can reach ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.models import DailyCounterRecord, IncidentRecord, SentReportRecord

FRAMES_COUNTER = "capture.frames"
"""The daily counter of frames the capture daemon read (per site and local day)."""
KERNEL_DROPS_COUNTER = "capture.kernel_drops"
"""The daily counter of packets the kernel dropped before the capture daemon read them."""
RECENT_DAYS = 2
"""Sites whose last counted day is older than yesterday are not watched (sensor retired)."""


@dataclass(frozen=True, slots=True)
class FrameTotal:
    """A site's ``capture.frames`` for its latest counted day."""

    day: date
    frames: int


def latest_frame_totals(db: Session, today: date) -> dict[str, FrameTotal]:
    """Each site's frames counted on its latest day, for sites counted today or yesterday."""
    table = DailyCounterRecord
    rows = db.execute(
        select(table.site, table.day, table.count).where(
            table.name == FRAMES_COUNTER, table.day > today - timedelta(days=RECENT_DAYS)
        )
    )
    totals: dict[str, FrameTotal] = {}
    for site, day, count in rows:
        known = totals.get(site)
        if known is None or day > known.day:
            totals[site] = FrameTotal(day, int(count))
    return totals


@dataclass(frozen=True, slots=True)
class CaptureDay:
    """What a site's capture daemon counted on one local day: frames read, kernel drops."""

    frames: int
    kernel_drops: int


def capture_day(db: Session, site: str, day: date) -> CaptureDay | None:
    """``site``'s capture figures for local day ``day``; None when its daemon counted none."""
    table = DailyCounterRecord
    rows = db.execute(
        select(table.name, table.count).where(
            table.site == site,
            table.day == day,
            table.name.in_((FRAMES_COUNTER, KERNEL_DROPS_COUNTER)),
        )
    )
    counts = {name: int(count) for name, count in rows}
    if not counts:
        return None
    return CaptureDay(counts.get(FRAMES_COUNTER, 0), counts.get(KERNEL_DROPS_COUNTER, 0))


def incident_counts(db: Session) -> dict[tuple[str, str], int]:
    """How many incidents each site has in each review status (``(site, status)``; a status
    with none is absent)."""
    table = IncidentRecord
    rows = db.execute(
        select(table.site, table.status, func.count()).group_by(table.site, table.status)
    )
    return {(site, status): int(count) for site, status, count in rows}


def last_sent_reports(db: Session) -> dict[str, datetime]:
    """When a report of each kind was last sent (kinds never sent are absent)."""
    table = SentReportRecord
    rows = db.execute(
        select(table.kind, func.max(table.sent_at))
        .where(table.status == "sent", table.sent_at.is_not(None))
        .group_by(table.kind)
    )
    return {kind: sent_at for kind, sent_at in rows if sent_at is not None}
