"""``/healthz``: whether the review app can serve, for monitoring and the reverse proxy.

No login for the answer monitoring needs: ``{"ready": true}`` with HTTP 200 when the database
answers at this version's migration head, ``{"ready": false}`` with 503 when not. Nothing else
goes to a visitor who is not a signed-in admin (site names and a mail server's error are the
trust's business). A signed-in admin also gets ``checks``: the database, the schema, how many
weekly summaries could not be sent in the last ``REPORT_WINDOW`` with the first line of the
latest error, and the capture; an admin limited to one school sees that school's reports and
sensor only. Recipient addresses are never shown (``last_failures`` includes them: only the
count leaves this module). A report failure does not make the app unready: the pages still
work, and the dashboard says what to do.

``checks.capture`` says whether each sensor's frame count still moves (``api/capture_watch``):
a sensor silent for ten minutes, or no sensor counted today or yesterday, is a warning
(``ok: false``), not unreadiness: the review app serves its pages whatever the sensor does, and
the capture daemon is watched on its own (``hallmonitor_capture_up``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.capture_watch import STALE_AFTER, SiteCapture, observe_sites
from api.deps import CurrentUser, get_visitor, utcnow
from api.pages import NavLink
from monitor.reports.sending import ReportFailure, last_failures
from monitor.store.db import current_revision, head_revision, ping
from monitor.store.workflow import UserRole

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = ()

REPORT_WINDOW = timedelta(days=14)
"""Report failures older than this no longer count (the scheduler gives up after two weeks)."""
FAILURE_LIMIT = 500
"""At most this many recent failures are read."""


@dataclass(frozen=True, slots=True)
class Check:
    """One check: ``ok`` and a line saying what was found (never an address)."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ReportFailureSummary:
    """Failed weekly summaries in a window, without any recipient."""

    count: int
    """Failed sends (one per recipient and week) whose latest attempt is in the window."""
    recipients: int
    """How many different recipients those sends were for."""
    since: datetime | None
    """The earliest of those attempts (UTC)."""
    last_error: str
    """The first line of the latest error ("" when none)."""


ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
"""An email address inside an error message (an SMTP refusal often quotes the recipient)."""


def first_line(error: str) -> str:
    """The first line of an error message, stripped, with any email address hidden."""
    lines = error.strip().splitlines()
    return ADDRESS.sub("(address hidden)", lines[0].strip()) if lines else ""


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def summarise_failures(
    failures: list[ReportFailure], now: datetime, window: timedelta = REPORT_WINDOW
) -> ReportFailureSummary:
    """Count the failures (latest first, as ``last_failures`` gives them) attempted within
    ``window`` before ``now``; addresses are dropped here."""
    recent = [
        f
        for f in failures
        if f.last_attempt_at is not None and _as_utc(f.last_attempt_at) >= now - window
    ]
    if not recent:
        return ReportFailureSummary(0, 0, None, "")
    since = min(_as_utc(f.last_attempt_at) for f in recent if f.last_attempt_at is not None)
    recipients = len({f.recipient.strip().lower() for f in recent})
    return ReportFailureSummary(len(recent), recipients, since, first_line(recent[0].last_error))


def recent_report_failures(
    db: Session, now: datetime, site: str | None = None
) -> ReportFailureSummary:
    """The failed weekly summaries of the last ``REPORT_WINDOW`` (of one school's reports, or
    of every school's)."""
    return summarise_failures(last_failures(db, limit=FAILURE_LIMIT, site=site), now)


def _check_database(engine: Engine) -> Check:
    try:
        ping(engine)
    except Exception as e:
        logger.warning("health check: the database does not answer: %s", first_line(str(e)))
        return Check(False, f"the database does not answer: {type(e).__name__}")
    return Check(True, "the database answers")


def _check_schema(engine: Engine) -> Check:
    try:
        current = current_revision(engine)
    except Exception as e:
        return Check(False, f"the schema revision could not be read: {type(e).__name__}")
    head = head_revision()
    if current != head:
        shown = current or "none (empty database)"
        return Check(False, f"schema at {shown}, needs {head}: run `hallmonitor db upgrade`")
    return Check(True, f"schema at head {head}")


