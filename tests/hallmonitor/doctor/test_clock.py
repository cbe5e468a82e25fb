"""`hallmonitor doctor`'s time check: zone, synchronised clock, what today is for the school."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from hallmonitor.doctor.clock import (
    build_date,
    check_time,
    clock_synchronised,
    judge_sync,
    judge_time,
    school_today,
)
from monitor.policy import SchoolCalendar
from tests.hallmonitor.doctor.sensor import (
    settings,
)

# --- time -----------------------------------------------------------------------------------

WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


BUILT = datetime(2026, 11, 24, tzinfo=UTC)


def test_a_synchronised_clock_in_a_known_zone_passes() -> None:
    assert judge_time("Europe/London", WEDNESDAY, True, BUILT) == ([], "")


def test_unknown_synchronisation_still_passes() -> None:
    assert judge_time("Europe/London", WEDNESDAY, None, BUILT) == ([], "")


def test_an_unknown_time_zone_fails() -> None:
    problems, fix = judge_time("Europe/Atlantis", WEDNESDAY, True, BUILT)
    assert problems == ["'Europe/Atlantis' is not a known time zone"]
    assert fix.startswith("set calendar.timezone to an IANA name")


def test_an_unsynchronised_clock_fails_with_how_to_enable_ntp() -> None:
    problems, fix = judge_time("Europe/London", WEDNESDAY, False, BUILT)
    assert problems == ["the system clock is not synchronised (NTP)"]
    assert "timedatectl set-ntp true" in fix


def test_a_clock_before_this_version_was_made_fails() -> None:
    problems, _ = judge_time("Europe/London", datetime(2020, 1, 1, tzinfo=UTC), True, BUILT)
    assert problems == [
        "the clock says 2020-01-01 00:00 UTC, before this version was made (2026-11-24)"
    ]


def test_a_clock_decades_ahead_fails() -> None:
    problems, _ = judge_time("Europe/London", datetime(2070, 1, 1, tzinfo=UTC), True, BUILT)
    assert problems == ["the clock says 2070-01-01, over ten years after this version was made"]


def test_kernel_sync_state_follows_sta_unsync_and_the_error_bound() -> None:
    assert judge_sync(0x0001, 200_000)
    assert not judge_sync(0x0040, 200_000)
    assert not judge_sync(0x0001, 16_000_000)


def test_the_real_clock_probe_answers_yes_no_or_unknown() -> None:
    assert clock_synchronised() in (True, False, None)


def test_the_build_date_is_the_newest_migrations_date() -> None:
    assert datetime(2026, 11, 24, 4, 0, tzinfo=UTC) <= build_date() <= datetime.now(UTC)


def test_the_time_check_passes_and_says_what_today_is(tmp_path: Path) -> None:
    result = check_time(settings(tmp_path), now=WEDNESDAY, synchronised=lambda: True, built=BUILT)
    assert result.ok
    assert result.detail == (
        "10:00 GMT in Europe/London, clock synchronised; "
        "today (Wednesday 2 December 2026) is a school day, 08:00-16:30"
    )


def test_the_time_check_fails_on_an_unsynchronised_clock_and_still_says_what_today_is(
    tmp_path: Path,
) -> None:
    result = check_time(settings(tmp_path), now=WEDNESDAY, synchronised=lambda: False, built=BUILT)
    assert not result.ok
    assert result.detail == (
        "the system clock is not synchronised (NTP); 10:00 GMT in Europe/London; "
        "today (Wednesday 2 December 2026) is a school day, 08:00-16:30"
    )


CALENDAR = SchoolCalendar(
    "Europe/London",
    {0: [(time(8, 0), time(12, 15)), (time(13, 0), time.max)], 2: [(time(8, 0), time(16, 30))]},
    terms=[(date(2026, 9, 3), date(2026, 12, 18))],
    closures={date(2026, 12, 9)},
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (
            datetime(2026, 11, 30, 9, tzinfo=UTC),
            "today (Monday 30 November 2026) is a school day, 08:00-12:15, 13:00-24:00",
        ),
        (
            datetime(2026, 12, 5, 9, tzinfo=UTC),
            "today (Saturday 5 December 2026) is not a school day: no hours on Saturdays",
        ),
        (
            datetime(2026, 12, 9, 9, tzinfo=UTC),
            "today (Wednesday 9 December 2026) is not a school day: INSET day",
        ),
        (
            datetime(2026, 12, 23, 9, tzinfo=UTC),
            "today (Wednesday 23 December 2026) is not a school day: outside the terms",
        ),
    ],
)
def test_school_today_says_whether_and_why(now: datetime, expected: str) -> None:
    assert school_today(CALENDAR, now, {date(2026, 12, 9): "INSET day"}) == expected
