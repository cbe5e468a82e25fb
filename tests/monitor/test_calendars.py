"""Closure dates from the gov.uk bank holidays JSON and from iCalendar files."""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.calendars import GOVUK_DIVISIONS, parse_govuk_bank_holidays, parse_ical_closures

DATA = Path(__file__).resolve().parents[1] / "data" / "calendars"
BANK_HOLIDAYS = (DATA / "bank-holidays.json").read_text(encoding="utf-8")
CLOSURES_ICS = (DATA / "closures.ics").read_text(encoding="utf-8")


def ics(*events: str) -> str:
    """A minimal calendar around the given VEVENT bodies (one property per line)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//test//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event.strip().splitlines(), "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


# --- gov.uk bank holidays ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("division", "count", "included", "excluded"),
    [
        ("england-and-wales", 11, date(2026, 8, 31), date(2026, 11, 30)),
        ("scotland", 9, date(2026, 11, 30), date(2026, 4, 6)),
        ("northern-ireland", 10, date(2026, 3, 17), date(2026, 1, 2)),
    ],
)
def test_parse_govuk_bank_holidays_reads_one_division(
    division: str, count: int, included: date, excluded: date
) -> None:
    holidays = parse_govuk_bank_holidays(BANK_HOLIDAYS, division)
    days = [day for day, _ in holidays]
    assert len(holidays) == count
    assert included in days
    assert excluded not in days


def test_parse_govuk_bank_holidays_keeps_titles_and_file_order() -> None:
    holidays = parse_govuk_bank_holidays(BANK_HOLIDAYS, "england-and-wales")
    assert holidays[:2] == [
        (date(2026, 1, 1), "New Year’s Day"),
        (date(2026, 4, 3), "Good Friday"),
    ]
    assert (date(2026, 12, 28), "Boxing Day") in holidays  # the substitute day


def test_govuk_divisions_are_the_ones_in_the_sample() -> None:
    assert set(json.loads(BANK_HOLIDAYS)) == set(GOVUK_DIVISIONS)


@pytest.mark.parametrize(
    ("text", "division", "message"),
    [
        ("{not json", "england-and-wales", "line 1: not JSON"),
        ('[{"division": "x"}]', "england-and-wales", "expected a JSON object"),
        (
            '{"scotland": {"events": []}}',
            "wales",
            "no division 'wales' in the file; it has: scotland",
        ),
        ('{"scotland": {"events": {}}}', "scotland", "scotland: expected an 'events' list"),
        ('{"scotland": []}', "scotland", "scotland: expected an 'events' list"),
        ('{"scotland": {"events": [1]}}', "scotland", r"scotland.events\[0\]: expected an object"),
        (
            '{"scotland": {"events": [{"title": "x"}]}}',
            "scotland",
            r"scotland.events\[0\]: needs a 'title' and a 'date'",
        ),
        (
            '{"scotland": {"events": [{"title": "Burns", "date": "2026-01-01"},'
            ' {"title": "St Andrew", "date": "30/11/2026"}]}}',
            "scotland",
            r"scotland.events\[1\] \('St Andrew'\): date '30/11/2026' is not YYYY-MM-DD",
        ),
    ],
)
def test_parse_govuk_bank_holidays_malformed_says_where(
    text: str, division: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_govuk_bank_holidays(text, division)


@given(st.text(max_size=200))
def test_parse_govuk_bank_holidays_arbitrary_text_value_or_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_govuk_bank_holidays(text, "england-and-wales")


# --- iCalendar -----------------------------------------------------------------------------


def test_parse_ical_closures_reads_the_sample_school_calendar() -> None:
    assert parse_ical_closures(CLOSURES_ICS, "Europe/London") == [
        (date(2026, 9, 2), date(2026, 9, 2), "INSET day"),
        (date(2026, 10, 26), date(2026, 10, 30), "Half term"),  # DTEND 31st is exclusive
        (date(2026, 11, 2), date(2026, 11, 2), "INSET day"),  # no DTEND: one day
        (date(2026, 11, 19), date(2026, 11, 19), "Closed: polling station"),  # timed
    ]


@pytest.mark.parametrize(
    ("event", "tz", "expected"),
    [
        # all-day, one day, DTEND exclusive
        (
            "DTSTART;VALUE=DATE:20261102\nDTEND;VALUE=DATE:20261103",
            None,
            ("2026-11-02", "2026-11-02"),
        ),
        # all-day over a week (Monday to Friday)
        (
            "DTSTART;VALUE=DATE:20261026\nDTEND;VALUE=DATE:20261031",
            None,
            ("2026-10-26", "2026-10-30"),
        ),
        # all-day given as a duration
        ("DTSTART;VALUE=DATE:20261026\nDURATION:P2D", None, ("2026-10-26", "2026-10-27")),
        # all-day without an end: one day
        ("DTSTART;VALUE=DATE:20261102", None, ("2026-11-02", "2026-11-02")),
        # all-day with DTEND equal to DTSTART: one day
        (
            "DTSTART;VALUE=DATE:20261102\nDTEND;VALUE=DATE:20261102",
            None,
            ("2026-11-02", "2026-11-02"),
        ),
        # timed, inside one day
        ("DTSTART:20261119T080000\nDTEND:20261119T160000", None, ("2026-11-19", "2026-11-19")),
        # timed across midnight: both dates
        ("DTSTART:20261119T200000\nDTEND:20261120T020000", None, ("2026-11-19", "2026-11-20")),
        # timed, ending exactly at midnight: only the first date
        ("DTSTART:20261119T200000\nDTEND:20261120T000000", None, ("2026-11-19", "2026-11-19")),
        # UTC late evening in summer is the next day in London (BST, UTC+1)
        (
            "DTSTART:20260630T233000Z\nDTEND:20260630T234500Z",
            "Europe/London",
            ("2026-07-01", "2026-07-01"),
        ),
        # ... and the same day in its own zone when no zone is given
        ("DTSTART:20260630T233000Z\nDTEND:20260630T234500Z", None, ("2026-06-30", "2026-06-30")),
        # timed with no end: an instant, its date
        (
            "DTSTART;TZID=Europe/London:20261119T090000",
            "Europe/London",
            ("2026-11-19", "2026-11-19"),
        ),
    ],
)
def test_parse_ical_closures_event_days(
    event: str, tz: str | None, expected: tuple[str, str]
) -> None:
    [(first, last, summary)] = parse_ical_closures(ics("SUMMARY:Closed\n" + event), tz)
    assert (first.isoformat(), last.isoformat()) == expected
    assert summary == "Closed"


def test_parse_ical_closures_without_summary_gives_empty_reason() -> None:
    assert parse_ical_closures(ics("DTSTART;VALUE=DATE:20261102")) == [
        (date(2026, 11, 2), date(2026, 11, 2), "")
    ]


def test_parse_ical_closures_of_an_empty_calendar_is_empty() -> None:
    assert parse_ical_closures(ics()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an iCalendar file"),
        ("hello", "not an iCalendar file"),
        (ics("SUMMARY:Staff day"), "event 'Staff day' at line 4: .*DTSTART"),
        (
            ics(
                "SUMMARY:ok\nDTSTART;VALUE=DATE:20261102",
                "SUMMARY:Weekly\nDTSTART;VALUE=DATE:20261102\nRRULE:FREQ=WEEKLY",
            ),
            "event 'Weekly' at line 8: recurring events are not supported",
        ),
        (
            ics("SUMMARY:Odd\nDTSTART;VALUE=DATE:20261105\nDTEND;VALUE=DATE:20261102"),
            "event 'Odd' at line 4: DTEND 2026-11-02 is before DTSTART 2026-11-05",
        ),
        (ics("SUMMARY:Typo\nDTSTART;VALUE=DATE:2026xx02"), "event 'Typo' at line 4"),
        (
            ics("SUMMARY:Mixed\nDTSTART;VALUE=DATE:20261102\nDTEND:20261102T120000"),
            "event 'Mixed' at line 4: DTSTART and DTEND must be of the same type",
        ),
    ],
)
def test_parse_ical_closures_malformed_names_event_and_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ical_closures(text)


def test_parse_ical_closures_unknown_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        parse_ical_closures(ics(), "Mars/Base")


@given(st.text(max_size=300))
def test_parse_ical_closures_arbitrary_text_value_or_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_ical_closures(text)


@given(st.lists(st.sampled_from(CLOSURES_ICS.splitlines()), max_size=40))
def test_parse_ical_closures_shuffled_lines_value_or_value_error(lines: list[str]) -> None:
    with contextlib.suppress(ValueError):
        parse_ical_closures("\r\n".join(lines))
