"""One read model: the dashboard, the weekly email and the governors' report say the same.

A trust's two schools share one database (on SQLite and PostgreSQL), and each has a device on
the routed address 10.0.0.5 (no MAC known). The dashboard is read through the real app, the
weekly email arrives at a real SMTP server (aiosmtpd) and the governors' report is built as
``hallmonitor report governors`` builds it; their figures must be the same figures. An incident
at 23:30 on the last day of a week counts once, in that week, everywhere; one at 00:00 on the
Monday after counts in the next week only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.app import create_app
from api.pages import dashboard as dashboard_module
from api.pages.dashboard import GovernorDashboardPage, ReviewerDashboardPage
from monitor.config.settings import Settings
from monitor.platforms import platform_name
from monitor.reports.command import run_report_weekly
from monitor.reports.governors import build_governors_report
from monitor.reports.render import render_governors_report
from monitor.store.db import make_engine
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, AppHarness
from tests.monitor.conftest import (  # noqa: F401 (fixtures: both backends)
    backend,
    engine_url,
    postgres_server,
    postgres_test_url,
    sqlite_template,
)
from tests.monitor.reports.conftest import (  # noqa: F401 (fixtures: a real SMTP server)
    SmtpServer,
    certificates,
    parts,
    smtp,
    start_smtp,
)
from tests.monitor.store.queries.factories import PUPIL_TABLET, add_counter, add_incident

HILL, DALE = "Hill School", "Dale School"
SHARED_IP = "10.0.0.5"
"""Both schools' routed segment hands out this address; no MAC is known there."""
MONDAY = datetime(2026, 11, 16, 10, tzinfo=UTC)
"""Monday of 2026-W47 (London keeps UTC in November)."""
SUNDAY_LATE = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
"""The last half hour of 2026-W47."""
NEXT_MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
"""The first instant of 2026-W48."""
CLOCK = datetime(2026, 11, 22, 23, 45, tzinfo=UTC)
"""The dashboard's "now": still 2026-W47, so "This week" is the week the email reports."""
REVIEWER, GOVERNOR = "office@trust.example", "chair@trust.example"


def add_unsegmented(db: Session, site: str, start: datetime, platform: str) -> None:
    """An incident of ``site``'s device on the shared address, in no configured segment."""
    add_incident(
        db, site=site, start=start, platform=platform, device=(SHARED_IP, None), host_name=None,
        segment=None, role=None,
    )  # fmt: skip


def seed(db: Session) -> None:
    """Hill: three incidents of 10.0.0.5 (one late on Sunday) and a pupil tablet's; Dale: one
    of its own 10.0.0.5, reviewed; the week before and the week after have one each."""
    add_unsegmented(db, HILL, MONDAY, "instagram")
    add_unsegmented(db, HILL, MONDAY + timedelta(days=1), "instagram")
    add_unsegmented(db, HILL, SUNDAY_LATE, "tiktok")
    add_incident(
        db, site=HILL, start=MONDAY + timedelta(days=3), platform="instagram", device=PUPIL_TABLET,
        host_name="PUPIL-TAB-3", segment="pupil-wifi", role="pupil", status="in_review",
    )  # fmt: skip
    add_incident(
        db, site=DALE, start=MONDAY + timedelta(days=2, hours=3), platform="facebook",
        device=(SHARED_IP, None), host_name=None, segment="staff-wifi", role="staff",
        status="closed", outcome="no_action",
    )  # fmt: skip
    add_unsegmented(db, HILL, NEXT_MONDAY, "tiktok")
    add_incident(
        db, site=DALE, start=MONDAY - timedelta(days=5), platform="x", device=(SHARED_IP, None),
        host_name=None, status="closed", outcome="informal_conversation",
    )  # fmt: skip
    for n in range(7):
        for site in (HILL, DALE):
            add_counter(db, MONDAY.date() + timedelta(days=n), "observations.dns", 100, site=site)
    db.commit()


def trust_settings(url: str, tmp_path: Path, port: int) -> Settings:
    """The trust office: reports over every school (``reports.all_sites``)."""
    return Settings.model_validate(
        {
            "site": {"name": HILL},
            "database": {"url": url, "data_dir": tmp_path / "data"},
            "web": {"base_url": "https://hm.trust.example"},
            "reports": {"all_sites": True},
            "mail": {
                "enabled": True, "host": "127.0.0.1", "port": port, "security": "none",
                "from_address": "hallmonitor@trust.example", "reviewers": [REVIEWER],
                "governors": [GOVERNOR], "timeout_s": 5,
            },
        }
    )  # fmt: skip


@pytest.fixture
def trust(
    engine_url: str,  # noqa: F811 (the fixture)
    tmp_path: Path,
    smtp: SmtpServer,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AppHarness]:
    """The review app of the trust, its clock at ``CLOCK``, on the seeded database."""
    engine = make_engine(engine_url)
    with Session(engine) as db:
        seed(db)
    engine.dispose()
    monkeypatch.setattr(dashboard_module, "utcnow", lambda: CLOCK)
    settings = trust_settings(engine_url, tmp_path, smtp.port)
    app = create_app(settings, password_hasher=FAST_HASHER, run_scheduler=False)
    with TestClient(app) as client:
        yield AppHarness(client, app, settings)


