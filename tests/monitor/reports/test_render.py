"""Rendering the weekly email (text, HTML, the message) and the governors' page, from values."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from monitor.reports.data import Coverage, GovernorReport, GovernorWeek, ReviewerWeek
from monitor.reports.labels import counter_label
from monitor.reports.render import (
    bar_percent,
    change,
    minutes,
    render_governors_report,
    render_weekly_email,
    render_weekly_html,
    render_weekly_text,
    weekly_subject,
)
from monitor.reports.weekly import GovernorWeeklySummary, ReviewerWeeklySummary, parse_week
from monitor.store.queries import governors as gq
from monitor.store.queries.incidents import IncidentSummary
from monitor.store.queries.stats import (
    CaptureHealth,
    Count,
    DayCount,
    DeviceActivity,
    IncidentStats,
)
from tests.monitor.reports.conftest import take_screenshot

WEEK = parse_week("2026-W47")
DAYS = [WEEK.start + timedelta(days=n) for n in range(7)]
URL = "https://hm.hill-school.example"
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)
SITE = "Hill School"


def health(*, silent: tuple[date, ...] = ()) -> Coverage:
    counted = CaptureHealth(
        start=WEEK.start,
        end=WEEK.end,
        observations_total=282_400,
        observations_by_proto=(Count("dns", 164_000), Count("tls", 118_400)),
        by_day=tuple(DayCount(d, 0) for d in DAYS),
        days_with_data=4,
        matches_outside_school_time=140,
        matches_unsegmented=0,
        matches_not_flagged=0,
        flags=(Count("ech", 480),),
        other=(),
    )
    return Coverage(counted, school_days=5, school_days_without_data=silent, site=SITE)


def stats(*, empty: bool = False) -> IncidentStats:
    return IncidentStats(
        start=datetime(2026, 11, 16, tzinfo=UTC),
        end=datetime(2026, 11, 23, tzinfo=UTC),
        total=0 if empty else 5,
        by_platform=() if empty else (Count("instagram", 3), Count("tiktok", 2)),
        by_segment=() if empty else (Count("staff-wifi", 3), Count("pupil-wifi", 2)),
        by_role=() if empty else (Count("staff", 3), Count("pupil", 2)),
        by_day=tuple(
            DayCount(d, 0 if empty else [1, 1, 1, 2, 0, 0, 0][i]) for i, d in enumerate(DAYS)
        ),
        by_site=() if empty else (Count(SITE, 5),),
        open_items=0 if empty else 3,
        previous_total=0 if empty else 2,
        previous_by_platform=() if empty else (Count("instagram", 1), Count("x", 1)),
        by_outcome=() if empty else (Count("awaiting_review", 3), Count("no_action", 2)),
    )


def queued(
    incident_id: int, platform: str, label: str | None, ip: str, segment: str, start: datetime,
    minutes: float, status: str,
) -> IncidentSummary:  # fmt: skip
    return IncidentSummary(
        id=incident_id, site=SITE, platform=platform, category="social", device_ip=ip,
        device_mac=None, device_host_name=None, device_label=label, device_segment=segment,
        role=None, start_at=start, end_at=start + timedelta(minutes=minutes),
        active_minutes=minutes, confidence=0.9, hit_count=10, state="closed", status=status,
        outcome=None, connections=5, lookups=5, attribution="name",
    )  # fmt: skip


def reviewer(*, empty: bool = False, label: str = "Room 4 laptop") -> ReviewerWeeklySummary:
    queue = (
        queued(41, "instagram", label, "10.20.4.23", "staff-wifi",
               datetime(2026, 11, 16, 10, 5, tzinfo=UTC), 12, "new"),
        queued(57, "tiktok", "jaydens-iphone", "10.30.17.77", "pupil-wifi",
               datetime(2026, 11, 18, 11, tzinfo=UTC), 75, "in_review"),
    )  # fmt: skip
    devices = (
        DeviceActivity(
            SITE,
            "3c:22:fb:81:4e:a1",
            "10.20.4.23",
            label,
            None,
            2,
            37,
            "staff-wifi",
            ("instagram",),
        ),  # fmt: skip
        DeviceActivity(SITE, None, "10.30.17.77", None, None, 1, 75, "pupil-wifi", ("tiktok",)),
    )
    data = ReviewerWeek(
        stats=stats(empty=empty),
        health=health(silent=(DAYS[4],)),
        top_devices=() if empty else devices,
        waiting_review=() if empty else queue,
    )
    return ReviewerWeeklySummary("Hill School", WEEK, "Europe/London", 5, URL, data)


def governor(*, empty: bool = False) -> GovernorWeeklySummary:
    data = GovernorWeek(stats=stats(empty=empty), health=health())
    return GovernorWeeklySummary("Hill School", WEEK, "Europe/London", 5, URL, data)


def governors_report() -> GovernorReport:
    summary = gq.GovernorSummary(
        site=SITE,
        start=datetime(2026, 9, 3, tzinfo=UTC),
        end=datetime(2026, 12, 19, tzinfo=UTC),
        total=31,
        previous_total=44,
        by_platform=(
            gq.PlatformCount("instagram", 17),
            gq.PlatformCount("tiktok", 10),
            gq.PlatformCount("snapchat", 4),
        ),
        by_role=(gq.RoleCount("staff", 22), gq.RoleCount("pupil", 9)),
        by_outcome=(
            gq.OutcomeCount("no_action", 18),
            gq.OutcomeCount("informal_conversation", 9),
            gq.OutcomeCount("false_positive", 4),
        ),
        weekly_trend=(),
        checks=(
            gq.CheckRuns("selftest", 14, 1, datetime(2026, 11, 16, 7, tzinfo=UTC), True),
            gq.CheckRuns("doctor", 2, 0, datetime(2026, 10, 1, 9, tzinfo=UTC), True),
        ),
        list_changes=(
            gq.ListChange(
                datetime(2026, 10, 2, 14, tzinfo=UTC),
                "add",
                "allowlist",
                "education.instagram-partner.example",
                None,
                "Art department uses it for the exhibition; agreed by the head",
                "it-admin",
                "head",
            ),
            gq.ListChange(
                datetime(2026, 11, 3, 9, tzinfo=UTC),
                "add",
                "tiktok",
                "tiktokv.eu",
                "primary",
                "New app domain seen in the self-test",
                "it-admin",
                None,
            ),
        ),
        previous_by_platform=(
            gq.PlatformCount("instagram", 25),
            gq.PlatformCount("tiktok", 12),
            gq.PlatformCount("snapchat", 7),
        ),
        trend=tuple(
            gq.PeriodCount(
                date(2026, 9, 7) + timedelta(weeks=n), date(2026, 9, 14) + timedelta(weeks=n), c
            )
            for n, c in enumerate([6, 4, 5, 3, 2, 4, 3, 1, 2, 1])
        ),
        trend_step="week",
    )
    return GovernorReport(summary, health(silent=(date(2026, 10, 12), date(2026, 10, 13))))


# --- small wording helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "previous", "words"),
    [(5, 2, "up 3 from 2"), (1, 4, "down 3 from 4"), (3, 3, "the same as the 3")],
)
def test_change_in_words(current: int, previous: int, words: str) -> None:
    assert change(current, previous) == words


@pytest.mark.parametrize(
    ("value", "shown"), [(0.4, "0 min"), (12, "12 min"), (59.6, "1 h 00 min"), (125, "2 h 05 min")]
)
def test_minutes_in_words(value: float, shown: str) -> None:
    assert minutes(value) == shown


@pytest.mark.parametrize(
    ("count", "largest", "percent"), [(0, 5, 0), (5, 5, 100), (1, 1000, 2), (1, 2, 50), (3, 0, 0)]
)
def test_bar_percent_shows_any_count_above_zero(count: int, largest: int, percent: int) -> None:
    assert bar_percent(count, largest) == percent


def test_names_in_plain_english() -> None:
    assert str(counter_label("matches.unsegmented")).startswith("Platform use from addresses in")
    assert counter_label("capture.drops") is None  # never shown: see test_labels


# --- the weekly email ----------------------------------------------------------------------


class TestWeeklySubject:
    @pytest.mark.parametrize(
        ("summary", "subject"),
        [
            (
                reviewer(),
                "Hill School weekly summary, 16–22 November 2026: 5 incidents, 3 to review",
            ),
            (
                governor(),
                "Hill School weekly summary, 16–22 November 2026: 5 incidents, 3 to review",
            ),
            (
                reviewer(empty=True),
                "Hill School weekly summary, 16–22 November 2026: nothing to report",
            ),
        ],
    )
    def test_weekly_subject_says_what_needs_attention(
        self, summary: ReviewerWeeklySummary | GovernorWeeklySummary, subject: str
    ) -> None:
        assert weekly_subject(summary) == subject

    def test_weekly_subject_across_months(self) -> None:
        summary = reviewer(empty=True)
        summary = ReviewerWeeklySummary(
            summary.school, parse_week("2026-W49"), summary.timezone, 5, URL, summary.data
        )
        assert "30 November – 6 December 2026" in weekly_subject(summary)


class TestWeeklyHtml:
    def test_render_weekly_html_is_mail_client_safe(self) -> None:
        html = render_weekly_html(reviewer())
        assert "<style" not in html and "<script" not in html and "<img" not in html
        assert "<link" not in html
        assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
            f"{URL}/incidents/41",
            f"{URL}/incidents/57",
            f"{URL}/incidents",
            f"{URL}/incidents",
        ]
        assert 'role="presentation"' in html
        assert "max-width:600px" in html

    def test_render_weekly_html_reviewer_content(self) -> None:
        html = render_weekly_html(reviewer())
        for expected in (
            "5 incidents this week",
            "up 3 from 2",
            "3 incidents are waiting for review",
            "Instagram on Room 4 laptop",
            "Mon 16 Nov 2026, 10:05",
            "1 h 15 min",
            "Devices with most activity",
            "No data on 1 school day:</b> Fri 20 Nov",
            "Connections that hid the site&#39;s name",
            "And 1 more",
        ):
            assert expected in html, expected

    def test_render_weekly_html_escapes_names(self) -> None:
        html = render_weekly_html(reviewer(label='<script>alert("x")</script>'))
        assert "<script>" not in html
        assert "&lt;script&gt;" in html

    def test_render_weekly_html_governor_version_has_totals_only(self) -> None:
        html = render_weekly_html(governor())
        assert "/incidents" not in html
        assert "Devices with most activity" not in html
        assert "Staff network" in html and "Awaiting review" in html
        assert "totals only" in html


class TestWeeklyText:
    def test_render_weekly_text_reviewer(self) -> None:
        text = render_weekly_text(reviewer())
        assert text.startswith("Hill School: Hall Monitor weekly summary\n\n16–22 November 2026")
        assert "\n\nIt saw 282,400 website names this week.\n" in text
        assert f"  {URL}/incidents/41\n" in text
        assert f"- and 1 more: {URL}/incidents\n" in text
        assert "- Room 4 laptop (10.20.4.23): 2 incidents, 37 min, Instagram\n" in text
        assert "- 10.30.17.77: 1 incident, 1 h 15 min, TikTok\n" in text
        assert "<" not in text.replace(f"<{URL}", "")

    def test_render_weekly_text_nothing_to_report(self) -> None:
        text = render_weekly_text(governor(empty=True))
        assert "Nothing to report this week." in text
        assert "INCIDENTS BY PLATFORM" not in text
        assert "It saw 282,400 website names this week." in text


class TestWeeklyEmail:
    def test_render_weekly_email_is_multipart_text_then_html(self) -> None:
        message = render_weekly_email(
            reviewer(),
            from_address="hallmonitor@hill-school.example",
            recipient="head@hill-school.example",
            now=NOW,
        )
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["To"] == "head@hill-school.example"
        assert message["Date"] == "Mon, 23 Nov 2026 07:00:00 +0000"
        assert message["Auto-Submitted"] == "auto-generated"
        assert str(message["Message-ID"]).endswith("@hill-school.example>")


# --- the governors' page -------------------------------------------------------------------


def render_report() -> str:
    return render_governors_report(
        governors_report(),
        school="Hill School",
        start=date(2026, 9, 3),
        end=date(2026, 12, 19),
        tz="Europe/London",
        generated_at=NOW,
    )


def test_render_governors_report_is_a_printable_page() -> None:
    html = render_report()
    assert "@media print" in html and "@page" in html
    assert (
        "<script" not in html and "<img" not in html and "http" not in html.replace("https://", "")
    )
    for expected in (
        "3 September – 18 December 2026",
        "31 incidents</b> of social-networking use during school hours: down 13 from 44",
        "Informal conversation",
        "Week of 7 September",
        "selftest",
        "No data on 2 school days: Mon 12 Oct, Tue 13 Oct",
        "What the monitor cannot see",
        "Added <b>education.instagram-partner.example</b> to the allowlist",
        "Added <b>tiktokv.eu</b> to TikTok list (primary)",
        "Art department uses it for the exhibition; agreed by the head",
        "it-admin, approved by head",
    ):
        assert expected in html, expected


# --- in a real browser ---------------------------------------------------------------------


@pytest.mark.browser
def test_weekly_email_renders_in_chromium(tmp_path: Path, chromium: Browser) -> None:
    for name, summary in (("reviewer", reviewer()), ("governor", governor())):
        page = tmp_path / f"weekly-{name}.html"
        page.write_text(render_weekly_html(summary), encoding="utf-8")
        png = take_screenshot(chromium, page, f"weekly-email-{name}.png", 390)
        assert png.stat().st_size > 10_000
