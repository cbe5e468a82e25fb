"""The demo clock: now in school time, else a moment of the last school day's hours."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from monitor.demo.clock import NoSchoolDay, demo_time, school_periods
from monitor.policy import SchoolCalendar

LONDON = ZoneInfo("Europe/London")
WEEKDAYS_8_TO_4 = {day: [(time(8, 0), time(16, 0))] for day in range(5)}


def at(text: str) -> float:
    """A London wall-clock time as a timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


def shown(ts: float) -> str:
    return datetime.fromtimestamp(ts, LONDON).strftime("%a %Y-%m-%d %H:%M:%S")


def calendar(**kwargs: object) -> SchoolCalendar:
    hours = kwargs.pop("hours", WEEKDAYS_8_TO_4)
    return SchoolCalendar("Europe/London", hours, **kwargs)  # type: ignore[arg-type]


def test_in_school_time_the_demo_time_is_now() -> None:
    now = at("2026-12-02 10:15:00")  # a Wednesday
    assert demo_time(now, calendar()) == now


def test_on_a_saturday_evening_it_is_a_moment_of_fridays_hours() -> None:
    # Friday 08:00 to Saturday 19:00 is 35 h; wrapped round an 8-hour day: 3 h in, 11:00.
    assert shown(demo_time(at("2026-12-05 19:00:00"), calendar())) == "Fri 2026-12-04 11:00:00"


def test_after_school_it_is_a_moment_of_the_same_days_hours() -> None:
    assert shown(demo_time(at("2026-12-02 17:30:00"), calendar())) == "Wed 2026-12-02 09:30:00"


def test_before_school_it_is_the_previous_school_day() -> None:
    assert shown(demo_time(at("2026-12-07 07:00:00"), calendar())).startswith("Fri 2026-12-04")


def test_it_advances_at_the_real_rate_between_wraps() -> None:
    cal = calendar()
    start = at("2026-12-05 19:00:00")
    assert demo_time(start + 600, cal) - demo_time(start, cal) == pytest.approx(600)


def test_it_wraps_round_the_days_hours_and_never_leaves_them() -> None:
    cal = calendar(closures={date(2026, 12, 3)})
    now = at("2026-11-30 00:00:00")
    while now < at("2026-12-14 00:00:00"):
        assert cal.is_school_time(demo_time(now, cal)), shown(now)
        now += 997  # about a quarter of an hour, never in step with the day


def test_a_lunch_break_maps_into_the_mornings_hours() -> None:
    split = {0: [(time(8, 0), time(12, 0)), (time(13, 0), time(16, 0))]}
    monday_lunch = at("2026-11-30 12:30:00")
    assert shown(demo_time(monday_lunch, calendar(hours=split))) == "Mon 2026-11-30 08:30:00"


def test_closures_and_terms_are_skipped() -> None:
    cal = calendar(terms=[(date(2026, 9, 1), date(2026, 12, 18))], closures={date(2026, 12, 18)})
    assert shown(demo_time(at("2026-12-25 12:00:00"), cal)).startswith("Thu 2026-12-17")


def test_a_day_ending_at_midnight_counts_whole() -> None:
    all_day = {day: [(time(0, 0), time.max)] for day in range(7)}
    assert school_periods(calendar(hours=all_day), date(2026, 12, 2))[0][1] == at(
        "2026-12-03 00:00:00"
    )


def test_a_calendar_without_school_days_says_what_to_check() -> None:
    no_school = calendar(hours={})
    with pytest.raises(
        NoSchoolDay, match=r"no school day .* check calendar.hours and calendar.terms"
    ):
        demo_time(at("2026-12-02 10:00:00"), no_school)


def test_school_periods_of_a_closed_day_are_empty() -> None:
    cal = calendar(closures={date(2026, 12, 2)})
    assert school_periods(cal, date(2026, 12, 2)) == []
    assert school_periods(cal, date(2026, 12, 1)) == [
        (at("2026-12-01 08:00:00"), at("2026-12-01 16:00:00"))
    ]
