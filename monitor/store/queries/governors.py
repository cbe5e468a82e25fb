"""The governors' figures: aggregates and trends only, private by construction.

Governors see how the policy is working, never who: the types here have no field that can
hold a device's address, MAC, host name or label, or the name of anyone monitored (a test
walks them to prove it). Counts are grouped by platform, segment role and review outcome; the
evidence a school keeps for its annual review (checks run, list changes with their reasons
and who approved them) comes from ``checks`` and ``list_changes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from monitor.store.models import CheckRecord, IncidentRecord, ListChangeRecord
from monitor.store.queries.scope import site_condition
from monitor.store.queries.stats import (
    AWAITING_REVIEW,
    UNSEGMENTED,
    Change,
    changes,
    count_in_buckets,
)
from monitor.store.queries.weeks import iso_week_of, local_midnight

TREND_WEEKS = 8
"""The weekly trend covers the period's weeks, and at least this many weeks up to its end."""
TREND_WEEKLY_UP_TO_DAYS = 16 * 7
"""A period shorter than this has its ``trend`` per week (a term), else per month (a year)."""


@dataclass(frozen=True, slots=True)
class PlatformCount:
    platform: str
    count: int


@dataclass(frozen=True, slots=True)
class RoleCount:
    role: str
    """A segment role (``staff``, ``pupil``...) or ``unsegmented``."""
    count: int


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    outcome: str
    """A review outcome (``no_action``...) or ``awaiting_review``."""
    count: int


@dataclass(frozen=True, slots=True)
class WeekCount:
    week: str
    """ISO week, e.g. ``2026-W47``: a key for the API, never shown to a person."""
    count: int
    start: date
    """The week's local Monday: what a person reads (``Week of 16 November``)."""


@dataclass(frozen=True, slots=True)
class PeriodCount:
    """How many in one step of a trend: the local days ``[start, end)`` (a week or a month)."""

    start: date
    end: date
    count: int


@dataclass(frozen=True, slots=True)
class CheckRuns:
    """The runs of one kind of check or self-test in the period."""

    kind: str
    runs: int
    failures: int
    last_at: datetime
    last_ok: bool

    @property
    def passed(self) -> int:
        return self.runs - self.failures


@dataclass(frozen=True, slots=True)
class ListChange:
    """An entry added to or removed from a platform list or the allowlist."""

    at: datetime
    action: str
    """``add`` or ``remove``."""
    list_name: str
    suffix: str
    """The domain suffix of the entry (a list rule, not a device's name)."""
    presence: str | None
    reason: str
    changed_by: str
    """The admin who made the change."""
    approved_by: str | None


@dataclass(frozen=True, slots=True)
class GovernorSummary:
    """Incidents that started in ``[start, end)`` and the governance record of the period."""

    site: str | None
    """The school (None: every school of the trust)."""
    start: datetime
    end: datetime
    total: int
    previous_total: int
    """Incidents in the period of the same length before."""
    by_platform: tuple[PlatformCount, ...]
    by_role: tuple[RoleCount, ...]
    by_outcome: tuple[OutcomeCount, ...]
    weekly_trend: tuple[WeekCount, ...]
    """Whole weeks, at least ``TREND_WEEKS`` up to the period's end (the dashboard's chart)."""
    checks: tuple[CheckRuns, ...]
    list_changes: tuple[ListChange, ...]
    previous_by_platform: tuple[PlatformCount, ...] = ()
    """Per platform in the period of the same length before."""
    trend: tuple[PeriodCount, ...] = ()
    """The period itself, per week (Monday to Sunday, clipped to the period) when it is
    shorter than ``TREND_WEEKLY_UP_TO_DAYS``, else per calendar month (the printed report)."""
    trend_step: str = "week"
    """``week`` or ``month``: the step of ``trend``."""

    @property
    def platform_changes(self) -> tuple[Change, ...]:
        """Per platform, now and in the period before (platforms of either period)."""
        return changes(
            ((c.platform, c.count) for c in self.by_platform),
            ((c.platform, c.count) for c in self.previous_by_platform),
        )


