"""The weekly schedule (pure) and sending exactly once, through a real SMTP server and database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from monitor.config import ReportSettings, Settings
from monitor.reports.scheduler import (
    STALE_PENDING,
    DueReport,
    Recipient,
    ReportScheduler,
    due_reports,
    find_recipients,
    last_failures,
    run_report_weekly,
    send_due_reports,
)
from monitor.reports.weekly import ReportRole, Week, parse_week
from monitor.store.db import make_engine
from monitor.store.models import IncidentRecord, SentReportRecord, UserRecord
from tests.monitor.reports.conftest import (
    PUBLIC_URL,
    SITE,
    SmtpServer,
    StartSmtp,
    device_identifiers,
    free_port,
    make_settings,
)

MONDAY_0705 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
"""Monday 23 November 2026, 07:05 in London (GMT): the summary of 2026-W47 is due."""
HEAD, GOVERNOR, DEPUTY = (
    "head@hill-school.example",
    "governor@hill-school.example",
    "deputy@hill-school.example",
)
PEOPLE = [Recipient(HEAD, ReportRole.REVIEWER), Recipient(GOVERNOR, ReportRole.GOVERNOR)]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def by_recipient(server: SmtpServer) -> dict[str, EmailMessage]:
    messages = server.messages
    assert len({m["To"] for m in messages}) == len(messages), "a recipient got two messages"
    return {str(m["To"]): m for m in messages}


def rows(engine: Engine) -> list[SentReportRecord]:
    with Session(engine) as db:
        return list(db.scalars(select(SentReportRecord).order_by(SentReportRecord.recipient)))


# --- the schedule --------------------------------------------------------------------------


class TestDueReports:
    @pytest.mark.parametrize(
        ("now", "week"),
        [
            # Before Monday 07:00, last Monday's report (of the week before last) is the due one.
            (datetime(2026, 11, 23, 6, 59, tzinfo=UTC), "2026-W46"),
            (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "2026-W47"),
            # After downtime, the missed report is due when the process starts again.
            (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), "2026-W47"),
            (datetime(2026, 11, 29, 23, 59, tzinfo=UTC), "2026-W47"),
            # Clocks go forward on 29 March 2026: Monday 07:00 BST is 06:00 UTC.
            (datetime(2026, 3, 30, 5, 59, tzinfo=UTC), "2026-W12"),
            (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "2026-W13"),
            # Clocks go back on 25 October 2026: Monday 07:00 GMT is 07:00 UTC again.
            (datetime(2026, 10, 26, 6, 59, tzinfo=UTC), "2026-W42"),
            (datetime(2026, 10, 26, 7, 0, tzinfo=UTC), "2026-W43"),
            # New year: week 53 of 2026 is reported on Monday 4 January 2027.
            (datetime(2027, 1, 4, 7, 0, tzinfo=UTC), "2026-W53"),
        ],
    )
    def test_due_reports_default_monday_0700_london_across_the_clock_change(
        self, now: datetime, week: str
    ) -> None:
        due = due_reports(now, "Europe/London", ReportSettings(), set(), PEOPLE)
        assert {(d.week.iso, d.recipient) for d in due} == {(week, HEAD), (week, GOVERNOR)}

    def test_due_reports_records_the_local_send_time(self) -> None:
        now = datetime(2026, 6, 10, 12, tzinfo=UTC)
        [due] = due_reports(now, "Europe/London", ReportSettings(), set(), PEOPLE[:1])
        assert due == DueReport(
            Week(2026, 23), HEAD, ReportRole.REVIEWER, datetime(2026, 6, 8, 6, tzinfo=UTC)
        )

    def test_due_reports_skips_what_is_recorded(self) -> None:
        sent = {("2026-W47", HEAD)}
        due = due_reports(MONDAY_0705, "Europe/London", ReportSettings(), sent, PEOPLE)
        assert [d.recipient for d in due] == [GOVERNOR]

    def test_due_reports_other_day_and_zone(self) -> None:
        reports = ReportSettings(weekly_day="friday", weekly_time="16:30")
        new_york = "America/New_York"
        before = datetime(2026, 11, 27, 21, 29, tzinfo=UTC)  # Friday 16:29 EST
        assert {d.week.iso for d in due_reports(before, new_york, reports, set(), PEOPLE)} == {
            "2026-W46"
        }
        after = before + timedelta(minutes=1)
        assert {d.week.iso for d in due_reports(after, new_york, reports, set(), PEOPLE)} == {
            "2026-W47"
        }


# --- sending -------------------------------------------------------------------------------


@pytest.fixture
def settings_for(tmp_path: Path, engine_url: str) -> Callable[..., Settings]:
    def build(port: int, **mail: object) -> Settings:
        return make_settings(engine_url, tmp_path, port, mail=dict(mail))

    return build


class TestSendDueReports:
    def test_send_due_reports_sends_each_version_once_and_records_it(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port)
        results = send_due_reports(school, settings, MONDAY_0705)
        assert sorted((r.recipient, r.role, r.status) for r in results) == [
            (DEPUTY, ReportRole.REVIEWER, "sent"),
            (GOVERNOR, ReportRole.GOVERNOR, "sent"),
            (HEAD, ReportRole.REVIEWER, "sent"),
        ]
        received = by_recipient(smtp)
        assert sorted(smtp.recipients) == [[DEPUTY], [GOVERNOR], [HEAD]]
        # The disabled governor's address gets nothing.
        assert set(received) == {HEAD, GOVERNOR, DEPUTY}
        head = received[HEAD]
        assert head["Subject"] == (
            "Hill School weekly summary, 16–22 November 2026: 5 incidents, 3 to review"
        )
        assert head["From"] == "hallmonitor@hill-school.example"
        text, html = parts(head)
        with Session(school) as db:
            waiting = db.scalars(
                select(IncidentRecord.id).where(IncidentRecord.status != "closed")
            ).all()
        for incident_id in waiting:
            assert f"{PUBLIC_URL}/incidents/{incident_id}" in text
            assert f'href="{PUBLIC_URL}/incidents/{incident_id}"' in html
        assert "Room 4 laptop (Ms Okafor)" in text and "Room 4 laptop (Ms Okafor)" in html
        recorded = rows(school)
        assert [(r.recipient, r.status, r.attempts, r.period) for r in recorded] == [
            (DEPUTY, "sent", 1, "2026-W47"),
            (GOVERNOR, "sent", 1, "2026-W47"),
            (HEAD, "sent", 1, "2026-W47"),
        ]
        assert {r.recipient: r.message_id for r in recorded} == {
            to: m["Message-ID"].strip() for to, m in received.items()
        }

    def test_send_due_reports_second_trigger_sends_nothing(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port)
        send_due_reports(school, settings, MONDAY_0705)
        assert send_due_reports(school, settings, MONDAY_0705) == []
        assert send_due_reports(school, settings, MONDAY_0705 + timedelta(days=3)) == []
        assert len(smtp.messages) == 3

    def test_send_due_reports_governor_email_holds_no_device_identifier(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        send_due_reports(school, settings_for(smtp.port), MONDAY_0705)
        governor = by_recipient(smtp)[GOVERNOR]
        text, html = parts(governor)
        identifiers = device_identifiers(school)
        assert len(identifiers) >= 10
        whole = governor.as_string() + text + html
        assert sorted(i for i in identifiers if i in whole) == []
        assert "/incidents/" not in whole
        assert "5 incidents this week" in text
        # The reviewer's copy does name devices: the check above is not vacuous.
        assert any(i in parts(by_recipient(smtp)[HEAD])[0] for i in identifiers)

    def test_send_due_reports_server_down_then_up_sends_once(
        self, school: Engine, start_smtp: StartSmtp, settings_for
    ) -> None:
        port = free_port()
        settings = settings_for(port)
        failed = send_due_reports(school, settings, MONDAY_0705)
        assert {r.status for r in failed} == {"failed"}
        assert all(r.error and r.error.startswith("temporary:") for r in failed)
        with Session(school) as db:
            failures = last_failures(db)
        assert sorted(f.recipient for f in failures) == [DEPUTY, GOVERNOR, HEAD]
        assert {(f.attempts, f.period) for f in failures} == {(1, "2026-W47")}

        server = start_smtp(port=port)
        # Not before retry_minutes (15) have passed.
        assert send_due_reports(school, settings, MONDAY_0705 + timedelta(minutes=14)) == []
        retried = send_due_reports(school, settings, MONDAY_0705 + timedelta(minutes=15))
        assert sorted(r.status for r in retried) == ["sent", "sent", "sent"]
        assert send_due_reports(school, settings, MONDAY_0705 + timedelta(hours=2)) == []
        assert sorted(smtp_to for [smtp_to] in server.recipients) == [DEPUTY, GOVERNOR, HEAD]
        assert {(r.status, r.attempts) for r in rows(school)} == {("sent", 2)}
        with Session(school) as db:
            assert last_failures(db) == []

    def test_send_due_reports_backs_off_while_the_server_stays_down(
        self, school: Engine, settings_for
    ) -> None:
        settings = settings_for(free_port(), reviewers=[HEAD], governors=[])
        with Session(school) as db, db.begin():  # only the head, for a short test
            db.execute(update(SentReportRecord).values(status="sent"))
        send_due_reports(school, settings, MONDAY_0705)
        attempts = []
        for minutes in (15, 29, 45, 104, 105):
            results = send_due_reports(school, settings, MONDAY_0705 + timedelta(minutes=minutes))
            attempts.append(len([r for r in results if r.recipient == HEAD]))
        # 15 min, then 30 after that (at 45), then 60 after that (at 105).
        assert attempts == [1, 0, 1, 0, 1]

    def test_send_due_reports_permanent_failure_waits_a_day(
        self, school: Engine, start_smtp: StartSmtp, settings_for
    ) -> None:
        server = start_smtp()
        server.handler.reply = "550 5.1.1 Mailbox unavailable"
        settings = settings_for(server.port, reviewers=[HEAD], governors=[])
        [result] = [
            r for r in send_due_reports(school, settings, MONDAY_0705) if r.recipient == HEAD
        ]
        assert result.status == "failed" and result.error
        assert result.error.startswith("permanent: 127.0.0.1")
        server.handler.reply = None
        later = send_due_reports(school, settings, MONDAY_0705 + timedelta(hours=23))
        assert [r for r in later if r.recipient == HEAD] == []
        next_day = send_due_reports(school, settings, MONDAY_0705 + timedelta(hours=24))
        assert [(r.recipient, r.status) for r in next_day if r.recipient == HEAD] == [
            (HEAD, "sent")
        ]

    def test_send_due_reports_retries_a_send_interrupted_by_a_crash(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port, reviewers=[HEAD], governors=[])
        send_due_reports(school, settings, MONDAY_0705)
        with Session(school) as db, db.begin():  # as if the process died while sending
            db.execute(
                update(SentReportRecord)
                .where(SentReportRecord.recipient == HEAD)
                .values(status="pending", message_id=None)
            )
        soon = MONDAY_0705 + STALE_PENDING - timedelta(seconds=1)
        assert send_due_reports(school, settings, soon) == []
        [result] = send_due_reports(school, settings, MONDAY_0705 + STALE_PENDING)
        assert (result.recipient, result.status) == (HEAD, "sent")

    def test_send_due_reports_does_nothing_while_mail_is_disabled(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        assert send_due_reports(school, settings_for(smtp.port, enabled=False), MONDAY_0705) == []
        assert smtp.messages == [] and rows(school) == []

    def test_send_due_reports_racing_processes_send_once(
        self, school: Engine, engine_url: str, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port)
        engines = [make_engine(engine_url) for _ in range(3)]
        barrier = threading.Barrier(len(engines))
        errors: list[BaseException] = []

        def run(engine: Engine) -> None:
            try:
                barrier.wait()
                send_due_reports(engine, settings, MONDAY_0705)
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for engine in engines:
            engine.dispose()
        assert errors == []
        assert sorted(smtp.recipients) == [[DEPUTY], [GOVERNOR], [HEAD]]
        assert {r.status for r in rows(school)} == {"sent"}

    def test_send_due_reports_week_without_any_data_still_sends_and_says_no_data(
        self, engine_url: str, smtp: SmtpServer, settings_for
    ) -> None:
        engine = make_engine(engine_url)
        try:
            send_due_reports(engine, settings_for(smtp.port), MONDAY_0705)
        finally:
            engine.dispose()
        received = by_recipient(smtp)
        assert set(received) == {HEAD, GOVERNOR}
        for message in received.values():
            assert message["Subject"] == (
                "Hill School weekly summary, 16–22 November 2026: no data received"
            )
            text, html = parts(message)
            assert "NO DATA ARRIVED THIS WEEK" in text
            assert "No data arrived this week." in html
            assert "Nothing to report" not in text + html
            assert "No data on 5 school days" in text


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


# --- hallmonitor report weekly -------------------------------------------------------------


class TestRunReportWeekly:
    def test_run_report_weekly_preview_writes_both_versions(
        self, school: Engine, settings_for, tmp_path: Path
    ) -> None:
        out = tmp_path / "out"
        status, lines = run_report_weekly(
            settings_for(free_port()),
            week="2026-W47",
            preview=True,
            send=False,
            resend=False,
            out_dir=out,
        )
        assert status == 0
        names = sorted(p.name for p in out.iterdir())
        assert names == [
            "weekly-2026-W47-governor.html",
            "weekly-2026-W47-governor.txt",
            "weekly-2026-W47-reviewer.html",
            "weekly-2026-W47-reviewer.txt",
        ]
        assert lines == [f"wrote {out / name}" for name in names[2:] + names[:2]]

    def test_run_report_weekly_preview_prints_the_text_version(
        self, school: Engine, settings_for
    ) -> None:
        status, lines = run_report_weekly(
            settings_for(free_port()),
            week=None,
            preview=True,
            send=False,
            resend=False,
            out_dir=None,
            now=MONDAY_0705,
        )
        assert status == 0
        assert lines[0].startswith("--- reviewer version: Hill School weekly summary, 16–22")
        assert "5 incidents this week: up 3 from 2 the week before." in lines

    def test_run_report_weekly_send_then_resend(
        self, school: Engine, smtp: SmtpServer, settings_for
    ) -> None:
        settings = settings_for(smtp.port, reviewers=[HEAD], governors=[])
        options: dict[str, Any] = {
            "week": "2026-W47",
            "preview": False,
            "out_dir": None,
            "now": MONDAY_0705,
        }
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and len(smtp.messages) == 2
        assert lines[0].startswith(f"sent 2026-W47 to {HEAD} (reviewer): <")
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and len(smtp.messages) == 2
        assert lines[0].startswith(f"already sent 2026-W47 to {HEAD} (reviewer)")
        # The scheduler agrees: this week is done.
        assert send_due_reports(school, settings, MONDAY_0705) == []
        status, lines = run_report_weekly(settings, send=False, resend=True, **options)
        assert status == 0 and len(smtp.messages) == 4
        assert [m["To"] for m in smtp.messages].count(HEAD) == 2
        head = next(r for r in rows(school) if r.recipient == HEAD)
        assert (head.status, head.attempts) == ("sent", 2)
        last_to_head = [m for m in smtp.messages if m["To"] == HEAD][-1]
        assert head.message_id == last_to_head["Message-ID"].strip()

    def test_run_report_weekly_send_retries_a_failed_report_at_once(
        self, school: Engine, start_smtp: StartSmtp, settings_for
    ) -> None:
        port = free_port()
        settings = settings_for(port, reviewers=[HEAD], governors=[])
        options: dict[str, Any] = {
            "week": "2026-W47",
            "preview": False,
            "out_dir": None,
            "now": MONDAY_0705,
        }
        status, lines = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 1
        assert lines[0].startswith(f"error: 2026-W47 to {HEAD} (reviewer) failed: temporary:")
        server = start_smtp(port=port)
        status, _ = run_report_weekly(settings, send=True, resend=False, **options)
        assert status == 0 and [m["To"] for m in server.messages] == [HEAD, DEPUTY]

    @pytest.mark.parametrize(
        ("arguments", "status", "line"),
        [
            (
                {"preview": True, "send": True},
                2,
                "error: choose one of --preview, --send or --resend",
            ),
            ({"preview": False}, 2, "error: choose one of --preview, --send or --resend"),
            (
                {"preview": True, "week": "2026-47"},
                2,
                "error: --week '2026-47' is not an ISO week; write e.g. 2026-W47",
            ),
            (
                {"preview": True, "week": "2026-W54"},
                2,
                "error: --week '2026-W54': 2026 has no week 54",
            ),
        ],
    )
    def test_run_report_weekly_refuses_wrong_options(
        self, settings_for, arguments: dict[str, object], status: int, line: str
    ) -> None:
        options: dict[str, Any] = {
            "week": None,
            "preview": False,
            "send": False,
            "resend": False,
            "out_dir": None,
        }
        options.update(arguments)
        assert run_report_weekly(settings_for(free_port()), **options) == (status, [line])

    def test_run_report_weekly_send_needs_mail_enabled(self, school: Engine, settings_for) -> None:
        status, lines = run_report_weekly(
            settings_for(free_port(), enabled=False),
            week=None,
            preview=False,
            send=True,
            resend=False,
            out_dir=None,
        )
        assert status == 1 and lines[0].startswith("error: mail.enabled is false")


def test_parse_week_round_trips() -> None:
    assert parse_week("2026-W47").iso == "2026-W47"


# --- a trust: several schools, one database ------------------------------------------------

DALE = "Dale School"
DALE_HEAD = "head@dale-school.example"
NO_ADDRESSES = Settings.model_validate({}).mail
"""Mail settings without configured recipients: only the users in the database count."""


class TestSchoolsSharingADatabase:
    """Each school's scheduler sends its own school's report, to its own people, once."""

    def dale_settings(self, engine_url: str, tmp_path: Path, port: int) -> Settings:
        mail = {"reviewers": [DALE_HEAD], "governors": [GOVERNOR]}
        return make_settings(engine_url, tmp_path, port, mail=mail, site={"name": DALE})

    def test_a_governor_of_two_schools_gets_each_schools_report(
        self, school: Engine, smtp: SmtpServer, settings_for, engine_url: str, tmp_path: Path
    ) -> None:
        hill, dale = settings_for(smtp.port), self.dale_settings(engine_url, tmp_path, smtp.port)
        send_due_reports(school, hill, MONDAY_0705)
        send_due_reports(school, dale, MONDAY_0705)
        to_governor = [m for m in smtp.messages if m["To"] == GOVERNOR]
        assert sorted(m["Subject"].split(" weekly")[0] for m in to_governor) == [DALE, SITE]
        assert {(r.site, r.recipient) for r in rows(school) if r.recipient == GOVERNOR} == {
            (SITE, GOVERNOR),
            (DALE, GOVERNOR),
        }
        assert send_due_reports(school, hill, MONDAY_0705) == []
        assert send_due_reports(school, dale, MONDAY_0705) == []

    def test_a_school_retries_only_its_own_failed_reports(
        self, school: Engine, smtp: SmtpServer, settings_for, engine_url: str, tmp_path: Path
    ) -> None:
        hill, dale = settings_for(smtp.port), self.dale_settings(engine_url, tmp_path, smtp.port)
        send_due_reports(school, dale, MONDAY_0705)
        with Session(school) as db, db.begin():
            db.execute(
                update(SentReportRecord)
                .where(SentReportRecord.recipient == DALE_HEAD)
                .values(status="failed", last_error="421 try later")
            )
        later = MONDAY_0705 + timedelta(hours=2)
        with Session(school) as db:
            assert [f.recipient for f in last_failures(db, site=DALE)] == [DALE_HEAD]
            assert last_failures(db, site=SITE) == []
            assert [f.recipient for f in last_failures(db)] == [DALE_HEAD]
        retried = send_due_reports(school, hill, later)
        assert DALE_HEAD not in {r.recipient for r in retried}
        assert [r.recipient for r in send_due_reports(school, dale, later)] == [DALE_HEAD]

    def test_users_of_another_school_get_no_report_of_this_one(self, school: Engine) -> None:
        with Session(school) as db, db.begin():
            db.add(
                UserRecord(
                    username="dale-head", display_name="Dale Head", email=DALE_HEAD,
                    password_hash="x", role="reviewer", site=DALE, created_at=MONDAY_0705,
                )
            )  # fmt: skip
        with Session(school) as db:
            hill = find_recipients(db, NO_ADDRESSES, SITE)
            dale = find_recipients(db, NO_ADDRESSES, DALE)
            trust = find_recipients(db, NO_ADDRESSES, None)
        assert DALE_HEAD not in {r.address for r in hill}
        assert {r.address for r in dale} == {DEPUTY, DALE_HEAD}
        assert {r.address for r in trust} == {DEPUTY}
