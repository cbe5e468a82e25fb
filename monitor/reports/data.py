"""What the reports read from the database, as frozen values (never ORM rows).

The weekly summary and the governors' report need a handful of small aggregates: incidents by
platform, segment, role, outcome and day, the busiest devices, the review queue, the anonymous
daily counters (capture health and visibility gaps), the checks run and the list changes with
their reasons. Each ``load_*`` function runs its queries and returns a dataclass.

Privacy by type: ``GovernorWeek`` and ``GovernorReport`` (and every type inside them) have no
field that can hold a device, address, host name or label, so a governor's email or report
cannot show one by accident. Only ``ReviewerWeek`` carries ``DeviceActivity`` and
``QueuedIncident``.

Days are the school's local days: ``start`` and ``end`` are local dates (both included), turned
into UTC bounds with the school's time zone, daylight saving included. ``today`` (the school's
local date when the report is made) decides which days can be "no data" (``coverage``): a
period that runs past today counts only the school days so far.

Sites: in a trust, several schools' sensors share one database. Each loader takes ``site``: a
school's report counts only that school's incidents, counters and checks (checks recorded
without a site count for every school); ``None`` covers the whole trust. List changes apply to
every school, so they are never filtered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, not_, or_, select
from sqlalchemy.orm import Session

from monitor.confidence import Floor
from monitor.reports.coverage import days_so_far, days_without_data, is_silent_site
from monitor.store.models import (
    CheckRecord,
    DailyCounterRecord,
    IncidentRecord,
    ListChangeRecord,
)
from monitor.store.queries.incidents import low_condition
from monitor.store.queries.scope import site_condition
from monitor.store.queries.stats import sites_with_observations

WAITING_STATUSES = ("new", "in_review")
"""Review statuses of incidents that still wait for the headteacher."""
OBSERVATION_COUNTER_PREFIX = "observations."
"""Daily counters of everything seen, one per protocol (``observations.dns``...)."""
UNREVIEWED = "not reviewed yet"
"""The outcome shown for incidents without one."""
TREND_WEEKLY_UP_TO_DAYS = 16 * 7
"""A governors' report shorter than this shows its trend per week (a term), else per month."""


# --- the values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatformCount:
    platform: str
    count: int
    """Incidents in the period."""
    previous: int
    """Incidents in the period before (same length), for the change."""


@dataclass(frozen=True, slots=True)
class SegmentCount:
    segment: str
    """The segment's name (``staff-wifi``), or ``no segment``."""
    count: int


@dataclass(frozen=True, slots=True)
class RoleCount:
    role: str
    """``staff``, ``pupil``, ``guest``, ``admin`` or ``no segment``: who, never which device."""
    count: int


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    outcome: str
    """The reviewer's conclusion (``no_action``...) or ``UNREVIEWED``."""
    count: int


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    """A local day."""
    count: int


@dataclass(frozen=True, slots=True)
class PeriodCount:
    """Incidents in one step of a trend (a week or a month)."""

    start: date
    end: date
    count: int


@dataclass(frozen=True, slots=True)
class CounterTotal:
    counter: str
    """An anonymous daily counter's name (``matches.outside_school_time``)."""
    count: int


@dataclass(frozen=True, slots=True)
class CaptureHealth:
    """What the sensor saw, from anonymous counters only."""

    observations: int
    """Names seen (DNS, TLS, QUIC, DHCP) over the period."""
    by_protocol: tuple[CounterTotal, ...]
    observations_by_day: tuple[DayCount, ...]
    school_days: int
    """School days of the period up to today (the days that can have data)."""
    school_days_without_data: tuple[date, ...]
    """School days up to today with no observation at all: the capture was probably not
    running. Days after today are never in it."""
    counters: tuple[CounterTotal, ...]
    """The other counters: matches not flagged and why, and visibility gaps."""
    school_days_ahead: int = 0
    """School days of the period after today (not "no data": they have not happened)."""
    site: str | None = None
    """The school these figures cover (None: every school of the trust)."""
    other_sites_with_data: int = 0
    """Other schools of the trust whose sensors sent data in the period (0 for a trust-wide
    report)."""

    @property
    def silent_site(self) -> bool:
        """This school sent no data at all while other schools did (see ``coverage``)."""
        return is_silent_site(self.site, self.observations, self.other_sites_with_data)

    @property
    def no_data(self) -> bool:
        """Nothing at all arrived on the school days so far."""
        return self.observations == 0 and self.school_days > 0


