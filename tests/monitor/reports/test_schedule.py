"""The weekly schedule (pure): which reports are due, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config.review import ReportSettings
from monitor.reports.schedule import DueReport, Recipient, due_reports
from monitor.reports.weekly import ReportRole, Week, parse_week
from tests.monitor.reports.sent import GOVERNOR, HEAD, MONDAY_0705

PEOPLE = [Recipient(HEAD, ReportRole.REVIEWER), Recipient(GOVERNOR, ReportRole.GOVERNOR)]


# --- the schedule --------------------------------------------------------------------------


class TestDueReports:
    @pytest.mark.parametrize(
        ("now", "week"),
        [
            # Before Monday 07:00, last Monday's report (of the week before last) is the due one.
            (datetime(2026, 11, 23, 6, 59, tzinfo=UTC), "2026-W46"),
            (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "2026-W47"),
            # After downtime, the missed report is due when the process starts again.
            (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), "2026-W47"),
            (datetime(2026, 11, 29, 23, 59, tzinfo=UTC), "2026-W47"),
            # Clocks go forward on 29 March 2026: Monday 07:00 BST is 06:00 UTC.
            (datetime(2026, 3, 30, 5, 59, tzinfo=UTC), "2026-W12"),
            (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "2026-W13"),
            # Clocks go back on 25 October 2026: Monday 07:00 GMT is 07:00 UTC again.
            (datetime(2026, 10, 26, 6, 59, tzinfo=UTC), "2026-W42"),
            (datetime(2026, 10, 26, 7, 0, tzinfo=UTC), "2026-W43"),
            # New year: week 53 of 2026 is reported on Monday 4 January 2027.
            (datetime(2027, 1, 4, 7, 0, tzinfo=UTC), "2026-W53"),
        ],
    )
    def test_due_reports_default_monday_0700_london_across_the_clock_change(
        self, now: datetime, week: str
    ) -> None:
        due = due_reports(now, "Europe/London", ReportSettings(), set(), PEOPLE)
        assert {(d.week.iso, d.recipient) for d in due} == {(week, HEAD), (week, GOVERNOR)}

    def test_due_reports_records_the_local_send_time(self) -> None:
        now = datetime(2026, 6, 10, 12, tzinfo=UTC)
        [due] = due_reports(now, "Europe/London", ReportSettings(), set(), PEOPLE[:1])
        assert due == DueReport(
            Week(2026, 23), HEAD, ReportRole.REVIEWER, datetime(2026, 6, 8, 6, tzinfo=UTC)
        )

    def test_due_reports_skips_what_is_recorded(self) -> None:
        sent = {("2026-W47", HEAD)}
        due = due_reports(MONDAY_0705, "Europe/London", ReportSettings(), sent, PEOPLE)
        assert [d.recipient for d in due] == [GOVERNOR]

    def test_due_reports_other_day_and_zone(self) -> None:
        reports = ReportSettings(weekly_day="friday", weekly_time="16:30")
        new_york = "America/New_York"
        before = datetime(2026, 11, 27, 21, 29, tzinfo=UTC)  # Friday 16:29 EST
        assert {d.week.iso for d in due_reports(before, new_york, reports, set(), PEOPLE)} == {
            "2026-W46"
        }
        after = before + timedelta(minutes=1)
        assert {d.week.iso for d in due_reports(after, new_york, reports, set(), PEOPLE)} == {
            "2026-W47"
        }


def test_parse_week_round_trips() -> None:
    assert parse_week("2026-W47").iso == "2026-W47"
