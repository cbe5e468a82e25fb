"""``/metrics``: Prometheus metrics of the review app and of its database.

The answer is prometheus_client's default registry (the process; in ``hallmonitor up`` also
the capture daemon, which registers there) followed by figures read from the database at each
scrape: incidents by site and review status, each site's frames counted today and whether its
sensor went quiet (``api/capture_watch``), when each kind of report was last sent, failed
report sends, and whether the schema is at this version's head. Only counts, times, sites and
statuses: never an address, MAC, host name, person or email address.

Access: with ``web.metrics_token`` set, a request must send ``Authorization: Bearer <token>``
(401 otherwise); without it ``/metrics`` is open like ``/healthz``, since it carries no
personal data. Keep it off the Internet at the reverse proxy either way (deploy/README.md).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.capture_watch import observe_sites
from api.deps import utcnow
from api.pages import NavLink
from api.pages.health import first_line, recent_report_failures
from monitor.config.settings import Settings
from monitor.store.db import current_revision, head_revision
from monitor.store.queries.health import incident_counts, last_sent_reports
from monitor.store.workflow import ReviewStatus

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = ()


class DatabaseCollector(Collector):
    """The app's figures from the database, read when collected."""

    def __init__(self, app: FastAPI, engine: Engine, now: datetime) -> None:
        self.app = app
        self.engine = engine
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "hallmonitor_database_up", "1 when the database answered this scrape's queries, else 0."
        )
        try:
            families = list(self._from_database())
        except Exception as e:  # the scrape still answers: say the database is away
            logger.warning("metrics: the database could not be read: %s", first_line(str(e)))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> Iterator[Metric]:
        head = GaugeMetricFamily(
            "hallmonitor_schema_at_head",
            "1 when the schema is at this version's migration head, else 0 (run "
            "`hallmonitor db upgrade`).",
        )
        at_head = current_revision(self.engine) == head_revision()
        head.add_metric([], 1 if at_head else 0)
        yield head
        if not at_head:
            return
        with Session(self.engine) as db:
            yield self._incidents(db)
            yield from self._capture(db)
            yield from self._reports(db)

    def _incidents(self, db: Session) -> Metric:
        family = GaugeMetricFamily(
            "hallmonitor_stored_incidents",
            "Incidents in the database, by site and review status (new, in_review, closed).",
            labels=["site", "status"],
        )
        counts = incident_counts(db)
        for site in sorted({site for site, _ in counts}):
            for known in ReviewStatus:  # 0 included, so that a status that empties still shows
                counts.setdefault((site, known.value), 0)
        for (site, status), count in sorted(counts.items()):
            family.add_metric([site, status], count)
        return family

    def _capture(self, db: Session) -> Iterator[Metric]:
        frames = GaugeMetricFamily(
            "hallmonitor_capture_frames_today",
            "Frames the site's sensor counted on its latest day (the daily counters).",
            labels=["site"],
        )
        unchanged = GaugeMetricFamily(
            "hallmonitor_capture_unchanged_seconds",
            "How long the site's frame count has not moved, as this app saw it.",
            labels=["site"],
        )
        stale = GaugeMetricFamily(
            "hallmonitor_capture_stale",
            "1 when the site's frame count has not moved for ten minutes, else 0.",
            labels=["site"],
        )
        for site in observe_sites(self.app, db, self.now):
            frames.add_metric([site.site], site.frames)
            unchanged.add_metric([site.site], site.unchanged_for.total_seconds())
            stale.add_metric([site.site], 1 if site.stale else 0)
        yield from (frames, unchanged, stale)

    def _reports(self, db: Session) -> Iterator[Metric]:
        last_sent = GaugeMetricFamily(
            "hallmonitor_report_last_sent_timestamp_seconds",
            "When a report of this kind was last sent (seconds since the epoch).",
            labels=["kind"],
        )
        for kind, sent_at in sorted(last_sent_reports(db).items()):
            last_sent.add_metric([kind], sent_at.timestamp())
        yield last_sent
        failures = GaugeMetricFamily(
            "hallmonitor_report_failures",
            "Report sends that failed, with their latest attempt in the last 14 days.",
        )
        failures.add_metric([], recent_report_failures(db, self.now).count)
        yield failures


def _authorised(request: Request, settings: Settings) -> bool:
    token = settings.web.metrics_token.get_secret_value()
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # As bytes: compare_digest refuses non-ASCII str, and a hostile header may hold any byte.
    sent, expected = given.strip().encode("utf-8", "replace"), token.encode("utf-8")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, expected)


@router.get("/metrics", name="metrics")
def metrics(request: Request) -> Response:
    """The default registry's metrics, then the database's, in Prometheus text format."""
    settings: Settings = request.app.state.settings
    if not _authorised(request, settings):
        return PlainTextResponse(
            "Send the metrics token: Authorization: Bearer <web.metrics_token>\n",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(request.app, request.app.state.engine, utcnow()))
    body = generate_latest(REGISTRY) + generate_latest(database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
