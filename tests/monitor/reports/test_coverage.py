"""When a report may say "no data" (issue 13, item 8): the pure rules of ``coverage``, and the
weekly email (to a real SMTP server), its preview and the governors' report on a real database
of two schools, one with data and one without, on SQLite and PostgreSQL.

- A school whose sensor sent nothing while another school of the trust did says so.
- Days after today are never "no data".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from monitor.config.rules import build_calendar
from monitor.reports.coverage import days_so_far, days_without_data, is_silent_site
from monitor.reports.sending import send_due_reports
from tests.monitor.reports.conftest import (
    MONDAY_0705,
    OTHER_SCHOOL,
    SITE,
    TERM,
    THURSDAY_NOON,
    SmtpServer,
    free_port,
    governors_html,
    parts,
    preview_text,
    settings_of,
)

WEDNESDAY = date(2026, 12, 9)


def test_days_after_today_are_never_no_data() -> None:
    week = [date(2026, 12, 7 + n) for n in range(5)]
    counts = [(day, 0) for day in week]
    assert days_without_data(counts, WEDNESDAY) == tuple(week[:3])
    assert days_so_far(week, WEDNESDAY) == week[:3]


def test_a_school_is_silent_only_if_it_has_nothing_while_another_has_data() -> None:
    assert is_silent_site("Brook School", 0, 1)
    assert not is_silent_site("Brook School", 12, 1)  # it did send data
    assert not is_silent_site("Brook School", 0, 0)  # nobody sent data: plain "no data"
    assert not is_silent_site(None, 0, 2)  # a trust-wide report covers every school


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
        assert "Every incident has been reviewed" not in text + html  # there were none
        assert "No incident is waiting for review." in text


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
