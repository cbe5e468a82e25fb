"""ISO weeks, the default week, and which summary each role gets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.policy import SchoolCalendar
from monitor.reports.weekly import (
    GovernorWeeklySummary,
    ReportRole,
    ReviewerWeeklySummary,
    Week,
    build_weekly_summary,
    parse_week,
    previous_week,
    week_containing,
)
from tests.monitor.reports.conftest import SITE

LONDON = ZoneInfo("Europe/London")
WEEKDAYS_0800_1630 = {day: [(time(8), time(16, 30))] for day in range(5)}


class TestWeek:
    @pytest.mark.parametrize(
        ("text", "start", "end"),
        [
            ("2026-W47", date(2026, 11, 16), date(2026, 11, 22)),
            ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),
            ("2026-W53", date(2026, 12, 28), date(2027, 1, 3)),
            (" 2027-W01 ", date(2027, 1, 4), date(2027, 1, 10)),
        ],
    )
    def test_parse_week_gives_monday_to_sunday(self, text: str, start: date, end: date) -> None:
        week = parse_week(text)
        assert (week.start, week.last, week.iso) == (start, end, text.strip())
        assert week.end == end + timedelta(days=1)  # half-open, as every period
        assert week_containing(start) == week_containing(end) == week

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("2026-47", "'2026-47' is not an ISO week; write e.g. 2026-W47"),
            ("2026-W7", "'2026-W7' is not an ISO week"),
            ("2025-W53", "'2025-W53': 2025 has no week 53"),
            ("2026-W00", "'2026-W00': 2026 has no week 0"),
            ("", "'' is not an ISO week"),
        ],
    )
    def test_parse_week_refuses_what_is_not_a_week(self, text: str, message: str) -> None:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            parse_week(text)

    def test_week_before_crosses_the_year(self) -> None:
        assert parse_week("2027-W01").before() == Week(2026, 53)
        assert str(Week(2026, 5)) == "2026-W05"

    @pytest.mark.parametrize(
        ("now", "week"),
        [
            (datetime(2026, 11, 23, 7, tzinfo=UTC), "2026-W47"),
            (datetime(2026, 11, 22, 23, 59, tzinfo=UTC), "2026-W46"),
            # Sunday 23:30 UTC in summer is already Monday 00:30 in London.
            (datetime(2026, 6, 14, 23, 30, tzinfo=UTC), "2026-W24"),
        ],
    )
    def test_previous_week_is_on_the_school_clock(self, now: datetime, week: str) -> None:
        assert previous_week(now, LONDON).iso == week


class TestBuildWeeklySummary:
    def calendar(self) -> SchoolCalendar:
        # A closure on the Friday of 2026-W47.
        return SchoolCalendar("Europe/London", WEEKDAYS_0800_1630, (), [date(2026, 11, 20)])

    def test_build_weekly_summary_reviewer_version(self, school: Engine) -> None:
        with Session(school) as db:
            summary = build_weekly_summary(
                db,
                ReportRole.REVIEWER,
                parse_week("2026-W47"),
                school="Hill School",
                site=SITE,
                calendar=self.calendar(),
                public_url="https://hm.example/",
                today=date(2026, 11, 23),
            )
        assert isinstance(summary, ReviewerWeeklySummary)
        assert (summary.role, summary.school_days, summary.nothing_to_report) == (
            ReportRole.REVIEWER,
            4,
            False,
        )
        assert summary.incident_url(7) == "https://hm.example/incidents/7"
        # The closed Friday is no school day, so no day is missing data.
        assert summary.data.health.school_days_without_data == ()

    def test_build_weekly_summary_governor_version(self, school: Engine) -> None:
        with Session(school) as db:
            summary = build_weekly_summary(
                db,
                ReportRole.GOVERNOR,
                parse_week("2026-W47"),
                school="Hill School",
                site=SITE,
                calendar=self.calendar(),
                public_url="https://hm.example",
                today=date(2026, 11, 23),
            )
        assert isinstance(summary, GovernorWeeklySummary)
        assert summary.role is ReportRole.GOVERNOR
        assert summary.data.incidents == 5

    @pytest.mark.parametrize("role", list(ReportRole))
    def test_build_weekly_summary_empty_database_is_no_data_not_nothing_to_report(
        self, engine: Engine, role: ReportRole
    ) -> None:
        with Session(engine) as db:
            summary = build_weekly_summary(
                db,
                role,
                parse_week("2026-W47"),
                school="Hill School",
                site=SITE,
                calendar=self.calendar(),
                public_url="https://hm.example",
                today=date(2026, 11, 23),
            )
        assert summary.data.health.no_data
        assert not summary.nothing_to_report
