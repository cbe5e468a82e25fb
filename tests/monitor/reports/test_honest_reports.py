"""Reports that cannot be quietly wrong (issue 13, item 8), through a real database, a real SMTP
server and the real preview and report commands, on SQLite and PostgreSQL.

- A school whose sensor sent nothing while another school of the trust did says so.
- Days after today are never "no data".
- Weeks read as dates, never as ISO week codes.
- Internal counter names never reach a person; a counter without a label is left out and logged.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.config import Settings, build_calendar
from monitor.reports.governors import run_report_governors
from monitor.reports.scheduler import run_report_weekly, send_due_reports
from monitor.store.models import DailyCounterRecord
from tests.monitor.reports.conftest import (
    SITE,
    WEEK_START,
    SmtpServer,
    free_port,
    make_settings,
)

OTHER_SCHOOL = "Brook School"
"""A second school of the trust, in the same database, whose sensor sent nothing."""
MONDAY_0705 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
"""The weekly summary of 16 to 22 November (2026-W47) is due."""
THURSDAY_NOON = datetime(2026, 11, 19, 12, tzinfo=UTC)
"""Thursday of 2026-W47: Friday 20 November has not happened yet."""
TERM = (date(2026, 9, 3), date(2026, 12, 18))
ISO_WEEK_CODE = re.compile(r"\bW\d{1,2}\b|\bweek \d{1,2}\b", re.IGNORECASE)
"""``2026-W47``, ``W47`` or ``week 47``: how a week must never be named to a person."""
INTERNAL_NAME = re.compile(r"\b(?:capture|matches|flags|observations)\.[a-z_-]+")


def settings_of(site: str, engine_url: str, tmp_path: Path, port: int) -> Settings:
    return make_settings(engine_url, tmp_path, port, site={"name": site})


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def preview_text(settings: Settings, week: str, now: datetime) -> str:
    status, lines = run_report_weekly(
        settings, week=week, preview=True, send=False, resend=False, out_dir=None, now=now
    )
    assert status == 0, lines
    return "\n".join(lines)


def governors_html(settings: Settings, tmp_path: Path, now: datetime) -> str:
    out = tmp_path / "governors.html"
    run_report_governors(settings, start=TERM[0], end=TERM[1], out=out, now=now)
    return out.read_text(encoding="utf-8")


# --- a school with no data while another school has data -----------------------------------


def test_weekly_email_of_a_school_without_data_says_so_when_another_school_has_data(
    school: Engine, engine_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    settings = settings_of(OTHER_SCHOOL, engine_url, tmp_path, smtp.port)
    send_due_reports(school, settings, MONDAY_0705)
    messages = smtp.messages
    assert len(messages) == 3  # the reviewers' and the governor's versions
    for message in messages:
        assert message["Subject"] == (
            "Brook School weekly summary, 16–22 November 2026: "
            "no data from this school (other schools' data arrived)"
        )
        text, html = parts(message)
        assert "NO DATA ARRIVED FROM BROOK SCHOOL THIS WEEK, while 1 other school" in text
        assert "No data arrived from Brook School this week</b>, while 1 other school" in html
        assert "Nothing to report" not in text + html


def test_weekly_email_of_the_school_with_data_is_not_told_about_silence(
    school: Engine, engine_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    send_due_reports(school, settings_of(SITE, engine_url, tmp_path, smtp.port), MONDAY_0705)
    for message in smtp.messages:
        text, html = parts(message)
        assert "NO DATA ARRIVED" not in text and "No data arrived" not in html


def test_governors_report_of_a_school_without_data_says_so_when_another_school_has_data(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    settings = settings_of(OTHER_SCHOOL, engine_url, tmp_path, free_port())
    html = governors_html(settings, tmp_path, datetime(2026, 12, 19, 9, tzinfo=UTC))
    assert "No data arrived from Brook School in this period, while 1 other school" in html
    mine = governors_html(
        settings_of(SITE, engine_url, tmp_path, free_port()),
        tmp_path,
        datetime(2026, 12, 19, 9, tzinfo=UTC),
    )
    assert "No data arrived from" not in mine


# --- days after today are never "no data" --------------------------------------------------


def test_weekly_preview_of_the_running_week_does_not_call_days_to_come_no_data(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    # Monday to Thursday have data; on Thursday, Friday has not happened yet.
    text = preview_text(
        settings_of(SITE, engine_url, tmp_path, free_port()), "2026-W47", THURSDAY_NOON
    )
    assert "No data on" not in text
    assert "Data arrived on every school day this week so far." in text
    assert "This week is not over: 1 school day still to come." in text


def test_weekly_preview_of_a_past_week_still_names_the_day_without_data(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    text = preview_text(
        settings_of(SITE, engine_url, tmp_path, free_port()), "2026-W47", MONDAY_0705
    )
    assert "No data on 1 school day: Fri 20 Nov." in text
    assert "still to come" not in text


def test_governors_report_during_the_term_counts_only_the_school_days_so_far(
    school: Engine, engine_url: str, tmp_path: Path
) -> None:
    settings = settings_of(SITE, engine_url, tmp_path, free_port())
    calendar = build_calendar(settings)
    today = THURSDAY_NOON.date()
    so_far = len(calendar.school_days(TERM[0], today))
    to_come = len(calendar.school_days(TERM[0], TERM[1])) - so_far
    assert to_come > 0
    html = governors_html(settings, tmp_path, THURSDAY_NOON)
    # The seeded week has data Monday to Thursday: every other school day so far has none.
    assert f"Data arrived on 4 of {so_far} school days so far." in html
    assert f"No data on {so_far - 4} school days" in html
    assert f"{to_come} school days still to come." in html


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
