"""The in-process scheduler thread: sends the missed week on start, survives a broken database."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine

from monitor.reports.scheduler import ReportScheduler
from monitor.store.db import make_engine
from tests.monitor.reports.conftest import SmtpServer, make_settings
from tests.monitor.reports.sent import MONDAY_0705


class TestReportScheduler:
    def test_report_scheduler_sends_the_missed_week_on_start(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        scheduler = ReportScheduler(
            school, settings_for(smtp.port), clock=lambda: MONDAY_0705, interval_s=0.05
        )
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while len(smtp.messages) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            runs = scheduler.runs
            while scheduler.runs < runs + 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            scheduler.stop()
        assert len(smtp.messages) == 3
        assert scheduler.errors == 0

    def test_report_scheduler_survives_a_broken_database(
        self, tmp_path: Path, smtp: SmtpServer
    ) -> None:
        broken = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # no schema
        settings = make_settings(f"sqlite:///{tmp_path / 'x'}", tmp_path, smtp.port)
        scheduler = ReportScheduler(broken, settings, interval_s=0.05)
        scheduler.start()
        try:
            deadline = time.monotonic() + 20
            while scheduler.errors < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            scheduler.stop()
            broken.dispose()
        assert scheduler.errors >= 2
