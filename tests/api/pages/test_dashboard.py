"""The dashboard: incident figures and capture health for reviewers, aggregates for governors."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from api.pages import dashboard as dashboard_module
from api.pages.dashboard import (
    GovernorDashboardPage,
    Period,
    ReviewerDashboardPage,
    this_term,
    this_week,
)
from monitor.config.settings import Settings
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness
from tests.api.pages.test_health import add_failed_report
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    PUPIL_TABLET,
    add_counter,
    add_incident,
)


def seed_now(harness: AppHarness) -> None:
    """Two incidents an hour ago (one reviewed) and this week's capture counters."""
    now = datetime.now(UTC)
    with harness.db() as db:
        add_incident(db, start=now - timedelta(hours=1), platform="instagram")
        add_incident(
            db, start=now - timedelta(hours=1), platform="tiktok", device=PUPIL_TABLET,
            host_name="PUPIL-TAB-3", segment="pupil-wifi", role="pupil", status="closed",
            outcome="no_action", label="Year 9 tablet",
        )  # fmt: skip
        add_counter(db, now.date(), "observations.dns", 120)
        add_counter(db, now.date(), "observations.tls", 30)
        db.commit()


def test_this_week_runs_monday_to_sunday() -> None:
    week = this_week(date(2026, 11, 26))
    assert week == Period("This week", date(2026, 11, 23), date(2026, 11, 30))
    assert week.label == "23–29 November 2026"


@pytest.mark.parametrize(
    ("terms", "today", "expected"),
    [
        (
            [{"start": "2026-09-03", "end": "2026-12-18", "name": "Autumn 2026"}],
            date(2026, 11, 24),
            Period("Autumn 2026", date(2026, 9, 3), date(2026, 11, 25)),
        ),
        (  # between terms: the latest term that started, to its end
            [
                {"start": "2026-04-13", "end": "2026-07-22"},
                {"start": "2026-09-03", "end": "2026-12-18"},
            ],
            date(2026, 8, 1),
            Period("Term from 13 Apr 2026", date(2026, 4, 13), date(2026, 7, 23)),
        ),
        ([], date(2026, 11, 24), Period("The last 12 weeks", date(2026, 9, 2), date(2026, 11, 25))),
    ],
)
def test_this_term(terms: list[dict[str, str]], today: date, expected: Period) -> None:
    settings = Settings.model_validate({"calendar": {"terms": terms}})
    assert this_term(settings, today) == expected


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.ADMIN])
def test_reviewer_dashboard_shows_this_week_and_term(harness: AppHarness, role: UserRole) -> None:
    seed_now(harness)
    harness.sign_in(role)
    response = harness.client.get("/dashboard")
    assert response.status_code == 200
    assert response.template.name == "pages/dashboard/reviewer.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, ReviewerDashboardPage)
    assert (page.week_stats.total, page.week_stats.open_items, page.term_stats.total) == (2, 1, 2)
    assert [chart.title for chart in page.week_charts] == [
        "Incidents by day", "Incidents by platform", "Incidents by segment",
    ]  # fmt: skip
    assert len(page.week_charts[0].bars) == 7
    assert page.week_charts[1].rows == (("instagram", 1), ("tiktok", 1))
    assert page.health.observations_total == 150
    assert page.open_items_href == "/incidents?status=new"
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.select_one('a[href="/incidents?status=new"]') is not None
    assert soup.find(style=True) is None
    for figure in soup.select("figure.chart-figure"):
        if figure.find("svg") is not None:  # every drawn chart has its table
            assert figure.find("table") is not None


def test_governor_dashboard_is_aggregates_only(harness: AppHarness) -> None:
    seed_now(harness)
    harness.sign_in(UserRole.GOVERNOR)
    response = harness.client.get("/dashboard")
    assert response.template.name == "pages/dashboard/governor.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, GovernorDashboardPage)
    assert page.summary.total == 2
    text = response.text
    for identity in ("10.1.4.23", "aa:bb:cc", "STAFF-LAPTOP", "PUPIL-TAB", "Year 9 tablet", "10.2.0.50"):  # fmt: skip
        assert identity not in text
    soup = BeautifulSoup(text, "html.parser")
    assert not soup.select('a[href^="/incidents"]')


