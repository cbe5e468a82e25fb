"""The running capture daemon's kernel drops, from the daily counters it writes to the database
(``CaptureCounts``, every few minutes while it runs): no new channel to the daemon."""

from __future__ import annotations

from datetime import date

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hallmonitor.doctor.capture import count_of
from monitor.checks import CheckResult, failed, missing_sqlite_file, passed
from monitor.store.db import make_engine, normalise_url
from monitor.store.queries.health import CaptureDay, capture_day


def judge_drops(site: str, day: date, figures: CaptureDay | None) -> CheckResult:
    """Whether the capture daemon of ``site`` lost packets in the kernel on ``day``."""
    if figures is None:
        return passed("drops", f"no capture figures for {site!r} on {day} (no daemon ran yet)")
    seen = f"{count_of(figures.frames, 'frame')} read by the capture on {day}"
    if not figures.kernel_drops:
        return passed("drops", f"{seen}, no kernel drops")
    share = figures.kernel_drops / (figures.frames + figures.kernel_drops)
    return failed(
        "drops",
        f"{seen}, {count_of(figures.kernel_drops, 'packet')} dropped by the kernel ({share:.1%})",
        "the capture cannot keep up: set capture.workers to the number of cores, or raise "
        "capture.buffer_mb, then restart the daemon",
    )


def check_drops(url: str, site: str, day: date) -> CheckResult:
    """The capture's kernel drops on ``day``, as the running daemon counted them in the database
    (the daemon's own metrics, ``capture.metrics_listen``, show them live too)."""
    parsed = normalise_url(url)
    if missing_sqlite_file(parsed):  # opening it would create it
        return failed(
            "drops", "no database to read the capture figures from", "see the database check"
        )
    try:
        engine = make_engine(parsed)
        try:
            with Session(engine) as db:
                figures = capture_day(db, site, day)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as e:
        first_line = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return failed(
            "drops", f"the capture figures cannot be read: {first_line}", "see the database check"
        )
    return judge_drops(site, day, figures)
