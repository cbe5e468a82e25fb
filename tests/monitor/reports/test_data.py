"""The report queries, on SQLite and PostgreSQL, and the governor types' privacy by type."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.reports.data import (
    GovernorReport,
    GovernorWeek,
    ReviewerWeek,
    load_coverage,
    load_governor_report,
    load_governor_week,
    load_reviewer_week,
)
from monitor.store.models import CheckRecord, DailyCounterRecord
from monitor.store.queries.governors import CheckRuns, PeriodCount
from monitor.store.queries.stats import Change, Count, DayCount
from tests.monitor.reports.conftest import SITE, STAFF_LAPTOP, WEEK_START, at, incident

LONDON = ZoneInfo("Europe/London")
WEEK_END = WEEK_START + timedelta(days=7)
"""The Monday after 2026-W47: periods are the local days ``[start, end)``."""
SCHOOL_DAYS = [WEEK_START + timedelta(days=n) for n in range(5)]
LATER = date(2027, 8, 31)
"""A day after every period these tests read: every day of them has happened."""

IDENTITY_WORDS = {"device", "ip", "mac", "host", "hostname", "label", "address", "client"}
"""A field whose name has one of these words (split on ``_``) could hold a device identity."""


def field_names(cls: type, seen: set[type] | None = None) -> set[str]:
    """Every field name of a dataclass and of the dataclasses inside it, recursively."""
    seen = seen if seen is not None else set()
    if cls in seen:
        return set()
    seen.add(cls)
    names: set[str] = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        names.add(field.name)
        for inner in _types_in(hints[field.name]):
            if dataclasses.is_dataclass(inner):
                names |= field_names(inner, seen)
    return names


def _types_in(hint: object) -> list[type]:
    args = typing.get_args(hint)
    if not args:
        return [hint] if isinstance(hint, type) else []
    return [t for arg in args for t in _types_in(arg)]


def test_a_period_ends_before_its_end_day_on_the_school_clock(school: Engine) -> None:
    # 00:30 on Monday 23 November in London is the week after 2026-W47, however close.
    with Session(school) as db:
        db.add(
            incident("w48-0", STAFF_LAPTOP, "instagram", datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
        )
        db.add(
            incident("w47-9", STAFF_LAPTOP, "instagram", datetime(2026, 11, 22, 23, 59, tzinfo=UTC))
        )
        db.commit()
        week = load_governor_week(
            db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
        )
        after = load_governor_week(
            db, WEEK_END, WEEK_END + timedelta(days=7), LONDON, [], site=SITE, today=LATER
        )
    assert (week.incidents, after.incidents) == (6, 1)
    assert week.stats.by_day[-1] == DayCount(date(2026, 11, 22), 1)


class TestPrivacyByType:
    @pytest.mark.parametrize("cls", [GovernorWeek, GovernorReport])
    def test_governor_types_have_no_identity_field(self, cls: type) -> None:
        names = field_names(cls)
        assert "by_platform" in names and "count" in names  # the walk reaches nested types
        flagged = sorted(n for n in names if IDENTITY_WORDS & set(n.split("_")))
        assert flagged == []

    def test_reviewer_type_does_carry_devices(self) -> None:
        names = field_names(ReviewerWeek)
        assert {"device_ip", "device_mac", "device_label"} <= names


class TestReviewerWeek:
    def test_load_reviewer_week_counts_and_compares(self, school: Engine) -> None:
        with Session(school) as db:
            week = load_reviewer_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
        assert (week.incidents, week.previous_incidents) == (5, 2)
        assert week.by_platform == (
            Change("instagram", 3, 1),
            Change("facebook", 1, 0),
            Change("tiktok", 1, 0),
            Change("x", 0, 1),
        )
        assert week.stats.by_segment == (Count("staff-wifi", 3), Count("pupil-wifi", 2))
        assert [d.count for d in week.stats.by_day] == [1, 1, 1, 2, 0, 0, 0]
        assert week.stats.by_day[0] == DayCount(WEEK_START, 1)

    def test_load_reviewer_week_busiest_devices_first(self, school: Engine) -> None:
        with Session(school) as db:
            week = load_reviewer_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
        top = [(d.name, d.incidents, d.active_minutes, d.platforms) for d in week.top_devices]
        assert top == [
            ("Room 4 laptop (Ms Okafor)", 2, 37.0, ("instagram",)),
            ("jaydens-iphone", 2, 24.0, ("instagram", "tiktok")),
            ("office-pc-7", 1, 12.0, ("facebook",)),
        ]

    def test_load_reviewer_week_review_queue_oldest_first(self, school: Engine) -> None:
        with Session(school) as db:
            week = load_reviewer_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, queue_limit=2, site=SITE, today=LATER
            )
        assert week.waiting_review_total == 3
        assert [(q.platform, q.device_name, q.status) for q in week.waiting_review] == [
            ("instagram", "Room 4 laptop (Ms Okafor)", "new"),
            ("instagram", "Room 4 laptop (Ms Okafor)", "new"),
        ]


class TestCaptureHealth:
    def test_load_coverage_sums_counters_and_finds_silent_days(self, school: Engine) -> None:
        with Session(school) as db:
            health = load_coverage(db, WEEK_START, WEEK_END, SCHOOL_DAYS, site=SITE, today=LATER)
        assert health.observations == 4 * (41_000 + 23_500 + 6_100)
        assert health.health.observations_by_proto == (
            Count("dns", 164_000),
            Count("tls", 94_000),
            Count("quic", 24_400),
        )
        assert health.school_days == 5
        assert health.school_days_without_data == (WEEK_START + timedelta(days=4),)
        assert health.health.counters == (
            Count("flags.ech", 480),
            Count("matches.outside_school_time", 140),
            Count("matches.unsegmented", 12),
        )

    def test_load_coverage_of_an_empty_database(self, engine: Engine) -> None:
        with Session(engine) as db:
            health = load_coverage(db, WEEK_START, WEEK_END, SCHOOL_DAYS, site=SITE, today=LATER)
        counters = health.health.counters
        assert (health.observations, counters, len(health.school_days_without_data)) == (
            0,
            (),
            5,
        )


class TestGovernorData:
    def test_load_governor_week_aggregates_only(self, school: Engine) -> None:
        with Session(school) as db:
            week = load_governor_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
        assert (week.incidents, week.previous_incidents, week.waiting_review_total) == (5, 2, 3)
        assert week.stats.by_role == (Count("staff", 3), Count("pupil", 2))
        assert week.stats.by_outcome == (
            Count("awaiting_review", 3),
            Count("false_positive", 1),
            Count("no_action", 1),
        )

    def test_load_governor_report_over_a_term(self, school: Engine) -> None:
        start, end = date(2026, 11, 2), date(2026, 11, 30)
        with Session(school) as db:
            report = load_governor_report(
                db, start, end, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
        assert report.incidents == 7
        assert report.summary.trend_step == "week"
        assert report.summary.trend == (
            PeriodCount(date(2026, 11, 2), date(2026, 11, 9), 0),
            PeriodCount(date(2026, 11, 9), date(2026, 11, 16), 2),
            PeriodCount(date(2026, 11, 16), date(2026, 11, 23), 5),
            PeriodCount(date(2026, 11, 23), date(2026, 11, 30), 0),
        )
        assert report.summary.checks == (
            CheckRuns("doctor", 1, 0, datetime(2026, 11, 19, 12, tzinfo=UTC), True),
            CheckRuns("selftest", 2, 1, datetime(2026, 11, 18, 7, tzinfo=UTC), False),
        )
        [change] = report.summary.list_changes
        assert (change.action, change.list_name, change.suffix, change.approved_by) == (
            "add",
            "allowlist",
            "education.instagram-partner.example",
            "head",
        )
        assert change.reason.startswith("Art department")

    def test_load_governor_report_over_a_year_goes_by_month(self, school: Engine) -> None:
        start, end = date(2026, 9, 1), date(2027, 9, 1)
        with Session(school) as db:
            report = load_governor_report(db, start, end, LONDON, [], site=SITE, today=LATER)
        assert report.summary.trend_step == "month"
        assert len(report.summary.trend) == 12
        assert report.summary.trend[2] == PeriodCount(date(2026, 11, 1), date(2026, 12, 1), 7)
        assert report.summary.trend[-1].end == end


OTHER_SITE = "Dale School"
"""Another school of the same trust, writing to the same database."""


def add_other_school(engine: Engine) -> None:
    """One incident, a day's counters and a failed self-test of ``OTHER_SITE`` in week 47."""
    monday = WEEK_START
    other = incident("dale-1", STAFF_LAPTOP, "bereal", at(monday, 11))
    other.site = OTHER_SITE
    with Session(engine) as db, db.begin():
        db.add_all(
            [
                other,
                DailyCounterRecord(
                    site=OTHER_SITE, day=monday, name="observations.dns", count=1_000
                ),
                CheckRecord(
                    at=at(monday, 8), kind="selftest", ok=False, detail="", username=None,
                    site=OTHER_SITE,
                ),
            ]
        )  # fmt: skip


