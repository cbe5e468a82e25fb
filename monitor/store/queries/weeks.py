"""School weeks and local days as UTC instants: the windows reports and filters query by.

Times are stored in UTC, but a school thinks in its own days and weeks ("last week", "from
Monday 3rd"). These helpers turn ISO week names (``2026-W47``) and local dates into half-open
UTC ranges ``[start, end)``, daylight saving included, so that every query compares UTC
columns with UTC bounds and can use its indexes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")
"""``2026-W47``: a year, ``-W`` and a two-digit week number."""


def parse_iso_week(iso_week: str) -> tuple[date, date]:
    """The Monday of ``iso_week`` and the Monday after it; ``ValueError`` if malformed."""
    found = ISO_WEEK.fullmatch(iso_week)
    if found is None:
        raise ValueError(f"{iso_week!r} is not an ISO week; write e.g. 2026-W47")
    year, week = int(found[1]), int(found[2])
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{iso_week!r}: {year} has no week {week}") from None
    return monday, monday + timedelta(days=7)


def iso_week_of(day: date) -> str:
    """The ISO week name of ``day``, e.g. ``2026-W47``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which ``day`` starts on the school's clocks."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day_range(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the local days ``first`` to ``last``, both included."""
    if last < first:
        raise ValueError(f"date range {first} to {last}: the end is before the start")
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def school_week(iso_week: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of ``iso_week``: local Monday 00:00 to the next Monday 00:00."""
    monday, next_monday = parse_iso_week(iso_week)
    return local_midnight(monday, tz), local_midnight(next_monday, tz)


def previous_week(now: datetime, tz: tzinfo) -> str:
    """The ISO week before the one ``now`` falls in, on the school's clocks ("2026-W47")."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now.isoformat()}: pass a timezone-aware value")
    return iso_week_of(now.astimezone(tz).date() - timedelta(days=7))


def local_days(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The local dates that ``[start, end)`` touches, in order (empty when ``end <= start``)."""
    if end <= start:
        return []
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
