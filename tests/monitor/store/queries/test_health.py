"""What /healthz and /metrics read: each site's latest frame total, incidents by site and
review status, and when each kind of report was last sent."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from monitor.store.models import SentReportRecord
from monitor.store.queries.health import (
    CaptureDay,
    FrameTotal,
    capture_day,
    incident_counts,
    last_sent_reports,
    latest_frame_totals,
)
from tests.monitor.store.queries.factories import OTHER_SITE, SITE, T0, add_counter, add_incident

TODAY = date(2026, 3, 10)


def test_latest_totals_take_each_sites_latest_recent_day(db: Session) -> None:
    add_counter(db, TODAY, "capture.frames", 50, site="st-marys")
    add_counter(db, TODAY - timedelta(days=1), "capture.frames", 9000, site="st-marys")
    add_counter(db, TODAY, "observations.dns", 7, site="st-marys")
    add_counter(db, TODAY - timedelta(days=1), "capture.frames", 300, site="hill")
    add_counter(db, TODAY - timedelta(days=2), "capture.frames", 5, site="retired")
    assert latest_frame_totals(db, TODAY) == {
        "st-marys": FrameTotal(TODAY, 50),
        "hill": FrameTotal(TODAY - timedelta(days=1), 300),
    }


def test_a_capture_day_gives_the_sites_frames_and_kernel_drops_of_that_day(db: Session) -> None:
    add_counter(db, TODAY, "capture.frames", 900, site="st-marys")
    add_counter(db, TODAY, "capture.kernel_drops", 15, site="st-marys")
    add_counter(db, TODAY - timedelta(days=1), "capture.kernel_drops", 500, site="st-marys")
    add_counter(db, TODAY, "capture.kernel_drops", 40, site="hill")
    assert capture_day(db, "st-marys", TODAY) == CaptureDay(frames=900, kernel_drops=15)


def test_a_capture_day_without_figures_is_none(db: Session) -> None:
    add_counter(db, TODAY, "observations.dns", 7, site="st-marys")
    assert capture_day(db, "st-marys", TODAY) is None
    assert capture_day(db, "hill", TODAY) is None


def test_incidents_are_counted_by_site_and_review_status(db: Session) -> None:
    add_incident(db, status="new")
    add_incident(db, status="new")
    add_incident(db, status="closed", outcome="no_action")
    add_incident(db, status="in_review", site=OTHER_SITE)
    assert incident_counts(db) == {
        (SITE, "new"): 2,
        (SITE, "closed"): 1,
        (OTHER_SITE, "in_review"): 1,
    }


def test_the_last_send_of_each_kind_counts_only_reports_sent(db: Session) -> None:
    for n, (kind, status, sent) in enumerate(
        [("weekly", "sent", T0), ("weekly", "sent", T0 + timedelta(days=7)),
         ("weekly", "failed", None), ("termly", "pending", None)]
    ):  # fmt: skip
        db.add(
            SentReportRecord(
                kind=kind, period=f"2026-W{n + 10}", recipient="head@school.example", site=SITE,
                role="reviewer", status=status, created_at=T0, sent_at=sent,
            )
        )  # fmt: skip
    db.flush()
    assert last_sent_reports(db) == {"weekly": T0 + timedelta(days=7)}
