"""``/api/v1/stats``: figures over a period of the school's local days.

``incidents`` and ``capture`` are for reviewers and admins (the dashboard's figures).
``governors`` is the governors' view and is built from ``governor_summary`` only, whose types
have no device, address, host name or label: nothing else may feed it. Periods default to the
last seven local days, today included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.deps import SessionDep, SettingsDep
from api.routes import AnyRole, DateFrom, DateTo, Reviewer, api_router, local_period, school_zone
from api.schemas import CaptureHealthOut, GovernorSummaryOut, IncidentStatsOut
from monitor.store.queries import capture_health, governor_summary, incident_stats
from monitor.store.queries.weeks import local_day_range

router = api_router("stats")


@router.get("/incidents", summary="Incident figures for a period")
def stats_incidents(
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> IncidentStatsOut:
    """Incidents that started in the period by platform, segment, role and day, the open
    items, and the period of the same length before. As on the dashboard, incidents below the
    confidence floor (``incidents.floor_connections``, ``floor_minutes``) are left out and counted in
    ``low_confidence``."""
    zone = school_zone(settings)
    first, last = local_period(date_from, date_to, zone, datetime.now(UTC))
    start, end = local_day_range(first, last, zone)
    floor = settings.incidents.floor()
    return IncidentStatsOut.model_validate(incident_stats(db, start, end, zone, user.site, floor))


@router.get("/capture", summary="Capture health for a period")
def stats_capture(
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> CaptureHealthOut:
    """What the sensors counted per day and protocol (a day without data on a school day
    means the sensor saw nothing), and why matches were not flagged."""
    first, last = local_period(date_from, date_to, school_zone(settings), datetime.now(UTC))
    health = capture_health(db, first, last + timedelta(days=1), user.site)
    return CaptureHealthOut.model_validate(health)


@router.get("/governors", summary="The governors' aggregate figures for a period")
def stats_governors(
    user: AnyRole,
    db: SessionDep,
    settings: SettingsDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> GovernorSummaryOut:
    """Totals by platform, segment role and review outcome, the weekly trend, checks run and
    list changes: aggregates only, never a device, address, host name or label."""
    zone = school_zone(settings)
    first, last = local_period(date_from, date_to, zone, datetime.now(UTC))
    start, end = local_day_range(first, last, zone)
    return GovernorSummaryOut.model_validate(governor_summary(db, start, end, zone, user.site))
