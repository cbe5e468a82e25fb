"""``/healthz``: readiness as JSON (200 or 503) for anyone; for a signed-in admin the checks too:
report failures counted without addresses, and a warning (never unreadiness) when a sensor stops
counting frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from api.capture_watch import CaptureWatch
from api.pages.health import first_line, summarise_failures
from monitor.reports.sending import ReportFailure
from monitor.store.models import DailyCounterRecord, SentReportRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import AppFactory, AppHarness

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def failure(
    recipient: str, attempt_at: datetime | None, error: str = "temporary: x"
) -> ReportFailure:
    return ReportFailure("weekly", "2026-W47", recipient, "reviewer", 2, error, attempt_at)


def add_failed_report(
    harness: AppHarness, recipient: str, at: datetime, error: str, period: str = "2026-W47"
) -> None:
    with harness.db() as db:
        db.add(
            SentReportRecord(
                kind="weekly", period=period, recipient=recipient, role="reviewer",
                status="failed", attempts=3, last_error=error, created_at=at, sent_at=at,
            )
        )  # fmt: skip
        db.commit()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ("temporary: 451 try later\nmore detail", "temporary: 451 try later"),
        (
            "permanent: 550 <head@hill-school.example> refused",
            "permanent: 550 (address hidden) refused",
        ),
        (
            "permanent: user head@hill-school.example unknown",
            "permanent: user (address hidden) unknown",
        ),
        ("", ""),
        ("  \n", ""),
    ],
)
def test_first_line_keeps_one_line_without_addresses(error: str, shown: str) -> None:
    assert first_line(error) == shown


def test_summarise_failures_counts_the_last_fourteen_days_only() -> None:
    failures = [
        failure("a@x.example", NOW - timedelta(days=1), "permanent: 535 login refused\nsecond"),
        failure("A@x.example", NOW - timedelta(days=8)),
        failure("b@x.example", NOW - timedelta(days=13)),
        failure("c@x.example", NOW - timedelta(days=15)),
        failure("d@x.example", None),
    ]
    summary = summarise_failures(failures, NOW)
    assert (summary.count, summary.recipients) == (3, 2)
    assert summary.since == NOW - timedelta(days=13)
    assert summary.last_error == "permanent: 535 login refused"


def test_summarise_failures_of_nothing_is_zero() -> None:
    summary = summarise_failures([], NOW)
    assert (summary.count, summary.recipients, summary.since, summary.last_error) == (
        0,
        0,
        None,
        "",
    )


@pytest.fixture
def admin(harness: AppHarness) -> AppHarness:
    """The app, with an admin without a site signed in (who reads the checks)."""
    harness.sign_in(UserRole.ADMIN)
    return harness


def test_healthz_tells_anyone_without_signing_in_only_whether_it_is_ready(
    harness: AppHarness,
) -> None:
    add_frames(harness, "st-marys", 1200)
    add_failed_report(harness, "head@hill-school.example", datetime.now(UTC), "mail.example: 451")
    response = harness.client.get("/healthz", follow_redirects=False)
    assert response.status_code == 200
    assert response.json() == {"ready": True}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.GOVERNOR])
def test_healthz_tells_a_signed_in_non_admin_only_whether_it_is_ready(
    harness: AppHarness, role: UserRole
) -> None:
    add_frames(harness, "st-marys", 1200)
    harness.sign_in(role)
    assert harness.client.get("/healthz").json() == {"ready": True}


def test_healthz_gives_a_site_limited_admin_the_checks_of_their_school_only(
    harness: AppHarness,
) -> None:
    add_frames(harness, "st-marys", 1200)
    add_frames(harness, "hill-school", 40)
    harness.sign_in(UserRole.ADMIN, site="hill-school")
    capture = harness.client.get("/healthz").json()["checks"]["capture"]
    assert [site["site"] for site in capture["sites"]] == ["hill-school"]
    assert capture["detail"] == "frames counted by hill-school"


def test_healthz_is_ready_with_its_checks_for_a_signed_in_admin(admin: AppHarness) -> None:
    response = admin.client.get("/healthz", follow_redirects=False)
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["schema"]["ok"] is True
    assert body["checks"]["reports"] == {
        "ok": True,
        "detail": "no failed report sends in the last 14 days",
        "failures": 0,
        "last_error": None,
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_counts_failed_reports_and_hides_addresses(admin: AppHarness) -> None:
    harness = admin
    now = datetime.now(UTC)
    add_failed_report(
        harness, "head@hill-school.example", now - timedelta(days=20), "old", "2026-W40"
    )
    add_failed_report(
        harness, "deputy@hill-school.example", now - timedelta(days=2), "temporary: 451"
    )
    add_failed_report(
        harness, "head@hill-school.example", now - timedelta(hours=1),
        "permanent: 550 5.1.1 <head@hill-school.example>: no such user\ntrace",
    )  # fmt: skip
    response = harness.client.get("/healthz")
    assert response.status_code == 200  # a report failure does not make the app unready
    reports = response.json()["checks"]["reports"]
    assert reports["ok"] is False
    assert reports["failures"] == 2
    assert reports["last_error"] == "permanent: 550 5.1.1 (address hidden): no such user"
    assert "@" not in response.text


def test_healthz_is_not_ready_when_the_schema_is_behind(admin: AppHarness) -> None:
    harness = admin
    with harness.app.state.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = harness.client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["schema"]["ok"] is False
    assert "hallmonitor db upgrade" in body["checks"]["schema"]["detail"]
    assert body["checks"]["reports"]["ok"] is False


def test_healthz_is_not_ready_when_the_database_does_not_answer(app_client: AppFactory) -> None:
    harness = app_client()
    harness.sign_in(UserRole.ADMIN)
    engine = harness.app.state.engine
    engine.dispose()
    database = engine.url.database
    assert database is not None
    Path(database).write_bytes(b"this is not an SQLite database" * 100)
    # The admin's session cannot be read either: the answer is up or down, and still answers.
    response = harness.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"ready": False}


def add_frames(harness: AppHarness, site: str, count: int) -> None:
    with harness.db() as db:
        db.add(
            DailyCounterRecord(
                site=site, day=datetime.now(UTC).date(), name="capture.frames", count=count
            )
        )
        db.commit()


def test_healthz_warns_when_no_sensor_counted_frames_but_stays_ready(admin: AppHarness) -> None:
    harness = admin
    response = harness.client.get("/healthz")
    assert response.status_code == 200
    capture = response.json()["checks"]["capture"]
    assert capture["ok"] is False
    assert capture["detail"].startswith("no frames counted today or yesterday")
    assert "hallmonitor capture" in capture["detail"]
    assert capture["sites"] == []


def test_healthz_lists_each_counting_sensor(admin: AppHarness) -> None:
    harness = admin
    add_frames(harness, "st-marys", 1200)
    capture = harness.client.get("/healthz").json()["checks"]["capture"]
    assert capture["ok"] is True
    assert capture["detail"] == "frames counted by st-marys"
    assert capture["sites"] == [
        {
            "site": "st-marys",
            "day": datetime.now(UTC).date().isoformat(),
            "frames": 1200,
            "unchanged_minutes": 0,
            "stale": False,
        }
    ]


def test_healthz_says_which_sensor_went_quiet_and_stays_ready(admin: AppHarness) -> None:
    harness = admin
    add_frames(harness, "st-marys", 1200)
    add_frames(harness, "hill-school", 40)
    watch = CaptureWatch()
    harness.app.state.capture_watch = watch
    harness.client.get("/healthz")
    watch.stale_after = timedelta(0)  # as if ten minutes had passed without a new frame
    response = harness.client.get("/healthz")
    assert response.status_code == 200
    capture = response.json()["checks"]["capture"]
    assert capture["ok"] is False
    assert capture["detail"].startswith(
        "no new frames for 10 minutes or more from hill-school, st-marys"
    )
    assert [site["stale"] for site in capture["sites"]] == [True, True]
