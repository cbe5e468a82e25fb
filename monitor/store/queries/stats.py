"""Figures for the dashboard and the reviewer's weekly summary: incidents and capture health.

Incident figures are counted in SQL, per local day of the school too: each day's bounds are
UTC instants (daylight saving included) compared in a ``CASE``, so nothing but the counts
leaves the database. Capture health reads the anonymous ``daily_counters`` the engine keeps
(``observations.<proto>``, ``matches.<why not flagged>``, and ``flags.<flag>`` where counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, case, func, not_, select
from sqlalchemy.orm import Session

from monitor.confidence import Floor
from monitor.store.models import DailyCounterRecord, IncidentRecord
from monitor.store.queries.identity import device_name, identity_column
from monitor.store.queries.incidents import low_condition
from monitor.store.queries.scope import site_condition
from monitor.store.queries.weeks import local_days, local_midnight
from monitor.store.workflow import WAITING
from monitor.values import DeviceIdentity

UNSEGMENTED = "unsegmented"
"""The key of incidents on no configured segment (and of their role): the one key for "no
segment" on pages, in the API and in reports (``monitor.reports.labels`` words it)."""
AWAITING_REVIEW = "awaiting_review"
"""The outcome key of incidents not closed yet."""
WAITING_STATUSES = tuple(status.value for status in WAITING)
"""Review statuses of incidents that still wait for a decision ("open items")."""
OBSERVATIONS_PREFIX = "observations."
FLAGS_PREFIX = "flags."
OUTSIDE_SCHOOL_TIME = "matches.outside_school_time"
UNSEGMENTED_MATCHES = "matches.unsegmented"
NOT_FLAGGED_FOR_SEGMENT = "matches.not_flagged_for_segment"
ENCRYPTED_DNS_FLAG = "encrypted-dns"
ECH_FLAG = "ech"
TOP_DEVICES_LIMIT = 5


@dataclass(frozen=True, slots=True)
class Count:
    """How many of one kind (a platform, segment, role, protocol or counter)."""

    key: str
    count: int


@dataclass(frozen=True, slots=True)
class Change:
    """How many of one kind in a period, and in the period of the same length before."""

    key: str
    count: int
    previous: int


def changes(
    current: Iterable[tuple[str, int]], previous: Iterable[tuple[str, int]]
) -> tuple[Change, ...]:
    """Every key of either period's ``(key, count)``, most now first (then most before, then
    by name)."""
    now, before = dict(current), dict(previous)
    keys = sorted(now.keys() | before.keys(), key=lambda k: (-now.get(k, 0), -before.get(k, 0), k))
    return tuple(Change(k, now.get(k, 0), before.get(k, 0)) for k in keys)


@dataclass(frozen=True, slots=True)
class DayCount:
    """How many on one local day."""

    day: date
    count: int


@dataclass(frozen=True, slots=True)
class IncidentStats:
    """Incidents that started in ``[start, end)``, and the period of the same length before."""

    start: datetime
    end: datetime
    total: int
    by_platform: tuple[Count, ...]
    """Most first."""
    by_segment: tuple[Count, ...]
    by_role: tuple[Count, ...]
    by_day: tuple[DayCount, ...]
    """Every local day of the period, days without incidents included."""
    by_site: tuple[Count, ...]
    """Per school of a trust (one entry for a single school, none without incidents)."""
    open_items: int
    """Incidents of any date waiting for a decision (``new`` or ``in_review``)."""
    previous_total: int
    previous_by_platform: tuple[Count, ...]
    by_outcome: tuple[Count, ...] = ()
    """Per review outcome; incidents not closed yet count as ``AWAITING_REVIEW``."""
    low_confidence: int = 0
    """Incidents of the period below the confidence floor, when one was given: left out of
    every other figure (open items too), only counted here."""

    @property
    def change(self) -> int:
        """Incidents this period minus the period before."""
        return self.total - self.previous_total

    @property
    def platform_changes(self) -> tuple[Change, ...]:
        """Per platform, now and in the period before (platforms of either period)."""
        return changes(
            ((c.key, c.count) for c in self.by_platform),
            ((c.key, c.count) for c in self.previous_by_platform),
        )


@dataclass(frozen=True, slots=True)
class DeviceActivity:
    """One of the devices with most incidents in a period (reviewer summaries only)."""

    site: str
    device_mac: str | None
    device_ip: str
    """The latest address of the device in the period."""
    device_label: str | None
    device_host_name: str | None
    incidents: int
    active_minutes: float
    device_segment: str | None = None
    """The segment of its latest incident in the period."""
    platforms: tuple[str, ...] = ()
    """The platforms of its incidents in the period, by name."""

    @property
    def identity(self) -> DeviceIdentity:
        return DeviceIdentity.of(self.site, self.device_mac, self.device_ip)

    @property
    def name(self) -> str:
        """What to call it (``identity.device_name``)."""
        return device_name(
            self.device_label, self.device_host_name, self.device_mac, self.device_ip
        )


