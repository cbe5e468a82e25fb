"""Whether each sensor is still counting frames, as the web app can tell from the database.

The capture daemon adds the frames it read to the anonymous daily counter ``capture.frames``
(per site and local day) about once a minute. Those rows carry no time, so the web app
remembers when it first saw each site's current total; a total that has not moved for
``STALE_AFTER`` means the sensor stopped, cannot reach the database, or sees no traffic at
all. ``/healthz`` reports it as a warning (``checks.capture``) and ``/metrics`` as
``hallmonitor_capture_stale``. The app learns only when it looks: a total is "unchanged" since
the first ``/healthz`` or ``/metrics`` request that saw it, so the first answer after a start
is never stale.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy.orm import Session

from monitor.config.settings import Settings
from monitor.store.queries.health import FrameTotal, latest_frame_totals

STALE_AFTER = timedelta(minutes=10)
"""The daemon's counters reach the database every 30 s (COUNTS_INTERVAL_S); ten quiet minutes
is news."""


@dataclass(frozen=True, slots=True)
class SiteCapture:
    """What the watch knows about one site's sensor now."""

    site: str
    day: date
    frames: int
    unchanged_for: timedelta
    """How long this total has been seen without moving."""
    stale: bool


class CaptureWatch:
    """Remembers when each site's total last moved. Safe to share between request threads."""

    def __init__(self, stale_after: timedelta = STALE_AFTER) -> None:
        self.stale_after = stale_after
        self._seen: dict[str, tuple[FrameTotal, datetime]] = {}
        self._lock = threading.Lock()

    def observe(self, totals: Mapping[str, FrameTotal], now: datetime) -> tuple[SiteCapture, ...]:
        """Note ``totals`` as seen at ``now``; each site's state, in site order."""
        found = []
        with self._lock:
            for site in sorted(totals):
                total = totals[site]
                seen = self._seen.get(site)
                if seen is None or seen[0] != total:
                    seen = (total, now)
                    self._seen[site] = seen
                unchanged = max(now - seen[1], timedelta(0))
                found.append(
                    SiteCapture(
                        site, total.day, total.frames, unchanged, unchanged >= self.stale_after
                    )
                )
        return tuple(found)


_WATCH_LOCK = threading.Lock()


def watch_of(app: FastAPI) -> CaptureWatch:
    """The app's watch (made on first use, kept on ``app.state.capture_watch``)."""
    with _WATCH_LOCK:
        watch: CaptureWatch | None = getattr(app.state, "capture_watch", None)
        if watch is None:
            watch = CaptureWatch()
            app.state.capture_watch = watch
        return watch


def observe_sites(app: FastAPI, db: Session, now: datetime) -> tuple[SiteCapture, ...]:
    """Read the sites' frame totals (days by the school's time zone) and note them."""
    settings: Settings = app.state.settings
    today = now.astimezone(ZoneInfo(settings.calendar.timezone)).date()
    return watch_of(app).observe(latest_frame_totals(db, today), now)