def test_dashboard_on_an_empty_database_says_so(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    soup = BeautifulSoup(harness.client.get("/dashboard").text, "html.parser")
    text = soup.get_text()
    assert "No incidents in this period." in text
    assert "The sensors counted nothing this week." in text
    assert "The sensors counted nothing on any day so far." in text


# --- report failures -------------------------------------------------------------------------


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.ADMIN])
def test_reviewer_dashboard_warns_about_failed_weekly_summaries(
    harness: AppHarness, role: UserRole
) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(days=3)
    add_failed_report(harness, "deputy@hill-school.example", since, "temporary: 451 busy")
    add_failed_report(
        harness, "head@hill-school.example", now - timedelta(hours=2),
        "permanent: 535 5.7.8 authentication failed\nserver said more",
    )  # fmt: skip
    add_failed_report(harness, "old@hill-school.example", now - timedelta(days=30), "x", "2026-W40")
    harness.sign_in(role)
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert (page.report_failures.count, page.report_failures.recipients) == (2, 2)
    alert = BeautifulSoup(response.text, "html.parser").find("div", attrs={"role": "alert"})
    assert alert is not None
    text = " ".join(alert.get_text().split())
    assert text.startswith(
        "The weekly summary could not be sent to 2 recipient(s) since "
        f"{since.astimezone(ZoneInfo(harness.settings.calendar.timezone)):%a %d %b %Y}: "
        "permanent: 535 5.7.8 authentication failed"
    )
    assert "[mail] settings" in text
    assert "hallmonitor report weekly --send" in text
    assert "@" not in text


def test_reviewer_dashboard_has_no_report_warning_without_failures(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/dashboard")
    assert response.context["page"].report_failures.count == 0  # type: ignore[attr-defined]
    assert "weekly summary could not be sent" not in response.text


def test_governor_dashboard_does_not_show_report_failures(harness: AppHarness) -> None:
    add_failed_report(harness, "head@hill-school.example", datetime.now(UTC), "temporary: 451")
    harness.sign_in(UserRole.GOVERNOR)
    response = harness.client.get("/dashboard")
    assert "weekly summary could not be sent" not in response.text


# --- a trust: several schools in one database ------------------------------------------------


def seed_two_sites(harness: AppHarness) -> None:
    seed_now(harness)
    with harness.db() as db:
        add_incident(db, start=datetime.now(UTC) - timedelta(hours=1), site=OTHER_SITE)
        db.commit()


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.ADMIN])
def test_an_all_sites_dashboard_counts_incidents_per_site(
    harness: AppHarness, role: UserRole
) -> None:
    seed_two_sites(harness)
    harness.sign_in(role)
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert [(chart.title, chart.rows) for chart in page.site_charts] == [
        ("Incidents by site this week", (("school", 2), (OTHER_SITE, 1))),
        ("Incidents by site this term", (("school", 2), (OTHER_SITE, 1))),
    ]
    table = BeautifulSoup(response.text, "html.parser").select_one("#sites-heading + * table")
    assert table is not None and OTHER_SITE in table.get_text()


def test_a_single_school_dashboard_has_no_site_charts(harness: AppHarness) -> None:
    seed_now(harness)
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/dashboard")
    assert response.context["page"].site_charts == ()  # type: ignore[attr-defined]
    assert 'id="sites-heading"' not in response.text


def test_a_site_limited_reviewers_dashboard_counts_only_their_site(harness: AppHarness) -> None:
    seed_two_sites(harness)
    with harness.db() as db:
        create_user(db, "annexhead", "Annex Head", UserRole.REVIEWER, PASSWORD, site=OTHER_SITE, hasher=FAST_HASHER)  # fmt: skip
        db.commit()
    assert harness.post_login("annexhead", PASSWORD).status_code == 303
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert (page.week_stats.total, page.site_charts) == (1, ())
    assert "school" not in [label for chart in page.week_charts for label, _ in chart.rows]


def test_a_governors_dashboard_has_no_per_site_breakdown(harness: AppHarness) -> None:
    seed_two_sites(harness)
    harness.sign_in(UserRole.GOVERNOR)
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, GovernorDashboardPage)
    assert page.summary.total == 3
    assert 'id="sites-heading"' not in response.text


