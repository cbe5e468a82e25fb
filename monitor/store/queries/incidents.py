"""The review queue: incidents filtered, sorted, paged, scoped to a site.

One incident's page is ``monitor.store.queries.incident_page``.

The queue reads the columns it shows and nothing else (never the evidence JSON). A page is
found in two steps: the ids of the page's rows, found in an index, then those rows; so a deep
page does not fetch and discard every row before it. The platform and device sorts and the
device search have indexes of their own (migration 9b5d2e7c4a1f), so that none of them reads
every incident row of a site. Sort keys end with the start time and
the id, so pages are stable while new incidents arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from monitor.confidence import (
    DEFAULT_FLOOR,
    HIGH_FROM,
    LEVELS,
    MEDIUM_FROM,
    Explanation,
    Floor,
    Level,
    explain,
)
from monitor.platforms import platform_name
from monitor.store.models import (
    IncidentRecord,
)
from monitor.store.queries.identity import device_name
from monitor.store.queries.scope import Window, contains_text, site_condition
from monitor.store.queries.weeks import local_midnight
from monitor.store.workflow import ReviewStatus, in_words
from monitor.values import Attribution, Basis


class SortKey(StrEnum):
    """What the queue can be sorted by; a sort name is a key, or ``-key`` for descending
    (``-start``: newest first). Ties go newest first."""

    START = "start"
    PLATFORM = "platform"
    DEVICE = "device"
    CONFIDENCE = "confidence"
    STATUS = "status"
    """In workflow order: new, in review, closed."""

    def label(self, descending: bool = False) -> str:
        """The order as people read it: ``Newest first`` (``-start``), ``Platform (Z to A)``."""
        special = _ORDER_LABELS.get((self, descending))
        return special or in_words(self.value) + (" (Z to A)" if descending else "")


_ORDER_LABELS = {
    (SortKey.START, True): "Newest first",
    (SortKey.START, False): "Oldest first",
    (SortKey.STATUS, False): "Status (new first)",
    (SortKey.STATUS, True): "Status (closed first)",
    (SortKey.CONFIDENCE, True): "Most certain first",
    (SortKey.CONFIDENCE, False): "Least certain first",
}


def parse_sort(sort: str) -> tuple[SortKey, bool]:
    """``-start`` -> ``(SortKey.START, True)`` (descending); ``ValueError`` naming the choices."""
    try:
        return SortKey(sort.removeprefix("-")), sort.startswith("-")
    except ValueError:
        names = ", ".join(sorted(SortKey))
        raise ValueError(
            f"sort {sort!r}: allowed {names}, each optionally prefixed with '-'"
        ) from None


def sort_label(sort: str) -> str:
    """How a sort name reads (``-start``: ``Newest first``)."""
    key, descending = parse_sort(sort)
    return key.label(descending)


DEFAULT_SORT = "-start"
"""Newest first."""


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    """What the queue shows; an empty filter means "any". Dates are the school's local days."""

    statuses: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    """Configured segment names (``staff-wifi``)."""
    roles: tuple[str, ...] = ()
    """Segment roles (``staff``, ``pupil``...)."""
    device: str | None = None
    """A case-insensitive substring of the device's IP, MAC, host name or label."""
    date_from: date | None = None
    """First local day (included) on which the incident started."""
    date_to: date | None = None
    """Last local day (included) on which the incident started."""
    tz: tzinfo | None = None
    """The school's time zone; required with a date."""
    site: str | None = None
    """One school of a trust (a reviewer's own site limit applies as well)."""
    levels: tuple[str, ...] = ()
    """Confidence levels (``high``, ``medium``, ``low``); the queue's default leaves out low."""
    floor: Floor = DEFAULT_FLOOR
    """The confidence floor of the settings, under which an incident is low."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.statuses) - set(ReviewStatus))
        if unknown:
            raise ValueError(f"status {unknown[0]!r}: allowed {', '.join(ReviewStatus)}")
        unknown = sorted(set(self.levels) - set(LEVELS))
        if unknown:
            raise ValueError(f"confidence {unknown[0]!r}: allowed {', '.join(LEVELS)}")
        if (self.date_from or self.date_to) and self.tz is None:
            raise ValueError("a date filter needs the school's time zone (tz)")
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError(f"date range {self.date_from} to {self.date_to}: end before start")


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """One row of the queue."""

    id: int
    site: str
    platform: str
    category: str
    device_ip: str
    device_mac: str | None
    device_host_name: str | None
    device_label: str | None
    device_segment: str | None
    role: str | None
    start_at: datetime
    end_at: datetime
    active_minutes: float
    confidence: float
    hit_count: int
    state: str
    """``open`` while hits continue, ``closed`` after the idle gap (the engine's view)."""
    status: str
    """The review state: ``new``, ``in_review`` or ``closed``."""
    outcome: str | None
    connections: int
    lookups: int
    attribution: str

    @property
    def device_name(self) -> str:
        """What to call the device: its label, else its host name, MAC or address."""
        return device_name(
            self.device_label, self.device_host_name, self.device_mac, self.device_ip
        )

    @property
    def basis(self) -> Basis:
        return Basis(self.connections, self.lookups, Attribution(self.attribution))

    def explain(self, floor: Floor, tz: tzinfo) -> Explanation:
        """Its confidence level, the reasons and what was seen, in plain English."""
        return explain(
            self.basis,
            active_minutes=self.active_minutes,
            stored_score=self.confidence,
            floor=floor,
            platform=platform_name(self.platform),
            device=self.device_name,
            start=self.start_at.astimezone(tz),
            end=self.end_at.astimezone(tz),
        )


@dataclass(frozen=True, slots=True)
class IncidentPage:
    """One page of the queue, with what is needed to draw the pager."""

    items: tuple[IncidentSummary, ...]
    total: int
    page: int
    per_page: int
    pages: int
    sort: str
    filters: IncidentFilters
    low_hidden: int = 0
    """Low-confidence incidents matching the other filters that the level filter left out."""


SUMMARY_COLUMNS = (
    IncidentRecord.id, IncidentRecord.site, IncidentRecord.platform, IncidentRecord.category,
    IncidentRecord.device_ip, IncidentRecord.device_mac, IncidentRecord.device_host_name,
    IncidentRecord.device_label, IncidentRecord.device_segment, IncidentRecord.role,
    IncidentRecord.start_at, IncidentRecord.end_at, IncidentRecord.active_minutes,
    IncidentRecord.confidence, IncidentRecord.hit_count, IncidentRecord.state,
    IncidentRecord.status, IncidentRecord.outcome, IncidentRecord.connections,
    IncidentRecord.lookups, IncidentRecord.attribution,
)  # fmt: skip
"""The columns of :class:`IncidentSummary`, in its field order."""

_STATUS_ORDER = case(
    *((IncidentRecord.status == status.value, n) for n, status in enumerate(ReviewStatus)),
    else_=len(ReviewStatus),
)
_DEVICE_NAME = func.coalesce(
    IncidentRecord.device_label, IncidentRecord.device_host_name, IncidentRecord.device_ip
)
SORT_KEYS: dict[SortKey, ColumnElement[Any]] = {
    SortKey.START: IncidentRecord.start_at.expression,
    SortKey.PLATFORM: IncidentRecord.platform.expression,
    SortKey.DEVICE: _DEVICE_NAME,
    SortKey.CONFIDENCE: IncidentRecord.confidence.expression,
    SortKey.STATUS: _STATUS_ORDER,
}
"""The column of each sort key; ``-key`` sorts descending. Ties go newest first."""


def summary_of(row: Sequence[Any]) -> IncidentSummary:
    """An :class:`IncidentSummary` from a row of ``SUMMARY_COLUMNS``."""
    return IncidentSummary(*row)


def low_condition(floor: Floor) -> ColumnElement[bool]:
    """SQL for ``monitor.confidence.level_of(...) is Level.LOW`` on the stored columns."""
    table = IncidentRecord
    return or_(
        table.confidence < MEDIUM_FROM,
        and_(table.connections < floor.min_connections, table.active_minutes < floor.min_minutes),
    )


def level_condition(levels: tuple[str, ...], floor: Floor) -> ColumnElement[bool]:
    """SQL for an incident whose confidence level is one of ``levels``."""
    table = IncidentRecord
    low = low_condition(floor)
    high = and_(not_(low), table.confidence >= HIGH_FROM, table.connections > 0)
    conditions = {
        Level.LOW: low,
        Level.HIGH: high,
        Level.MEDIUM: and_(not_(low), not_(high)),
    }
    return or_(*(conditions[Level(level)] for level in levels))


def incident_conditions(
    filters: IncidentFilters, site_scope: str | None, dialect: str
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters`` within ``site_scope`` (shared with the CSV export)."""
    table = IncidentRecord
    conditions = [site_condition(table.site, site_scope)]
    if filters.site is not None:
        conditions.append(table.site == filters.site)
    if filters.statuses:
        conditions.append(table.status.in_(filters.statuses))
    if filters.platforms:
        conditions.append(table.platform.in_(filters.platforms))
    if filters.segments:
        conditions.append(table.device_segment.in_(filters.segments))
    if filters.roles:
        conditions.append(table.role.in_(filters.roles))
    if filters.levels and set(filters.levels) != set(LEVELS):
        conditions.append(level_condition(filters.levels, filters.floor))
    if filters.device:
        columns = (table.device_ip, table.device_mac, table.device_host_name, table.device_label)
        conditions.append(contains_text(columns, filters.device.strip(), dialect))
    if filters.date_from is not None and filters.tz is not None:
        conditions.append(table.start_at >= local_midnight(filters.date_from, filters.tz))
    if filters.date_to is not None and filters.tz is not None:
        next_day = filters.date_to + timedelta(days=1)
        conditions.append(table.start_at < local_midnight(next_day, filters.tz))
    return conditions


def incident_order(sort: str) -> list[Any]:
    """ORDER BY for a sort name (``start``, ``-start``, ``platform``...); ``ValueError`` if unknown."""
    name, descending = parse_sort(sort)
    key = SORT_KEYS[name]
    if name is SortKey.START:
        return [key.desc(), IncidentRecord.id.desc()] if descending else [key, IncidentRecord.id]
    return [
        key.desc() if descending else key.asc(),
        IncidentRecord.start_at.desc(),
        IncidentRecord.id.desc(),
    ]


def list_incidents(
    db: Session,
    filters: IncidentFilters,
    *,
    sort: str = DEFAULT_SORT,
    page: int = 1,
    per_page: int = 50,
    site_scope: str | None,
) -> IncidentPage:
    """One page of the review queue; a page past the end has no items (``ValueError`` for a
    bad sort, page or page size)."""
    window = Window(page, per_page)
    order = incident_order(sort)
    conditions = incident_conditions(filters, site_scope, db.get_bind().dialect.name)
    total = db.scalar(select(func.count()).select_from(IncidentRecord).where(*conditions)) or 0
    ids = list(
        db.scalars(
            _page_ids(conditions, filters, site_scope)
            .order_by(*order)
            .limit(window.per_page)
            .offset(window.offset)
        )
    )
    items: tuple[IncidentSummary, ...] = ()
    if ids:
        rows = {
            row.id: row
            for row in db.execute(select(*SUMMARY_COLUMNS).where(IncidentRecord.id.in_(ids)))
        }
        items = tuple(summary_of(rows[incident_id]) for incident_id in ids)
    low_hidden = 0
    if filters.levels and Level.LOW not in filters.levels:
        low_only = replace(filters, levels=(Level.LOW.value,))
        low_conditions = incident_conditions(low_only, site_scope, db.get_bind().dialect.name)
        low_hidden = (
            db.scalar(select(func.count()).select_from(IncidentRecord).where(*low_conditions)) or 0
        )
    return IncidentPage(
        items=items,
        total=total,
        page=window.page,
        per_page=window.per_page,
        pages=window.pages(total),
        sort=sort,
        filters=filters,
        low_hidden=low_hidden,
    )


def _page_ids(
    conditions: list[ColumnElement[bool]], filters: IncidentFilters, site_scope: str | None
) -> Select[int]:
    """The ids of the queue's rows, before ORDER BY and the page window.

    A device search first collects the matching ids from the device index (which holds every
    searched column), then walks the (site's) rows in sort order keeping those: walking in sort
    order and testing each row would read the whole table when few rows match.
    """
    if not filters.device:
        return select(IncidentRecord.id).where(*conditions)
    site = site_scope if site_scope is not None else filters.site
    matching = select(IncidentRecord.id).where(*conditions)
    return select(IncidentRecord.id).where(
        site_condition(IncidentRecord.site, site), IncidentRecord.id.in_(matching)
    )


def incident_sites(db: Session, site_scope: str | None) -> tuple[str, ...]:
    """The sites that have incidents, by name: the choices of the queue's site filter."""
    query = select(IncidentRecord.site).where(site_condition(IncidentRecord.site, site_scope))
    return tuple(db.scalars(query.distinct().order_by(IncidentRecord.site)))