def _check_reports(engine: Engine, now: datetime, site: str | None) -> dict[str, object]:
    try:
        with Session(engine) as db:
            summary = recent_report_failures(db, now, site)
    except Exception as e:
        detail = f"report records could not be read: {type(e).__name__}"
        return {"ok": False, "detail": detail, "failures": None, "last_error": None}
    if summary.count == 0:
        detail = "no failed report sends in the last 14 days"
    else:
        detail = f"{summary.count} failed report send(s) in the last 14 days"
    return {
        "ok": summary.count == 0,
        "detail": detail,
        "failures": summary.count,
        "last_error": summary.last_error or None,
    }


def describe_capture(sites: tuple[SiteCapture, ...]) -> dict[str, object]:
    """The capture warning: which sites count frames, which went quiet."""
    listed = [
        {
            "site": site.site,
            "day": site.day.isoformat(),
            "frames": site.frames,
            "unchanged_minutes": int(site.unchanged_for.total_seconds() // 60),
            "stale": site.stale,
        }
        for site in sites
    ]
    if not sites:
        detail = (
            "no frames counted today or yesterday: start `hallmonitor capture` and check that "
            "the sensor sees the LAN's traffic"
        )
        return {"ok": False, "detail": detail, "sites": listed}
    stale = [site.site for site in sites if site.stale]
    if stale:
        minutes = int(STALE_AFTER.total_seconds() // 60)
        detail = (
            f"no new frames for {minutes} minutes or more from {', '.join(stale)}: check that "
            "`hallmonitor capture` runs there, reaches the database and sees traffic"
        )
        return {"ok": False, "detail": detail, "sites": listed}
    counting = ", ".join(site.site for site in sites)
    return {"ok": True, "detail": f"frames counted by {counting}", "sites": listed}


def _check_capture(
    request: Request, engine: Engine, now: datetime, site: str | None
) -> dict[str, object]:
    try:
        with Session(engine) as db:
            sites = observe_sites(request.app, db, now)
    except Exception as e:
        detail = f"capture counters could not be read: {type(e).__name__}"
        return {"ok": False, "detail": detail, "sites": []}
    return describe_capture(tuple(s for s in sites if site is None or s.site == site))


def details_viewer(request: Request) -> CurrentUser | None:
    """The signed-in admin who may read the checks, or None (anyone else gets up or down).

    A session whose lookup fails (the database is down) counts as nobody: readiness must
    still answer."""
    try:
        user = get_visitor(request).user
    except Exception:
        return None
    if user is None or user.role is not UserRole.ADMIN or user.must_change_password:
        return None
    return user


@router.get("/healthz", name="healthz")
def healthz(request: Request) -> Response:
    """Readiness as JSON: ``{"ready": ...}``, 200 when the database answers at the schema head,
    else 503. A signed-in admin also gets ``checks`` (their school's, when limited to one):
    ``checks.reports`` has ``failures`` (a count) and ``last_error`` (its first line);
    ``checks.capture`` has ``sites`` (site, day, frames, unchanged_minutes, stale)."""
    engine: Engine = request.app.state.engine
    now = utcnow()
    database = _check_database(engine)
    schema = _check_schema(engine) if database.ok else Check(False, "not checked: no database")
    ready = database.ok and schema.ok
    viewer = details_viewer(request)
    if viewer is None:
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)
    reports = (
        _check_reports(engine, now, viewer.site)
        if schema.ok
        else {"ok": False, "detail": "not checked: no schema", "failures": None, "last_error": None}
    )
    capture = (
        _check_capture(request, engine, now, viewer.site)
        if schema.ok
        else {"ok": False, "detail": "not checked: no schema", "sites": []}
    )
    checks = {
        "database": asdict(database),
        "schema": asdict(schema),
        "reports": reports,
        "capture": capture,
    }
    body = {"ready": ready, "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
