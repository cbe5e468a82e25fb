"""`doctor`'s drops check: the kernel drops the running daemon counted in the database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from hallmonitor.doctor.drops import check_drops, judge_drops
from monitor.store.db import make_engine
from monitor.store.models import DailyCounterRecord
from monitor.store.queries.health import CaptureDay

DROPS_DAY = date(2026, 3, 10)


def test_a_day_without_kernel_drops_passes() -> None:
    result = judge_drops("st-marys", DROPS_DAY, CaptureDay(frames=120_000, kernel_drops=0))
    assert result.ok
    assert result.detail == "120,000 frames read by the capture on 2026-03-10, no kernel drops"


def test_kernel_drops_fail_with_their_share_and_the_fix() -> None:
    result = judge_drops("st-marys", DROPS_DAY, CaptureDay(frames=900, kernel_drops=100))
    assert not result.ok
    assert result.detail.endswith("100 packets dropped by the kernel (10.0%)")
    assert result.fix is not None and "capture.workers" in result.fix


def test_no_capture_figures_is_said_not_failed() -> None:
    result = judge_drops("st-marys", DROPS_DAY, None)
    assert result.ok
    assert "no capture figures for 'st-marys' on 2026-03-10" in result.detail


def test_the_drops_check_reads_what_the_daemon_counted_in_the_database(engine_url: str) -> None:
    engine = make_engine(engine_url)
    try:
        with Session(engine) as db, db.begin():
            for name, count in (("capture.frames", 5000), ("capture.kernel_drops", 7)):
                db.add(DailyCounterRecord(site="st-marys", day=DROPS_DAY, name=name, count=count))
    finally:
        engine.dispose()
    result = check_drops(engine_url, "st-marys", DROPS_DAY)
    assert not result.ok
    assert result.detail.endswith("7 packets dropped by the kernel (0.1%)")
    assert check_drops(engine_url, "hill", DROPS_DAY).ok


def test_the_drops_check_creates_no_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    assert not check_drops(url, "st-marys", DROPS_DAY).ok
    assert not (tmp_path / "none.sqlite3").exists()