@dataclass(frozen=True, slots=True)
class DeviceActivity:
    """One of the devices with most activity (reviewer version only)."""

    device: str
    """The admin's label, else the DHCP host name, else the address."""
    address: str
    segment: str | None
    incidents: int
    active_minutes: float
    platforms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueuedIncident:
    """An incident waiting for review (reviewer version only)."""

    id: int
    platform: str
    device: str
    segment: str | None
    start_at: datetime
    active_minutes: float
    status: str


@dataclass(frozen=True, slots=True)
class ReviewerWeek:
    incidents: int
    previous_incidents: int
    by_platform: tuple[PlatformCount, ...]
    by_segment: tuple[SegmentCount, ...]
    by_day: tuple[DayCount, ...]
    top_devices: tuple[DeviceActivity, ...]
    waiting_review_total: int
    waiting_review: tuple[QueuedIncident, ...]
    """The oldest first, at most ``queue_limit`` of ``waiting_review_total``."""
    health: CaptureHealth
    low_confidence: int = 0
    """Incidents of the period below the confidence floor, left out of every figure above."""


@dataclass(frozen=True, slots=True)
class GovernorWeek:
    """Aggregates only: no field can hold a device, address, host name or label."""

    incidents: int
    previous_incidents: int
    by_platform: tuple[PlatformCount, ...]
    by_role: tuple[RoleCount, ...]
    by_day: tuple[DayCount, ...]
    by_outcome: tuple[OutcomeCount, ...]
    waiting_review_total: int
    health: CaptureHealth
    low_confidence: int = 0
    """Incidents of the period below the confidence floor, left out of every figure above."""


@dataclass(frozen=True, slots=True)
class CheckSummary:
    """The runs of one kind of check or self-test in the period."""

    kind: str
    runs: int
    passed: int
    failed: int
    last_at: datetime
    last_ok: bool


@dataclass(frozen=True, slots=True)
class ListChange:
    """An entry added to or removed from a list, with who did it and why."""

    at: datetime
    username: str
    action: str
    list_name: str
    suffix: str
    presence: str | None
    reason: str
    approved_by: str | None


@dataclass(frozen=True, slots=True)
class GovernorReport:
    """The termly or annual evidence: aggregates, checks, coverage and list changes."""

    incidents: int
    previous_incidents: int
    """Incidents in the period of the same length just before."""
    by_outcome: tuple[OutcomeCount, ...]
    by_platform: tuple[PlatformCount, ...]
    by_role: tuple[RoleCount, ...]
    trend: tuple[PeriodCount, ...]
    trend_step: str
    """``week`` for periods up to 16 weeks, else ``month``."""
    checks: tuple[CheckSummary, ...]
    coverage: CaptureHealth
    list_changes: tuple[ListChange, ...]


# --- loading -------------------------------------------------------------------------------