# --- pages that cannot be quietly wrong (issue 13, item 8) ----------------------------------

WEDNESDAY_NOON = datetime(2026, 11, 18, 12, tzinfo=UTC)
"""Wednesday of the week of 16 November 2026: Thursday to Sunday have not happened yet."""
ISO_WEEK_CODE = re.compile(r"\bW\d{1,2}\b|\bweek \d{1,2}\b", re.IGNORECASE)


@pytest.fixture
def wednesday(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The dashboard's clock stopped at ``WEDNESDAY_NOON``, with data Monday to Wednesday."""
    monkeypatch.setattr(dashboard_module, "utcnow", lambda: WEDNESDAY_NOON)
    return WEDNESDAY_NOON


def seed_monday_to_wednesday(harness: AppHarness, now: datetime) -> None:
    with harness.db() as db:
        add_incident(db, start=now - timedelta(hours=1), platform="instagram")
        add_incident(db, start=now - timedelta(weeks=3), platform="tiktok")
        for n in range(3):
            add_counter(db, now.date() - timedelta(days=n), "observations.dns", 100)
        db.commit()


def test_reviewer_dashboard_does_not_count_days_after_today_as_without_data(
    harness: AppHarness, wednesday: datetime
) -> None:
    seed_monday_to_wednesday(harness, wednesday)
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert [label for label, _ in page.health_chart.rows] == [
        "Mon 16 Nov", "Tue 17 Nov", "Wed 18 Nov",
    ]  # fmt: skip
    text = BeautifulSoup(response.text, "html.parser").get_text()
    assert "something counted on 3 of 3 days so far" in text


def test_reviewer_dashboard_of_a_school_without_data_says_so_when_another_school_has_data(
    harness: AppHarness, wednesday: datetime
) -> None:
    seed_monday_to_wednesday(harness, wednesday)  # the site "school" has data, "annex" none
    with harness.db() as db:
        create_user(db, "annexhead", "Annex Head", UserRole.REVIEWER, PASSWORD, site=OTHER_SITE, hasher=FAST_HASHER)  # fmt: skip
        db.commit()
    assert harness.post_login("annexhead", PASSWORD).status_code == 303
    text = BeautifulSoup(harness.client.get("/dashboard").text, "html.parser").get_text()
    assert "No data arrived from your school this week, while 1 other school" in text


def test_reviewer_dashboard_of_the_school_with_data_has_no_silence_notice(
    harness: AppHarness, wednesday: datetime
) -> None:
    seed_monday_to_wednesday(harness, wednesday)
    harness.sign_in(UserRole.REVIEWER)
    text = BeautifulSoup(harness.client.get("/dashboard").text, "html.parser").get_text()
    assert "No data arrived" not in text and "counted nothing" not in text


def test_governor_dashboard_names_weeks_by_their_first_day(
    harness: AppHarness, wednesday: datetime
) -> None:
    seed_monday_to_wednesday(harness, wednesday)
    harness.sign_in(UserRole.GOVERNOR)
    response = harness.client.get("/dashboard")
    page = response.context["page"]  # type: ignore[attr-defined]
    trend = next(chart for chart in page.charts if chart.title == "Incidents by week")
    assert trend.rows[-1] == ("Week of 16 November", 1)
    assert ("Week of 26 October", 1) in trend.rows
    assert ISO_WEEK_CODE.findall(BeautifulSoup(response.text, "html.parser").get_text()) == []


def test_governor_dashboard_of_a_school_without_data_says_so_when_another_school_has_data(
    harness: AppHarness, wednesday: datetime
) -> None:
    seed_monday_to_wednesday(harness, wednesday)
    with harness.db() as db:
        create_user(db, "annexgov", "Annex Governor", UserRole.GOVERNOR, PASSWORD, site=OTHER_SITE, hasher=FAST_HASHER)  # fmt: skip
        db.commit()
    assert harness.post_login("annexgov", PASSWORD).status_code == 303
    text = BeautifulSoup(harness.client.get("/dashboard").text, "html.parser").get_text()
    assert "No data arrived from your school this term, while 1 other school" in text
    harness.sign_in(UserRole.GOVERNOR)  # the school with data is not told about silence
    assert "No data arrived" not in harness.client.get("/dashboard").text
