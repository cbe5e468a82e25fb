"""When a report may say "no data": one rule for emails, the governors' report and the pages.

A day with no observation is "no data" (the sensor was probably not running) only once it has
begun: a day after ``today`` has simply not happened yet, so a report or page covering it says
nothing about it, and counts only the days so far ("data arrived on 3 of 3 school days so
far"). Today itself counts: by the time anyone reads, a working sensor has seen something.

In a trust, several schools share one database. A school that sent no data at all while
other schools did is told so in words (its sensor is down, or its ``site.name`` does not match
what the sensor records), rather than getting an ordinary "nothing to report".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date


def has_begun(day: date, today: date) -> bool:
    """Whether ``day`` can have data yet (today and the days before it)."""
    return day <= today


def is_day_without_data(day: date, observations: int, today: date) -> bool:
    """A day that has begun and on which nothing at all was observed."""
    return has_begun(day, today) and observations == 0


def days_without_data(counts: Iterable[tuple[date, int]], today: date) -> tuple[date, ...]:
    """The days of ``(day, observations)`` that are "no data", in order."""
    return tuple(day for day, n in counts if is_day_without_data(day, n, today))


def days_so_far(days: Iterable[date], today: date) -> list[date]:
    """The ``days`` that have begun."""
    return [day for day in days if has_begun(day, today)]


def is_silent_site(site: str | None, observations: int, other_sites_with_data: int) -> bool:
    """A report for one school (``site``) that saw nothing while other schools saw data."""
    return site is not None and observations == 0 and other_sites_with_data > 0
