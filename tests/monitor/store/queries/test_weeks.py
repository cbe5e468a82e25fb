"""School weeks and local days become UTC ranges, daylight saving included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.store.queries.weeks import (
    iso_week_of,
    local_day_range,
    local_days,
    parse_iso_week,
    previous_week,
    school_week,
)

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("week", "start", "end"),
    [
        # winter: GMT, local midnight is UTC midnight
        ("2026-W47", datetime(2026, 11, 16, 0, tzinfo=UTC), datetime(2026, 11, 23, 0, tzinfo=UTC)),
        # summer: BST, local midnight is 23:00 UTC the day before
        ("2026-W27", datetime(2026, 6, 28, 23, tzinfo=UTC), datetime(2026, 7, 5, 23, tzinfo=UTC)),
        # the clocks go forward on Sunday 29 March 2026: the week is an hour short
        ("2026-W13", datetime(2026, 3, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 23, tzinfo=UTC)),
        # ISO week 1 of 2027 starts on Monday 4 January; 2026 has 53 weeks
        ("2026-W53", datetime(2026, 12, 28, 0, tzinfo=UTC), datetime(2027, 1, 4, 0, tzinfo=UTC)),
    ],
)
def test_school_week_is_local_monday_to_monday(week: str, start: datetime, end: datetime) -> None:
    assert school_week(week, LONDON) == (start, end)


@pytest.mark.parametrize("week", ["2026-47", "2026-W7", "2026W47", "26-W47", "2026-W47 ", "", "2025-W53", "2026-W00", "2026-W54"])  # fmt: skip
def test_parse_iso_week_refuses_malformed_weeks(week: str) -> None:
    with pytest.raises(ValueError, match="week"):
        parse_iso_week(week)


@pytest.mark.parametrize(
    ("now", "week"),
    [
        (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "2026-W47"),  # Monday 07:00 report
        (datetime(2026, 11, 22, 23, 30, tzinfo=UTC), "2026-W46"),  # still Sunday in London
        (datetime(2026, 6, 28, 23, 30, tzinfo=UTC), "2026-W26"),  # already Monday in London (BST)
        (datetime(2027, 1, 4, 7, 0, tzinfo=UTC), "2026-W53"),
    ],
)
def test_previous_week_is_the_week_before_on_the_school_clock(now: datetime, week: str) -> None:
    assert previous_week(now, LONDON) == week


def test_previous_week_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        previous_week(datetime(2026, 11, 23), LONDON)  # noqa: DTZ001 - the point of the test


def test_iso_week_of_pads_the_week_number() -> None:
    assert iso_week_of(date(2026, 1, 7)) == "2026-W02"


def test_local_day_range_includes_both_days() -> None:
    assert local_day_range(date(2026, 7, 1), date(2026, 7, 2), LONDON) == (
        datetime(2026, 6, 30, 23, tzinfo=UTC),
        datetime(2026, 7, 2, 23, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="end is before the start"):
        local_day_range(date(2026, 7, 2), date(2026, 7, 1), LONDON)


def test_local_days_lists_every_day_touched() -> None:
    start, end = school_week("2026-W27", LONDON)
    assert local_days(start, end, LONDON) == [date(2026, 6, 29 + n) for n in range(2)] + [
        date(2026, 7, n) for n in range(1, 6)
    ]
    assert local_days(end, start, LONDON) == []