class TestSites:
    """A school's reports count its own site; a trust office's (site None) counts every site."""

    def test_a_school_week_leaves_out_the_other_school(self, school: Engine) -> None:
        add_other_school(school)
        with Session(school) as db:
            week = load_reviewer_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
            governor = load_governor_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=SITE, today=LATER
            )
        assert "bereal" not in {p.key for p in week.by_platform}
        assert (week.incidents, governor.incidents) == (5, 5)
        assert (week.waiting_review_total, governor.waiting_review_total) == (3, 3)
        assert week.health.observations == 4 * (41_000 + 23_500 + 6_100)

    def test_the_trust_week_counts_every_school(self, school: Engine) -> None:
        add_other_school(school)
        with Session(school) as db:
            week = load_reviewer_week(
                db, WEEK_START, WEEK_END, LONDON, SCHOOL_DAYS, site=None, today=LATER
            )
        assert week.incidents == 6
        assert week.waiting_review_total == 4
        assert week.health.observations == 4 * (41_000 + 23_500 + 6_100) + 1_000

    def test_a_school_report_lists_its_own_checks(self, school: Engine) -> None:
        add_other_school(school)
        start, end = date(2026, 11, 2), date(2026, 11, 30)
        with Session(school) as db:
            own = load_governor_report(db, start, end, LONDON, SCHOOL_DAYS, site=SITE, today=LATER)
            trust = load_governor_report(
                db, start, end, LONDON, SCHOOL_DAYS, site=None, today=LATER
            )
        own_selftests = next(c for c in own.summary.checks if c.kind == "selftest")
        trust_selftests = next(c for c in trust.summary.checks if c.kind == "selftest")
        assert trust_selftests.runs == own_selftests.runs + 1
        assert trust_selftests.failures == own_selftests.failures + 1
        assert trust.incidents == own.incidents + 1