@dataclass(frozen=True, slots=True)
class CaptureHealth:
    """What the sensors counted on the local days ``[start, end)``: no identities."""

    start: date
    end: date
    observations_total: int
    observations_by_proto: tuple[Count, ...]
    by_day: tuple[DayCount, ...]
    """Observations per day, every day of the period included (a zero on a school day means
    the sensor saw nothing: down, or unplugged)."""
    days_with_data: int
    matches_outside_school_time: int
    matches_unsegmented: int
    matches_not_flagged: int
    """Matches on a segment that does not flag the platform's category."""
    flags: tuple[Count, ...]
    """Observations counted per flag (``flags.ech``...), when the engine counts them."""
    other: tuple[Count, ...]
    """Any other counter, by its full name."""

    @property
    def encrypted_dns(self) -> int | None:
        """Observations showing encrypted DNS (later lookups invisible); None if not counted."""
        return self._flag(ENCRYPTED_DNS_FLAG)

    @property
    def ech(self) -> int | None:
        """TLS handshakes with Encrypted Client Hello (name hidden); None if not counted."""
        return self._flag(ECH_FLAG)

    def _flag(self, name: str) -> int | None:
        return next((item.count for item in self.flags if item.key == name), None)

    @property
    def counters(self) -> tuple[Count, ...]:
        """Every counter other than observations, by its full name (``flags.ech``...), by name;
        counters with nothing counted are left out."""
        named = {
            OUTSIDE_SCHOOL_TIME: self.matches_outside_school_time,
            UNSEGMENTED_MATCHES: self.matches_unsegmented,
            NOT_FLAGGED_FOR_SEGMENT: self.matches_not_flagged,
        }
        named |= {FLAGS_PREFIX + item.key: item.count for item in self.flags}
        named |= {item.key: item.count for item in self.other}
        return tuple(Count(k, n) for k, n in sorted(named.items()) if n)


def confident(floor: Floor | None) -> tuple[ColumnElement[bool], ...]:
    """Leave out the incidents below ``floor`` when one is given (None: count every incident)."""
    return () if floor is None else (not_(low_condition(floor)),)


def incident_stats(
    db: Session,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    site_scope: str | None,
    floor: Floor | None = None,
) -> IncidentStats:
    """Incident figures for ``[start, end)`` (UTC instants), days in the school's zone; with a
    ``floor``, the incidents below it are left out and only counted (``low_confidence``)."""
    if end <= start:
        raise ValueError(f"period {start.isoformat()} to {end.isoformat()}: end is not after start")
    table = IncidentRecord
    scope = site_condition(table.site, site_scope)
    kept = confident(floor)
    period = (table.start_at >= start, table.start_at < end, scope, *kept)
    previous = (table.start_at >= start - (end - start), table.start_at < start, scope, *kept)
    segment = func.coalesce(table.device_segment, UNSEGMENTED)
    role = func.coalesce(table.role, UNSEGMENTED)
    outcome = func.coalesce(table.outcome, AWAITING_REVIEW)
    days = local_days(start, end, tz)
    midnights = [local_midnight(day + timedelta(days=1), tz) for day in days]
    by_day = count_in_buckets(db, table.start_at, period, midnights)
    waiting = select(func.count()).where(
        table.status.in_([status.value for status in WAITING]), scope, *kept
    )
    low = 0
    if floor is not None:
        in_period = (table.start_at >= start, table.start_at < end, scope)
        low = db.scalar(select(func.count()).where(*in_period, low_condition(floor))) or 0
    return IncidentStats(
        start=start,
        end=end,
        total=sum(by_day.values()),
        by_platform=_counts(db, table.platform, period),
        by_segment=_counts(db, segment, period),
        by_role=_counts(db, role, period),
        by_day=tuple(DayCount(day, by_day[n]) for n, day in enumerate(days)),
        by_site=_counts(db, table.site, period),
        open_items=db.scalar(waiting) or 0,
        previous_total=db.scalar(select(func.count()).where(*previous)) or 0,
        previous_by_platform=_counts(db, table.platform, previous),
        by_outcome=_counts(db, outcome, period),
        low_confidence=low,
    )


