"""``ReportScheduler``: the thread ``hallmonitor up`` and ``serve`` run, sending the weekly
summaries when they are due (``monitor.reports.sending``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from monitor.config.settings import Settings
from monitor.reports.sending import SendResult, send_due_reports

logger = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReportScheduler:
    """A thread that calls ``send_due_reports`` at start and then every ``interval_s``."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        interval_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.interval_s = interval_s
        self.runs = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the report scheduler is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="report-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current run (a send in progress finishes, up to ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> list[SendResult]:
        return send_due_reports(self.engine, self.settings, self.clock())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                # Keep the scheduler alive (the database may come back); counted and logged.
                self.errors += 1
                logger.exception(
                    "weekly report run failed; trying again in %.0f s", self.interval_s
                )
            self.runs += 1
            self._stop.wait(self.interval_s)
