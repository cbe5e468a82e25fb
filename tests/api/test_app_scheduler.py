"""The weekly report scheduler inside the review app (``hallmonitor serve``): started by the
lifespan when ``mail.enabled``, sending a due report once to a real SMTP server (aiosmtpd),
and stopped on shutdown; ``run_scheduler=False`` leaves it off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from api.app import create_app
from monitor.reports.scheduler import ReportScheduler
from tests.api.conftest import FAST_HASHER
from tests.monitor.reports.conftest import KeepingHandler, SmtpServer, free_port, make_settings

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
"""After Monday's 07:00 send time (Europe/London): 2026-W47 is due."""
RECIPIENTS = ["governor@hill-school.example", "head@hill-school.example"]


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    handler = KeepingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpServer(controller, handler, tmp_path / "no-ca.pem")
    controller.stop()


class Clock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for the scheduler thread (a generous limit; not a timing assertion)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        threading.Event().wait(0.02)


def scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "report-scheduler" and t.is_alive()]


def sent_to(server: SmtpServer) -> list[tuple[str, str]]:
    return sorted((str(m["To"]), str(m["Subject"])) for m in server.messages)


def test_serve_sends_a_due_weekly_report_once_and_stops_on_shutdown(
    db_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = Clock(MONDAY)
    settings = make_settings(db_url, tmp_path, smtp_server.port)
    app = create_app(settings, password_hasher=FAST_HASHER, report_clock=clock)
    with TestClient(app) as client:
        scheduler = app.state.report_scheduler
        assert isinstance(scheduler, ReportScheduler)
        wait_for(lambda: scheduler.runs >= 1, "the first run")
        assert [to for to, _ in sent_to(smtp_server)] == RECIPIENTS
        assert all("16–22 November 2026" in subject for _, subject in sent_to(smtp_server))
        # Later the same week nothing more is due: each report went once.
        clock.now = MONDAY + timedelta(days=3)
        assert scheduler.run_once() == []
        assert len(smtp_server.messages) == 2
        # A week on, the next one is due.
        clock.now = MONDAY + timedelta(days=7)
        assert {r.period for r in scheduler.run_once()} == {"2026-W48"}
        assert len(smtp_server.messages) == 4
        assert client.get("/healthz").json() == {"ready": True}
        assert len(scheduler_threads()) == 1
    assert app.state.report_scheduler is None
    assert scheduler_threads() == []
    assert len(smtp_server.messages) == 4


def test_serve_without_the_scheduler_sends_nothing(
    db_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_server.port)
    app = create_app(
        settings, password_hasher=FAST_HASHER, run_scheduler=False, report_clock=Clock(MONDAY)
    )
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert app.state.report_scheduler is None
        assert scheduler_threads() == []
    assert smtp_server.messages == []


def test_serve_with_mail_disabled_runs_no_scheduler(
    db_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = make_settings(db_url, tmp_path, smtp_server.port, mail={"enabled": False})
    app = create_app(settings, password_hasher=FAST_HASHER, report_clock=Clock(MONDAY))
    with TestClient(app):
        assert app.state.report_scheduler is None
        assert scheduler_threads() == []
    assert smtp_server.messages == []