def top_devices(
    db: Session,
    start: datetime,
    end: datetime,
    site_scope: str | None,
    limit: int = TOP_DEVICES_LIMIT,
    floor: Floor | None = None,
) -> tuple[DeviceActivity, ...]:
    """The devices (``DeviceIdentity``: site and MAC, else address) with most incidents
    started in ``[start, end)`` (above ``floor``, when given)."""
    table = IncidentRecord
    identity = identity_column(table)
    period = (
        table.start_at >= start,
        table.start_at < end,
        site_condition(table.site, site_scope),
        *confident(floor),
    )
    ranked = (
        select(
            table.site,
            identity.label("identity"),
            func.count().label("incidents"),
            func.sum(table.active_minutes).label("minutes"),
            func.max(table.id).label("latest"),
        )
        .where(*period)
        .group_by(table.site, identity)
        .order_by(func.count().desc(), func.sum(table.active_minutes).desc(), identity)
        .limit(limit)
        .subquery()
    )
    rows = db.execute(
        select(table.site, table.device_mac, table.device_ip, table.device_label,
               table.device_host_name, ranked.c.incidents, ranked.c.minutes,
               table.device_segment)
        .join(ranked, table.id == ranked.c.latest)
        .order_by(ranked.c.incidents.desc(), ranked.c.minutes.desc(), ranked.c.identity)
    ).all()  # fmt: skip
    platforms: dict[DeviceIdentity, set[str]] = {}
    if rows:
        used = db.execute(select(table.site, identity, table.platform).where(*period).distinct())
        for site, mac_or_ip, platform in used:
            platforms.setdefault(DeviceIdentity(site, mac_or_ip), set()).add(platform)
    return tuple(
        DeviceActivity(
            site, mac or None, ip, label, host, count, round(float(minutes or 0), 1), segment,
            tuple(sorted(platforms.get(DeviceIdentity.of(site, mac, ip), ()))),
        )
        for site, mac, ip, label, host, count, minutes, segment in rows
    )  # fmt: skip


def capture_health(db: Session, start: date, end: date, site_scope: str | None) -> CaptureHealth:
    """Capture figures for the local days ``start`` (included) to ``end`` (excluded)."""
    if end <= start:
        raise ValueError(f"period {start} to {end}: end is not after start")
    table = DailyCounterRecord
    rows = db.execute(
        select(table.day, table.name, func.sum(table.count))
        .where(table.day >= start, table.day < end, site_condition(table.site, site_scope))
        .group_by(table.day, table.name)
    )
    totals: Counter[str] = Counter()
    per_day: Counter[date] = Counter()
    for day, name, count in rows:
        totals[name] += int(count)
        if name.startswith(OBSERVATIONS_PREFIX):
            per_day[day] += int(count)
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    protos = {k.removeprefix(OBSERVATIONS_PREFIX): v for k, v in totals.items() if k.startswith(OBSERVATIONS_PREFIX)}  # fmt: skip
    flags = {k.removeprefix(FLAGS_PREFIX): v for k, v in totals.items() if k.startswith(FLAGS_PREFIX)}  # fmt: skip
    known = {OUTSIDE_SCHOOL_TIME, UNSEGMENTED_MATCHES, NOT_FLAGGED_FOR_SEGMENT}
    other = {k: v for k, v in totals.items() if k not in known and not k.startswith((OBSERVATIONS_PREFIX, FLAGS_PREFIX))}  # fmt: skip
    return CaptureHealth(
        start=start,
        end=end,
        observations_total=sum(protos.values()),
        observations_by_proto=_sorted_counts(protos),
        by_day=tuple(DayCount(day, per_day[day]) for day in days),
        days_with_data=sum(1 for day in days if per_day[day]),
        matches_outside_school_time=totals[OUTSIDE_SCHOOL_TIME],
        matches_unsegmented=totals[UNSEGMENTED_MATCHES],
        matches_not_flagged=totals[NOT_FLAGGED_FOR_SEGMENT],
        flags=_sorted_counts(flags),
        other=_sorted_counts(other),
    )


def sites_with_observations(db: Session, start: date, end: date) -> tuple[str, ...]:
    """The sites whose sensors counted any observation on the local days ``start`` (included)
    to ``end`` (excluded), sorted: which schools of a trust sent data at all."""
    table = DailyCounterRecord
    rows = db.scalars(
        select(table.site)
        .where(
            table.day >= start,
            table.day < end,
            table.name.startswith(OBSERVATIONS_PREFIX),
            table.count > 0,
        )
        .group_by(table.site)
        .order_by(table.site)
    )
    return tuple(rows)


def count_in_buckets(
    db: Session, column: Any, conditions: tuple[ColumnElement[bool], ...], ends: list[datetime]
) -> Counter[int]:
    """Rows matching ``conditions`` per bucket: bucket ``n`` holds ``column`` values below
    ``ends[n]`` and not below ``ends[n - 1]`` (UTC instants, in order), counted in SQL."""
    if not ends:
        return Counter()
    whens = [(column < bound, n) for n, bound in enumerate(ends)]
    numbered = select(case(*whens, else_=len(ends)).label("n")).where(*conditions).subquery()
    rows = db.execute(select(numbered.c.n, func.count()).group_by(numbered.c.n))
    return Counter({int(n): count for n, count in rows})


def _counts(
    db: Session, key: Any, conditions: tuple[ColumnElement[bool], ...]
) -> tuple[Count, ...]:
    rows = db.execute(select(key, func.count()).where(*conditions).group_by(key))
    return _sorted_counts({str(name): count for name, count in rows})


def _sorted_counts(counts: dict[str, int]) -> tuple[Count, ...]:
    return tuple(
        Count(key, count) for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
