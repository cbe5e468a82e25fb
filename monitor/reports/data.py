"""What the reports read: a thin composition of ``monitor.store.queries``, as frozen values.

The weekly summary and the governors' report show the figures the review app's dashboard shows,
from the same queries and in the same types (``IncidentStats``, ``DeviceActivity``,
``IncidentSummary``, ``CaptureHealth``, ``GovernorSummary``), so an email, the printed report
and the pages cannot disagree. What is added here is only what a report needs on top: which
days of the period are school days, and which of those have begun (``coverage``).

Privacy by type: ``GovernorWeek`` and ``GovernorReport`` (and every type inside them) have no
field that can hold a device, address, host name or label, so a governor's email or report
cannot show one by accident. Only ``ReviewerWeek`` carries devices and the review queue.

Dates: one convention, as in the queries: a period is the local days ``[start, end)`` (``end``
excluded), turned into UTC instants with the school's time zone, daylight saving included
(``monitor.store.queries.weeks.local_midnight``). ``labels.period_label`` words a period for
a person. ``today`` (the school's local date when the report is made) decides which days can be
"no data": a period that runs past today counts only the school days so far.

Sites: each loader takes ``site``: a school's report counts only that school's incidents,
counters and checks (checks recorded without a site count for every school); ``None`` covers
the whole trust, where devices stay apart by site (``monitor.values.DeviceIdentity``). List
changes apply to every school, so they are never filtered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, tzinfo

from sqlalchemy.orm import Session

from monitor.confidence import DEFAULT_FLOOR, DEFAULT_LEVELS, Floor
from monitor.reports.coverage import days_so_far, days_without_data, is_silent_site
from monitor.store.queries.governors import GovernorSummary, governor_summary
from monitor.store.queries.incidents import IncidentFilters, IncidentSummary, list_incidents
from monitor.store.queries.stats import (
    WAITING_STATUSES,
    CaptureHealth,
    Change,
    DeviceActivity,
    IncidentStats,
    capture_health,
    incident_stats,
    sites_with_observations,
    top_devices,
)
from monitor.store.queries.weeks import local_midnight


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the sensors counted over a period (``health``), judged against its school days."""

    health: CaptureHealth
    """The anonymous daily counters of the period (``stats.capture_health``)."""
    school_days: int
    """School days of the period up to today (the days that can have data)."""
    school_days_without_data: tuple[date, ...]
    """School days up to today with no observation at all: the capture was probably not
    running. Days after today are never in it."""
    school_days_ahead: int = 0
    """School days of the period after today (not "no data": they have not happened)."""
    site: str | None = None
    """The school these figures cover (None: every school of the trust)."""
    other_sites_with_data: int = 0
    """Other schools of the trust whose sensors sent data in the period (0 for a trust-wide
    report)."""

    @property
    def observations(self) -> int:
        return self.health.observations_total

    @property
    def silent_site(self) -> bool:
        """This school sent no data at all while other schools did (see ``coverage``)."""
        return is_silent_site(self.site, self.observations, self.other_sites_with_data)

    @property
    def no_data(self) -> bool:
        """Nothing at all arrived on the school days so far."""
        return self.observations == 0 and self.school_days > 0


@dataclass(frozen=True, slots=True)
class GovernorWeek:
    """Aggregates only: no field can hold a device, address, host name or label."""

    stats: IncidentStats
    health: Coverage

    @property
    def incidents(self) -> int:
        return self.stats.total

    @property
    def previous_incidents(self) -> int:
        return self.stats.previous_total

    @property
    def waiting_review_total(self) -> int:
        return self.stats.open_items

    @property
    def low_confidence(self) -> int:
        return self.stats.low_confidence

    @property
    def by_platform(self) -> tuple[Change, ...]:
        return self.stats.platform_changes


@dataclass(frozen=True, slots=True)
class ReviewerWeek(GovernorWeek):
    """Every figure, the busiest devices and the review queue."""

    top_devices: tuple[DeviceActivity, ...] = ()
    waiting_review: tuple[IncidentSummary, ...] = ()
    """The oldest first, at most ``queue_limit`` of ``waiting_review_total``."""


@dataclass(frozen=True, slots=True)
class GovernorReport:
    """The termly or annual evidence: the governors' figures (``summary``, the very values of
    the governors' dashboard) and the coverage of the school days."""

    summary: GovernorSummary
    coverage: Coverage

    @property
    def incidents(self) -> int:
        return self.summary.total


def load_coverage(
    db: Session,
    start: date,
    end: date,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
) -> Coverage:
    """The capture health of ``site`` (None: every site) on the local days ``[start, end)``,
    as known on the local day ``today``."""
    health = capture_health(db, start, end, site)
    per_day = {d.day: d.count for d in health.by_day}
    so_far = days_so_far(school_days, today)
    others_with_data = 0
    if site is not None:
        others_with_data = len(set(sites_with_observations(db, start, end)) - {site})
    return Coverage(
        health=health,
        school_days=len(so_far),
        school_days_without_data=days_without_data(((d, per_day.get(d, 0)) for d in so_far), today),
        school_days_ahead=len(school_days) - len(so_far),
        site=site,
        other_sites_with_data=others_with_data,
    )


def load_governor_week(
    db: Session,
    start: date,
    end: date,
    tz: tzinfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
    floor: Floor | None = None,
) -> GovernorWeek:
    """The governor's week ``[start, end)``: aggregates only (without the incidents below
    ``floor``, when given: they are only counted)."""
    return GovernorWeek(
        stats=incident_stats(
            db, local_midnight(start, tz), local_midnight(end, tz), tz, site, floor
        ),
        health=load_coverage(db, start, end, school_days, site=site, today=today),
    )


def load_reviewer_week(
    db: Session,
    start: date,
    end: date,
    tz: tzinfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
    top_limit: int = 5,
    queue_limit: int = 20,
    floor: Floor | None = None,
) -> ReviewerWeek:
    """The reviewer's week ``[start, end)``: every figure, the busiest devices and the review
    queue (without the incidents below ``floor``, when given: they are only counted)."""
    low, high = local_midnight(start, tz), local_midnight(end, tz)
    governor = load_governor_week(
        db, start, end, tz, school_days, site=site, today=today, floor=floor
    )
    levels = tuple(DEFAULT_LEVELS) if floor else ()
    waiting = IncidentFilters(
        statuses=WAITING_STATUSES, levels=levels, floor=floor or DEFAULT_FLOOR
    )
    queue = list_incidents(db, waiting, sort="start", per_page=queue_limit, site_scope=site)
    return ReviewerWeek(
        stats=governor.stats,
        health=governor.health,
        top_devices=top_devices(db, low, high, site, top_limit, floor),
        waiting_review=queue.items,
    )


def load_governor_report(
    db: Session,
    start: date,
    end: date,
    tz: tzinfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
) -> GovernorReport:
    """The governors' termly or annual report for the local days ``[start, end)``."""
    return GovernorReport(
        summary=governor_summary(db, local_midnight(start, tz), local_midnight(end, tz), tz, site),
        coverage=load_coverage(db, start, end, school_days, site=site, today=today),
    )
