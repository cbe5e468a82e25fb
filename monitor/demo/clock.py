"""The demo's clock: real time moved into the school day, so the sample becomes incidents.

Incidents are only opened in school time. A newcomer who runs ``hallmonitor up --demo`` on a
Saturday evening must still see some within a minute, so the demo stamps its replayed frames
with ``demo_time(now)``:

- in school time (``SchoolCalendar.is_school_time``), the demo time is now;
- otherwise it is a moment in the hours of the most recent school day: the periods of that day
  that have ended, laid end to end, with the time since the day's first period began wrapped
  around their total length. It advances at the real rate, so the incidents grow as they
  would, and jumps back only when it wraps (once per school day's length).

Pure: the calendar and ``now`` come in, nothing is read.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from monitor.policy import SchoolCalendar

LOOKBACK_DAYS = 400
"""How far back to look for a school day (a year of terms and holidays, and then some)."""


class NoSchoolDay(ValueError):
    """The calendar has no school day in the last ``LOOKBACK_DAYS``: nothing would be flagged."""


def school_periods(calendar: SchoolCalendar, day: date) -> list[tuple[float, float]]:
    """The school-hour ranges of ``day`` as UTC ``[start, end)`` timestamps (none if closed)."""
    if not calendar.is_school_day(day):
        return []
    periods = []
    for start, end in calendar.hours[day.weekday()]:
        begin = datetime.combine(day, start, calendar.zone)
        if end == time.max:  # "24:00": the end of the day
            finish = datetime.combine(day + timedelta(days=1), time(0), calendar.zone)
        else:
            finish = datetime.combine(day, end, calendar.zone)
        periods.append((begin.timestamp(), finish.timestamp()))
    return periods


def demo_time(now: float, calendar: SchoolCalendar) -> float:
    """``now`` if it is school time, else the matching moment of the last school day's hours.

    ``NoSchoolDay`` when no school day has ended in the last ``LOOKBACK_DAYS`` days.
    """
    if calendar.is_school_time(now):
        return now
    today = datetime.fromtimestamp(now, calendar.zone).date()
    for back in range(LOOKBACK_DAYS + 1):
        ended = [p for p in school_periods(calendar, today - timedelta(days=back)) if p[1] <= now]
        if ended:
            return _wrap(now, ended)
    raise NoSchoolDay(
        f"the calendar has no school day in the {LOOKBACK_DAYS} days before "
        f"{today.isoformat()}, so the demo would flag nothing: check calendar.hours and "
        "calendar.terms"
    )


def _wrap(now: float, periods: list[tuple[float, float]]) -> float:
    total = sum(end - start for start, end in periods)
    offset = (now - periods[0][0]) % total
    for start, end in periods:
        if offset < end - start:
            return start + offset
        offset -= end - start
    return periods[-1][1]  # not reached: offset < total