def governor_summary(
    db: Session, start: datetime, end: datetime, tz: tzinfo, site: str | None
) -> GovernorSummary:
    """The governors' figures for ``[start, end)`` (UTC instants; weeks in the school's zone)."""
    if end <= start:
        raise ValueError(f"period {start.isoformat()} to {end.isoformat()}: end is not after start")
    table = IncidentRecord
    scope = site_condition(table.site, site)
    period = (table.start_at >= start, table.start_at < end, scope)
    previous = (table.start_at >= start - (end - start), table.start_at < start, scope)
    outcome = func.coalesce(table.outcome, AWAITING_REVIEW)
    weekly = (end - start) < timedelta(days=TREND_WEEKLY_UP_TO_DAYS)
    return GovernorSummary(
        site=site,
        start=start,
        end=end,
        total=db.scalar(select(func.count()).where(*period)) or 0,
        previous_total=db.scalar(select(func.count()).where(*previous)) or 0,
        by_platform=tuple(PlatformCount(k, n) for k, n in _grouped(db, table.platform, period)),
        by_role=tuple(RoleCount(k, n) for k, n in _grouped(db, func.coalesce(table.role, UNSEGMENTED), period)),
        by_outcome=tuple(OutcomeCount(k, n) for k, n in _grouped(db, outcome, period)),
        weekly_trend=_trend(db, start, end, tz, scope),
        checks=_checks(db, start, end, site),
        list_changes=_list_changes(db, start, end),
        previous_by_platform=tuple(PlatformCount(k, n) for k, n in _grouped(db, table.platform, previous)),
        trend=_period_trend(db, start, end, tz, scope, weekly=weekly),
        trend_step="week" if weekly else "month",
    )  # fmt: skip


def _grouped(
    db: Session, key: Any, conditions: tuple[ColumnElement[bool], ...]
) -> list[tuple[str, int]]:
    rows = db.execute(select(key, func.count()).where(*conditions).group_by(key))
    return sorted(((str(k), n) for k, n in rows), key=lambda kv: (-kv[1], kv[0]))


def _trend(
    db: Session, start: datetime, end: datetime, tz: tzinfo, scope: ColumnElement[bool]
) -> tuple[WeekCount, ...]:
    last_day = (end - timedelta(microseconds=1)).astimezone(tz).date()
    last_monday = last_day - timedelta(days=last_day.weekday())
    first_day = start.astimezone(tz).date()
    first_monday = min(
        first_day - timedelta(days=first_day.weekday()),
        last_monday - timedelta(weeks=TREND_WEEKS - 1),
    )
    mondays = [
        first_monday + timedelta(weeks=n) for n in range((last_monday - first_monday).days // 7 + 1)
    ]
    ends = [local_midnight(monday + timedelta(days=7), tz) for monday in mondays]
    column = IncidentRecord.start_at
    window = (column >= local_midnight(first_monday, tz), column < ends[-1], scope)
    counts = count_in_buckets(db, column, window, ends)
    return tuple(WeekCount(iso_week_of(monday), counts[n], monday) for n, monday in enumerate(mondays))  # fmt: skip


def _period_trend(
    db: Session,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    scope: ColumnElement[bool],
    *,
    weekly: bool,
) -> tuple[PeriodCount, ...]:
    """Per ISO week (Monday to Sunday) or per calendar month, clipped to ``[start, end)``."""
    first, stop = (
        start.astimezone(tz).date(),
        (end - timedelta(microseconds=1)).astimezone(tz).date() + timedelta(days=1),
    )
    steps: list[tuple[date, date]] = []
    while first < stop:
        if weekly:
            following = first + timedelta(days=7 - first.weekday())
        else:
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        steps.append((first, min(following, stop)))
        first = following
    column = IncidentRecord.start_at
    ends = [local_midnight(step_end, tz) for _, step_end in steps]
    counts = count_in_buckets(db, column, (column >= start, column < end, scope), ends)
    return tuple(PeriodCount(a, b, counts[n]) for n, (a, b) in enumerate(steps))  # fmt: skip


def _checks(db: Session, start: datetime, end: datetime, site: str | None) -> tuple[CheckRuns, ...]:
    table = CheckRecord
    where = [table.at >= start, table.at < end]
    if site is not None:
        where.append(or_(table.site == site, table.site.is_(None)))
    runs: dict[str, CheckRuns] = {}
    for kind, at, ok in db.execute(select(table.kind, table.at, table.ok).where(*where).order_by(table.at, table.id)):  # fmt: skip
        before = runs.get(kind)
        runs[kind] = CheckRuns(
            kind=kind,
            runs=(before.runs if before else 0) + 1,
            failures=(before.failures if before else 0) + (0 if ok else 1),
            last_at=at,
            last_ok=ok,
        )
    return tuple(runs[kind] for kind in sorted(runs))


def _list_changes(db: Session, start: datetime, end: datetime) -> tuple[ListChange, ...]:
    table = ListChangeRecord
    rows = db.execute(
        select(table.at, table.action, table.list_name, table.suffix, table.presence,
               table.reason, table.username, table.approved_by)
        .where(table.at >= start, table.at < end)
        .order_by(table.at, table.id)
    )  # fmt: skip
    return tuple(ListChange(*row) for row in rows)
