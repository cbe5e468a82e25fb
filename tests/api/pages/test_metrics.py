"""``/metrics``: the default registry plus the database's figures, counts only, open unless a
token is configured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import text

from api.capture_watch import CaptureWatch
from monitor.metrics import register_daemon_metrics
from monitor.runner import CaptureDaemon
from monitor.store.models import DailyCounterRecord, SentReportRecord
from tests.api.conftest import AppFactory, AppHarness
from tests.monitor.reports.conftest import device_identifiers, seed_school
from tests.monitor.store.queries.factories import add_incident

TOKEN = "a-long-random-metrics-token"


def scrape(harness: AppHarness, **headers: str) -> list[Sample]:
    response = harness.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(found: list[Sample], name: str, **labels: str) -> float | None:
    matching = [s.value for s in found if s.name == name and s.labels == labels]
    assert len(matching) <= 1, f"{name} {labels} twice"
    return matching[0] if matching else None


def add_report(harness: AppHarness, status: str, at: datetime, recipient: str, period: str) -> None:
    with harness.db() as db:
        db.add(
            SentReportRecord(
                kind="weekly", period=period, recipient=recipient, role="reviewer",
                status=status, attempts=1, last_error=None if status == "sent" else "permanent: 550",
                created_at=at, sent_at=at,  # a failed send: its latest attempt
            )
        )  # fmt: skip
        db.commit()


def test_metrics_are_open_and_say_the_database_is_up_at_the_schema_head(
    harness: AppHarness,
) -> None:
    found = scrape(harness)
    assert value(found, "hallmonitor_database_up") == 1
    assert value(found, "hallmonitor_schema_at_head") == 1
    assert value(found, "hallmonitor_report_failures") == 0
    assert [s for s in found if s.name == "hallmonitor_stored_incidents"] == []
    assert [s for s in found if s.name == "hallmonitor_report_last_sent_timestamp_seconds"] == []
    assert value(found, "process_start_time_seconds") is not None  # the default registry


def test_incidents_are_counted_by_site_and_status(harness: AppHarness) -> None:
    with harness.db() as db:
        for status in ("new", "new", "in_review"):
            add_incident(db, site="st-marys", status=status)
        add_incident(db, site="hill-school", status="closed", outcome="no_action")
        db.commit()
    found = scrape(harness)
    counts = {
        (s.labels["site"], s.labels["status"]): s.value
        for s in found
        if s.name == "hallmonitor_stored_incidents"
    }
    assert counts == {
        ("hill-school", "new"): 0,
        ("hill-school", "in_review"): 0,
        ("hill-school", "closed"): 1,
        ("st-marys", "new"): 2,
        ("st-marys", "in_review"): 1,
        ("st-marys", "closed"): 0,
    }


def test_the_last_report_sent_and_recent_failures_are_shown_without_addresses(
    harness: AppHarness,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    add_report(harness, "sent", now - timedelta(days=8), "head@hill-school.example", "2026-W46")
    add_report(harness, "sent", now - timedelta(days=1), "head@hill-school.example", "2026-W47")
    add_report(harness, "failed", now - timedelta(hours=2), "gone@hill-school.example", "2026-W47")
    add_report(harness, "failed", now - timedelta(days=30), "old@hill-school.example", "2026-W40")
    response = harness.client.get("/metrics")
    found = scrape(harness)
    last = value(found, "hallmonitor_report_last_sent_timestamp_seconds", kind="weekly")
    assert last == (now - timedelta(days=1)).timestamp()
    assert value(found, "hallmonitor_report_failures") == 1
    assert "@" not in response.text


def test_nothing_personal_leaves_with_the_metrics(harness: AppHarness) -> None:
    seed_school(harness.app.state.engine)
    response = harness.client.get("/metrics")
    assert response.status_code == 200
    identifiers = device_identifiers(harness.app.state.engine)
    assert len(identifiers) >= 10
    assert sorted(i for i in identifiers if i in response.text) == []
    assert "@" not in response.text
    labels = {
        name
        for family in text_string_to_metric_families(response.text)
        if family.name.startswith("hallmonitor_")
        for sample in family.samples
        for name in sample.labels
    }
    assert labels <= {"site", "status", "kind"}


def test_each_sites_frames_today_and_a_quiet_sensor_are_shown(harness: AppHarness) -> None:
    today = datetime.now(UTC).date()
    with harness.db() as db:
        db.add(DailyCounterRecord(site="st-marys", day=today, name="capture.frames", count=900))
        db.add(
            DailyCounterRecord(
                site="retired", day=today - timedelta(days=5), name="capture.frames", count=5
            )
        )
        db.commit()
    harness.app.state.capture_watch = CaptureWatch(stale_after=timedelta(0))
    found = scrape(harness)
    assert value(found, "hallmonitor_capture_frames_today", site="st-marys") == 900
    assert value(found, "hallmonitor_capture_stale", site="st-marys") == 1
    assert value(found, "hallmonitor_capture_unchanged_seconds", site="st-marys") is not None
    assert value(found, "hallmonitor_capture_frames_today", site="retired") is None


def test_a_schema_behind_the_head_is_shown_and_nothing_else_is_read(harness: AppHarness) -> None:
    with harness.app.state.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    found = scrape(harness)
    assert value(found, "hallmonitor_database_up") == 1
    assert value(found, "hallmonitor_schema_at_head") == 0
    assert value(found, "hallmonitor_report_failures") is None


def test_a_database_that_does_not_answer_is_shown_as_down(app_client: AppFactory) -> None:
    harness = app_client()
    engine = harness.app.state.engine
    engine.dispose()
    database = engine.url.database
    assert database is not None
    Path(database).write_bytes(b"this is not an SQLite database" * 100)
    found = scrape(harness)
    assert value(found, "hallmonitor_database_up") == 0
    assert value(found, "hallmonitor_schema_at_head") is None


@pytest.fixture
def daemon_in_default_registry(harness: AppHarness) -> Iterator[CaptureDaemon]:
    """A capture daemon registered as ``hallmonitor up`` does (not started: it is not up)."""
    daemon = CaptureDaemon(harness.settings)
    collector = register_daemon_metrics(daemon)
    yield daemon
    REGISTRY.unregister(collector)


def test_a_daemon_in_the_same_process_is_shown_too(
    harness: AppHarness, daemon_in_default_registry: CaptureDaemon
) -> None:
    found = scrape(harness)
    site = harness.settings.site.name
    assert value(found, "hallmonitor_capture_up", site=site) == 0
    assert value(found, "hallmonitor_database_up") == 1


class TestToken:
    def test_with_a_token_configured_a_request_without_it_is_refused(
        self, app_client: AppFactory
    ) -> None:
        harness = app_client(metrics_token=TOKEN)
        response = harness.client.get("/metrics")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "hallmonitor_" not in response.text

    def test_a_wrong_token_is_refused(self, app_client: AppFactory) -> None:
        harness = app_client(metrics_token=TOKEN)
        response = harness.client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401

    def test_a_token_with_bytes_outside_ascii_is_refused_not_an_error(
        self, app_client: AppFactory
    ) -> None:
        harness = app_client(metrics_token=TOKEN)
        response = harness.client.get(
            "/metrics", headers={b"Authorization": "Bearer caf\xe9".encode("latin-1")}
        )
        assert response.status_code == 401

    def test_the_right_token_is_accepted(self, app_client: AppFactory) -> None:
        harness = app_client(metrics_token=TOKEN)
        found = scrape(harness, Authorization=f"Bearer {TOKEN}")
        assert value(found, "hallmonitor_database_up") == 1