@contextmanager
def database(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        with Session(engine) as db:
            yield db
    finally:
        engine.dispose()


def dashboard_page(harness: AppHarness, role: UserRole) -> object:
    harness.sign_in(role)
    response = harness.client.get("/dashboard")
    assert response.status_code == 200
    return response.context["page"]  # type: ignore[attr-defined]


def weekly_emails(harness: AppHarness, server: SmtpServer, week: str) -> dict[str, str]:
    """The text part of each recipient's weekly summary of ``week``, as it arrived."""
    status, lines = run_report_weekly(
        harness.settings, week=week, preview=False, send=True, resend=False, out_dir=None,
        now=CLOCK + timedelta(days=8),
    )  # fmt: skip
    assert status == 0, lines
    return {str(m["To"]): parts(m)[0].replace("\r\n", "\n") for m in server.messages}


def section(text: str, heading: str) -> list[tuple[str, int]]:
    """The ``- label: count`` lines under ``heading`` in an email's text part."""
    body = text.split(f"\n{heading}", 1)[1].split("\n\n", 2)[1]
    found = [re.fullmatch(r"- (.+?): (\d+)(?: \(\d+\))?", line) for line in body.splitlines()]
    return [(m[1], int(m[2])) for m in found if m]


def test_the_weekly_email_and_the_dashboard_agree(
    trust: AppHarness,
    smtp: SmtpServer,  # noqa: F811 (the fixture)
) -> None:
    page = dashboard_page(trust, UserRole.REVIEWER)
    assert isinstance(page, ReviewerDashboardPage)
    text = weekly_emails(trust, smtp, "2026-W47")[REVIEWER]
    stats = page.week_stats
    assert (stats.total, stats.open_items) == (5, 5)  # open: of any week, 2026-W48's too
    assert f"{stats.total} incidents this week: up 4 from {stats.previous_total} the week before" in text  # fmt: skip
    assert f"{stats.open_items} incidents are waiting for review." in text
    by_day, by_platform, by_segment = (chart.rows for chart in page.week_charts)
    platforms = section(text, "INCIDENTS BY PLATFORM")  # (with the week before's, as 0)
    assert [(label, n) for label, n in platforms if n] == [
        (platform_name(key), count) for key, count in by_platform
    ]
    assert [count for _, count in section(text, "INCIDENTS BY DAY")] == [c for _, c in by_day]
    assert section(text, "BY NETWORK") == list(by_segment)
    assert ("No segment", 3) in by_segment  # one wording of "no segment", pages and email


def test_an_incident_on_the_last_evening_of_a_week_counts_once_in_that_week(
    trust: AppHarness,
    smtp: SmtpServer,  # noqa: F811 (the fixture)
) -> None:
    page = dashboard_page(trust, UserRole.REVIEWER)
    assert isinstance(page, ReviewerDashboardPage)
    assert page.week_charts[0].rows[-1] == ("Sun 22 Nov", 1)
    week47 = weekly_emails(trust, smtp, "2026-W47")[REVIEWER]
    assert section(week47, "INCIDENTS BY DAY")[-1] == ("Sun 22 Nov", 1)
    assert dict(section(week47, "INCIDENTS BY PLATFORM"))["TikTok"] == 1
    smtp.handler.envelopes.clear()
    week48 = weekly_emails(trust, smtp, "2026-W48")[REVIEWER]
    assert section(week48, "INCIDENTS BY DAY")[0] == ("Mon 23 Nov", 1)
    assert "1 incident this week: down 4 from 5 the week before" in week48
    with database(trust.settings) as db:
        report = build_governors_report(
            db,
            trust.settings,
            date(2026, 11, 16),
            date(2026, 11, 30),
            now=CLOCK + timedelta(days=8),
        )
    assert [(step.start, step.count) for step in report.summary.trend] == [
        (date(2026, 11, 16), 5),
        (date(2026, 11, 23), 1),
    ]


def test_two_schools_devices_on_one_address_stay_apart_in_a_trust_wide_email(
    trust: AppHarness,
    smtp: SmtpServer,  # noqa: F811 (the fixture)
) -> None:
    text = weekly_emails(trust, smtp, "2026-W47")[REVIEWER]
    devices = text.split("\nDEVICES WITH MOST ACTIVITY\n\n", 1)[1].split("\n\n", 1)[0]
    assert devices.splitlines()[:2] == [
        f"- {SHARED_IP} at {HILL}: 3 incidents, 1 h 00 min, Instagram, TikTok",
        f"- {SHARED_IP} at {DALE}: 1 incident, 20 min, Facebook",
    ]


def test_the_governors_dashboard_and_the_governors_report_agree(trust: AppHarness) -> None:
    page = dashboard_page(trust, UserRole.GOVERNOR)
    assert isinstance(page, GovernorDashboardPage)
    with database(trust.settings) as db:
        report = build_governors_report(
            db, trust.settings, page.term.start, page.term.end, now=CLOCK
        )
    assert report.summary == page.summary  # the very same figures, field by field
    assert (report.summary.total, report.summary.previous_total) == (6, 0)
    outcomes = next(c for c in page.charts if c.title == "Incidents by review outcome")
    assert outcomes.rows == (
        ("Awaiting review", 4), ("Informal conversation", 1), ("No action", 1),
    )  # fmt: skip
    html = render_governors_report(
        report, school=HILL, start=page.term.start, end=page.term.end, tz="Europe/London",
        generated_at=CLOCK,
    )  # fmt: skip
    for label, count in outcomes.rows:  # the printed report words them the same
        assert f'<tr><td>{label}</td><td class="num">{count}</td></tr>' in html
