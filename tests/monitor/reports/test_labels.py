"""What a person reads for a week or a counter (issue 13, item 8): the pure rules of ``labels``,
and the weekly email (to a real SMTP server), its preview and the governors' report on a real
database, on SQLite and PostgreSQL.

- Weeks read as dates, never as ISO week codes.
- Internal counter names never reach a person; a counter without a label is left out and
  logged as a warning naming it.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.engine import VISIBILITY_FLAGS
from monitor.reports.command import run_report_weekly
from monitor.reports.labels import COUNTER_LABELS, readable_counters, week_label
from monitor.reports.sending import send_due_reports
from monitor.store.models import DailyCounterRecord
from monitor.store.queries.stats import Count
from tests.monitor.reports.conftest import (
    INTERNAL_NAME,
    ISO_WEEK_CODE,
    MONDAY_0705,
    SITE,
    WEEK_START,
    SmtpServer,
    free_port,
    governors_html,
    parts,
    settings_of,
)

WEDNESDAY = date(2026, 12, 9)


@pytest.mark.parametrize(
    ("first_day", "label"),
    [
        (date(2026, 12, 7), "Week of 7 December"),
        (date(2026, 9, 3), "Week of 3 September"),  # a term's first, clipped week
        (date(2027, 1, 4), "Week of 4 January"),
    ],
)
def test_a_week_is_named_by_its_first_day(first_day: date, label: str) -> None:
    assert week_label(first_day) == label


def test_an_unlabelled_counter_is_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rows = [Count("flags.ech", 3), Count("capture.new_thing", 1)]
    with caplog.at_level(logging.WARNING, logger="monitor.reports.labels"):
        kept = readable_counters(rows, lambda row: row.key)
    assert kept == [Count("flags.ech", 3)]
    assert "capture.new_thing" in caplog.text


def test_every_visibility_flag_the_engine_counts_has_a_label() -> None:
    assert {f"flags.{flag.value}" for flag in VISIBILITY_FLAGS} <= set(COUNTER_LABELS)


# --- weeks are dates -----------------------------------------------------------------------


def test_weekly_emails_name_the_week_by_its_dates_never_its_iso_code(
    school: Engine, engine_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    send_due_reports(school, settings_of(SITE, engine_url, tmp_path, smtp.port), MONDAY_0705)
    assert len(smtp.messages) == 3
    for message in smtp.messages:
        text, html = parts(message)
        assert "16–22 November 2026" in str(message["Subject"]) + text + html
        for words in (str(message["Subject"]), text, html):
            assert ISO_WEEK_CODE.findall(words) == []


def test_governors_report_trend_names_weeks_by_their_first_day(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    html = governors_html(
        settings_of(SITE, engine_url, tmp_path, free_port()), tmp_path, MONDAY_0705
    )
    assert '<th scope="row">Week of 16 November</th>' in html
    assert ISO_WEEK_CODE.findall(html) == []


# --- counter names -------------------------------------------------------------------------


def add_capture_counters(engine: Engine) -> None:
    """The runner's own counters, and one no label knows (a newer engine's, say)."""
    with Session(engine) as db, db.begin():
        db.add_all(
            [
                DailyCounterRecord(site=SITE, day=WEEK_START, name="capture.frames", count=9_000),
                DailyCounterRecord(site=SITE, day=WEEK_START, name="capture.kernel_drops", count=7),
                DailyCounterRecord(site=SITE, day=WEEK_START, name="capture.mystery", count=3),
            ]
        )


def test_weekly_summary_shows_counters_in_words_and_leaves_out_unknown_ones_with_a_warning(
    school: Engine, engine_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_capture_counters(school)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="monitor.reports.labels"):
        status, _ = run_report_weekly(
            settings_of(SITE, engine_url, tmp_path, free_port()),
            week="2026-W47", preview=True, send=False, resend=False, out_dir=out, now=MONDAY_0705,
        )  # fmt: skip
    assert status == 0
    for path in out.iterdir():
        words = path.read_text(encoding="utf-8")
        assert "Network packets the sensor read" in words, path.name
        assert "Network packets lost because the sensor could not keep up" in words
        assert INTERNAL_NAME.findall(words) == [], path.name
        assert "mystery" not in words
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("capture.mystery" in w for w in warnings)


def test_governors_report_never_shows_an_internal_counter_name(
    school: Engine, engine_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_capture_counters(school)
    with caplog.at_level(logging.WARNING, logger="monitor.reports.labels"):
        html = governors_html(
            settings_of(SITE, engine_url, tmp_path, free_port()), tmp_path, MONDAY_0705
        )
    assert "Network packets the sensor read" in html
    assert INTERNAL_NAME.findall(html) == []
    assert any("capture.mystery" in r.getMessage() for r in caplog.records)