def utc_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants ``[start 00:00 local, the day after end 00:00 local)``."""
    low = datetime.combine(start, time.min, zone).astimezone(UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, zone).astimezone(UTC)
    return low, high


@dataclass(frozen=True, slots=True)
class _Incident:
    id: int
    platform: str
    role: str | None
    segment: str | None
    outcome: str | None
    start_at: datetime
    active_minutes: float
    device_key: str
    device: str
    address: str


def _confident(floor: Floor | None) -> tuple[ColumnElement[bool], ...]:
    """Leave out low-confidence incidents when a floor is given (the weekly email)."""
    return () if floor is None else (not_(low_condition(floor)),)


def _count_low(
    db: Session, start: date, end: date, zone: ZoneInfo, site: str | None, floor: Floor | None
) -> int:
    if floor is None:
        return 0
    low, high = utc_bounds(start, end, zone)
    return (
        db.scalar(
            select(func.count())
            .select_from(IncidentRecord)
            .where(
                IncidentRecord.start_at >= low,
                IncidentRecord.start_at < high,
                site_condition(IncidentRecord.site, site),
                low_condition(floor),
            )
        )
        or 0
    )


def _incidents(
    db: Session,
    start: date,
    end: date,
    zone: ZoneInfo,
    site: str | None,
    floor: Floor | None = None,
) -> list[_Incident]:
    low, high = utc_bounds(start, end, zone)
    rows = db.execute(
        select(
            IncidentRecord.id,
            IncidentRecord.platform,
            IncidentRecord.role,
            IncidentRecord.device_segment,
            IncidentRecord.outcome,
            IncidentRecord.start_at,
            IncidentRecord.active_minutes,
            IncidentRecord.device_mac,
            IncidentRecord.device_ip,
            IncidentRecord.device_label,
            IncidentRecord.device_host_name,
        )
        .where(
            IncidentRecord.start_at >= low,
            IncidentRecord.start_at < high,
            site_condition(IncidentRecord.site, site),
            *_confident(floor),
        )
        .order_by(IncidentRecord.start_at, IncidentRecord.id)
    )
    return [
        _Incident(
            id=row.id,
            platform=row.platform,
            role=row.role,
            segment=row.device_segment,
            outcome=row.outcome,
            start_at=row.start_at,
            active_minutes=row.active_minutes,
            device_key=row.device_mac or row.device_ip,
            device=row.device_label or row.device_host_name or row.device_ip,
            address=row.device_ip,
        )
        for row in rows
    ]


def _count_incidents(
    db: Session,
    start: date,
    end: date,
    zone: ZoneInfo,
    site: str | None,
    floor: Floor | None = None,
) -> Counter[str]:
    """Incidents per platform in the period."""
    low, high = utc_bounds(start, end, zone)
    rows = db.execute(
        select(IncidentRecord.platform, func.count())
        .where(
            IncidentRecord.start_at >= low,
            IncidentRecord.start_at < high,
            site_condition(IncidentRecord.site, site),
            *_confident(floor),
        )
        .group_by(IncidentRecord.platform)
    )
    return Counter({str(platform): int(count) for platform, count in rows})


def _by_platform(current: Iterable[str], previous: Counter[str]) -> tuple[PlatformCount, ...]:
    counts = Counter(current)
    platforms = sorted(set(counts) | set(previous), key=lambda p: (-counts[p], -previous[p], p))
    return tuple(PlatformCount(p, counts[p], previous[p]) for p in platforms)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _by_day(
    instants: Iterable[datetime], start: date, end: date, zone: ZoneInfo
) -> tuple[DayCount, ...]:
    counts = Counter(instant.astimezone(zone).date() for instant in instants)
    return tuple(DayCount(day, counts[day]) for day in _days(start, end))


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _previous_period(start: date, end: date) -> tuple[date, date]:
    length = end - start + timedelta(days=1)
    return start - length, end - length


def load_capture_health(
    db: Session,
    start: date,
    end: date,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
) -> CaptureHealth:
    """Capture health from the anonymous daily counters of ``site`` (None: every site), as
    known on the local day ``today``."""
    rows = db.execute(
        select(DailyCounterRecord.day, DailyCounterRecord.name, func.sum(DailyCounterRecord.count))
        .where(
            DailyCounterRecord.day >= start,
            DailyCounterRecord.day <= end,
            site_condition(DailyCounterRecord.site, site),
        )
        .group_by(DailyCounterRecord.day, DailyCounterRecord.name)
    )
    per_day: Counter[date] = Counter()
    protocols: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for day, name, count in rows:
        if name.startswith(OBSERVATION_COUNTER_PREFIX):
            per_day[day] += int(count)
            protocols[name.removeprefix(OBSERVATION_COUNTER_PREFIX)] += int(count)
        else:
            others[name] += int(count)
    so_far = days_so_far(school_days, today)
    others_with_data = 0
    if site is not None:
        sites = sites_with_observations(db, start, end + timedelta(days=1))
        others_with_data = len(set(sites) - {site})
    return CaptureHealth(
        observations=sum(per_day.values()),
        by_protocol=tuple(CounterTotal(n, c) for n, c in _ranked(protocols)),
        observations_by_day=tuple(DayCount(day, per_day[day]) for day in _days(start, end)),
        school_days=len(so_far),
        school_days_without_data=days_without_data(((d, per_day[d]) for d in so_far), today),
        counters=tuple(CounterTotal(n, c) for n, c in sorted(others.items())),
        school_days_ahead=len(school_days) - len(so_far),
        site=site,
        other_sites_with_data=others_with_data,
    )


def _top_devices(incidents: Sequence[_Incident], limit: int) -> tuple[DeviceActivity, ...]:
    grouped: defaultdict[str, list[_Incident]] = defaultdict(list)
    for incident in incidents:
        grouped[incident.device_key].append(incident)
    ranked = sorted(
        grouped.values(),
        key=lambda items: (-len(items), -sum(i.active_minutes for i in items), items[0].device),
    )
    return tuple(
        DeviceActivity(
            device=items[-1].device,
            address=items[-1].address,
            segment=items[-1].segment,
            incidents=len(items),
            active_minutes=round(sum(i.active_minutes for i in items), 1),
            platforms=tuple(sorted({i.platform for i in items})),
        )
        for items in ranked[:limit]
    )


def _waiting(site: str | None, floor: Floor | None = None) -> tuple[ColumnElement[bool], ...]:
    """Incidents of ``site`` that still wait for review, whenever they started."""
    return (
        IncidentRecord.status.in_(WAITING_STATUSES),
        site_condition(IncidentRecord.site, site),
        *_confident(floor),
    )


def _review_queue(
    db: Session, limit: int, site: str | None, floor: Floor | None = None
) -> tuple[int, tuple[QueuedIncident, ...]]:
    waiting = _waiting(site, floor)
    total = db.scalar(select(func.count()).select_from(IncidentRecord).where(*waiting)) or 0
    records = db.scalars(
        select(IncidentRecord)
        .where(*waiting)
        .order_by(IncidentRecord.start_at, IncidentRecord.id)
        .limit(limit)
    )
    queue = tuple(
        QueuedIncident(
            id=r.id,
            platform=r.platform,
            device=r.device_label or r.device_host_name or r.device_ip,
            segment=r.device_segment,
            start_at=r.start_at,
            active_minutes=r.active_minutes,
            status=r.status,
        )
        for r in records
    )
    return total, queue


def load_reviewer_week(
    db: Session,
    start: date,
    end: date,
    zone: ZoneInfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
    top_limit: int = 5,
    queue_limit: int = 20,
    floor: Floor | None = None,
) -> ReviewerWeek:
    """The reviewer's week: every figure, the busiest devices and the review queue (without
    the incidents below ``floor``, when given: they are only counted)."""
    incidents = _incidents(db, start, end, zone, site, floor)
    previous = _count_incidents(db, *_previous_period(start, end), zone, site, floor)
    segments = Counter(i.segment or "no segment" for i in incidents)
    waiting_total, queue = _review_queue(db, queue_limit, site, floor)
    return ReviewerWeek(
        incidents=len(incidents),
        previous_incidents=sum(previous.values()),
        by_platform=_by_platform((i.platform for i in incidents), previous),
        by_segment=tuple(SegmentCount(s, c) for s, c in _ranked(segments)),
        by_day=_by_day((i.start_at for i in incidents), start, end, zone),
        top_devices=_top_devices(incidents, top_limit),
        waiting_review_total=waiting_total,
        waiting_review=queue,
        health=load_capture_health(db, start, end, school_days, site=site, today=today),
        low_confidence=_count_low(db, start, end, zone, site, floor),
    )


def _by_role(incidents: Iterable[_Incident]) -> tuple[RoleCount, ...]:
    roles = Counter(i.role or "no segment" for i in incidents)
    return tuple(RoleCount(r, c) for r, c in _ranked(roles))


def _by_outcome(incidents: Iterable[_Incident]) -> tuple[OutcomeCount, ...]:
    outcomes = Counter(i.outcome or UNREVIEWED for i in incidents)
    return tuple(OutcomeCount(o, c) for o, c in _ranked(outcomes))


def load_governor_week(
    db: Session,
    start: date,
    end: date,
    zone: ZoneInfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
    floor: Floor | None = None,
) -> GovernorWeek:
    """The governor's week: aggregates and trends only (without the incidents below ``floor``,
    when given: they are only counted)."""
    incidents = _incidents(db, start, end, zone, site, floor)
    previous = _count_incidents(db, *_previous_period(start, end), zone, site, floor)
    waiting_total = db.scalar(
        select(func.count()).select_from(IncidentRecord).where(*_waiting(site, floor))
    )
    return GovernorWeek(
        incidents=len(incidents),
        previous_incidents=sum(previous.values()),
        by_platform=_by_platform((i.platform for i in incidents), previous),
        by_role=_by_role(incidents),
        by_day=_by_day((i.start_at for i in incidents), start, end, zone),
        by_outcome=_by_outcome(incidents),
        waiting_review_total=waiting_total or 0,
        health=load_capture_health(db, start, end, school_days, site=site, today=today),
        low_confidence=_count_low(db, start, end, zone, site, floor),
    )


def _trend(
    incidents: Sequence[_Incident], start: date, end: date, zone: ZoneInfo, *, weekly: bool
) -> tuple[PeriodCount, ...]:
    """Per ISO week (Monday to Sunday, clipped to the period) or per calendar month."""
    steps: list[tuple[date, date]] = []
    first = start
    while first <= end:
        if weekly:
            last = first + timedelta(days=6 - first.weekday())
        else:
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            last = following - timedelta(days=1)
        steps.append((first, min(last, end)))
        first = last + timedelta(days=1)
    days = Counter(i.start_at.astimezone(zone).date() for i in incidents)
    return tuple(
        PeriodCount(a, b, sum(n for day, n in days.items() if a <= day <= b)) for a, b in steps
    )


def _checks(
    db: Session, low: datetime, high: datetime, site: str | None
) -> tuple[CheckSummary, ...]:
    where = [CheckRecord.at >= low, CheckRecord.at < high]
    if site is not None:
        where.append(or_(CheckRecord.site == site, CheckRecord.site.is_(None)))
    records = db.scalars(select(CheckRecord).where(*where).order_by(CheckRecord.at, CheckRecord.id))
    runs: defaultdict[str, list[CheckRecord]] = defaultdict(list)
    for record in records:
        runs[record.kind].append(record)
    return tuple(
        CheckSummary(
            kind=kind,
            runs=len(items),
            passed=sum(1 for i in items if i.ok),
            failed=sum(1 for i in items if not i.ok),
            last_at=items[-1].at,
            last_ok=items[-1].ok,
        )
        for kind, items in sorted(runs.items())
    )


def _list_changes(db: Session, low: datetime, high: datetime) -> tuple[ListChange, ...]:
    records = db.scalars(
        select(ListChangeRecord)
        .where(ListChangeRecord.at >= low, ListChangeRecord.at < high)
        .order_by(ListChangeRecord.at, ListChangeRecord.id)
    )
    return tuple(
        ListChange(
            at=r.at,
            username=r.username,
            action=r.action,
            list_name=r.list_name,
            suffix=r.suffix,
            presence=r.presence,
            reason=r.reason,
            approved_by=r.approved_by,
        )
        for r in records
    )


def load_governor_report(
    db: Session,
    start: date,
    end: date,
    zone: ZoneInfo,
    school_days: Sequence[date],
    *,
    site: str | None,
    today: date,
) -> GovernorReport:
    """The governors' termly or annual report for the local days ``start`` to ``end``."""
    incidents = _incidents(db, start, end, zone, site)
    previous = _count_incidents(db, *_previous_period(start, end), zone, site)
    low, high = utc_bounds(start, end, zone)
    weekly = (end - start).days < TREND_WEEKLY_UP_TO_DAYS
    return GovernorReport(
        incidents=len(incidents),
        previous_incidents=sum(previous.values()),
        by_outcome=_by_outcome(incidents),
        by_platform=_by_platform((i.platform for i in incidents), previous),
        by_role=_by_role(incidents),
        trend=_trend(incidents, start, end, zone, weekly=weekly),
        trend_step="week" if weekly else "month",
        checks=_checks(db, low, high, site),
        coverage=load_capture_health(db, start, end, school_days, site=site, today=today),
        list_changes=_list_changes(db, low, high),
    )
