"""Parsers for the files a school already has that say when it is closed.

Two formats: the gov.uk bank holidays JSON (``https://www.gov.uk/bank-holidays.json``) and an
iCalendar file exported from the school's calendar (INSET days, closures). Both are pure: they
take text and return dates; reading the files is ``monitor.config.rules.load_closures``'s job. Errors
are ``ValueError`` naming the event or line, so ``hallmonitor config check`` can point at it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

GOVUK_DIVISIONS = ("england-and-wales", "scotland", "northern-ireland")
"""The divisions the gov.uk file has; each has its own bank holidays."""


def parse_govuk_bank_holidays(text: str, division: str) -> list[tuple[date, str]]:
    """The bank holidays of one division, as ``(date, title)`` in file order.

    The format: ``{"england-and-wales": {"division": ..., "events": [{"title", "date",
    "notes", "bunting"}, ...]}, "scotland": ..., "northern-ireland": ...}``.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"line {e.lineno}: not JSON: {e.msg}") from e
    if not isinstance(document, dict):
        raise ValueError("not the gov.uk bank holidays format: expected a JSON object")
    if division not in document:
        found = ", ".join(str(key) for key in document) or "none"
        raise ValueError(f"no division {division!r} in the file; it has: {found}")
    section = document[division]
    events = section.get("events") if isinstance(section, dict) else None
    if not isinstance(events, list):
        raise ValueError(f"{division}: expected an 'events' list")
    holidays: list[tuple[date, str]] = []
    for index, event in enumerate(events):
        where = f"{division}.events[{index}]"
        if not isinstance(event, dict):
            raise ValueError(f"{where}: expected an object with 'title' and 'date'")
        title = event.get("title")
        day = event.get("date")
        if not isinstance(title, str) or not isinstance(day, str):
            raise ValueError(f"{where}: needs a 'title' and a 'date' string")
        try:
            holidays.append((date.fromisoformat(day), title))
        except ValueError as e:
            raise ValueError(f"{where} ({title!r}): date {day!r} is not YYYY-MM-DD") from e
    return holidays


def parse_ical_closures(text: str, tz: str | None = None) -> list[tuple[date, date, str]]:
    """Every VEVENT as a closure ``(first day, last day inclusive, summary)``, in file order.

    All-day events use the iCalendar rule that DTEND is exclusive (an event from 2 to 4 November
    closes the 2nd and 3rd); an all-day event without DTEND or DURATION is one day. A timed event
    closes every date it touches, read in ``tz`` when given (else in the event's own zone).
    Recurring events (RRULE, RDATE) are refused: export the calendar with recurrences expanded.
    """
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ValueError(f"not an iCalendar file: {e}") from e
    if not isinstance(calendar, icalendar.Calendar):
        raise ValueError(f"not an iCalendar file: starts with {calendar.name}, not VCALENDAR")
    try:
        zone = ZoneInfo(tz) if tz else None
    except (ValueError, KeyError) as e:
        raise ValueError(f"unknown time zone {tz!r}") from e
    begin_lines = _vevent_lines(text)
    closures: list[tuple[date, date, str]] = []
    for index, event in enumerate(calendar.events):
        summary = str(event.get("SUMMARY", "")).strip()
        line = begin_lines[index] if index < len(begin_lines) else 0
        where = f"event {summary or index + 1!r} at line {line}"
        if "RRULE" in event or "RDATE" in event:
            raise ValueError(f"{where}: recurring events are not supported; expand them")
        try:
            start, end = event.start, event.end
        except (ValueError, KeyError, TypeError) as e:
            said = str(e)
            if said[1:2].islower():  # "No DTSTART given." but not "DTSTART and ..."
                said = said[:1].lower() + said[1:]
            raise ValueError(f"{where}: {said}") from e
        closures.append((*_days(start, end, zone, where), summary))
    return closures


def _days(
    start: date | datetime, end: date | datetime, zone: ZoneInfo | None, where: str
) -> tuple[date, date]:
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise ValueError(f"{where}: DTSTART and DTEND must both be dates or both date-times")
    try:
        backwards = end < start
    except TypeError as e:  # one with a time zone, one without
        raise ValueError(f"{where}: {e}") from e
    if backwards:
        raise ValueError(f"{where}: DTEND {end} is before DTSTART {start}")
    if isinstance(start, datetime) and isinstance(end, datetime):
        if zone is not None and start.tzinfo is not None:
            start, end = start.astimezone(zone), end.astimezone(zone)
        last = (end - timedelta(microseconds=1)).date() if end > start else start.date()
        return start.date(), last
    return start, (end - timedelta(days=1) if end > start else start)


def _vevent_lines(text: str) -> list[int]:
    """1-based line numbers of each ``BEGIN:VEVENT``, for messages."""
    return [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip().upper() == "BEGIN:VEVENT"
    ]
