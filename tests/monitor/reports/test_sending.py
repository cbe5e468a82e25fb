"""Sending exactly once, through a real SMTP server and database; a trust's schools sharing one."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from monitor.config.settings import Settings
from monitor.reports.schedule import STALE_PENDING
from monitor.reports.sending import find_recipients, last_failures, send_due_reports
from monitor.reports.weekly import ReportRole
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
from tests.monitor.reports.sent import (
    DEPUTY,
    GOVERNOR,
    HEAD,
    MONDAY_0705,
    by_recipient,
    parts,
    rows,
)


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
