"""Sending each weekly summary exactly once per week and recipient.

``send_due_reports`` records every report in ``sent_reports`` before sending it. The unique key
(kind, period, recipient) decides who sends when two processes race (an in-process scheduler
and a systemd timer, say): each inserts a ``pending`` row first, and only the one whose insert
succeeds sends. Afterwards the row is ``sent`` (with the Message-ID) or ``failed`` (with
``attempts`` and ``last_error``). A failed row is retried, again by whoever wins a conditional
update, when ``monitor.reports.schedule`` says its time has come. For rows that are not yet
sent, ``sent_at`` holds the time of the latest attempt.

One case is at-least-once rather than exactly-once: a process that dies between the SMTP
server accepting a message and the ``sent`` update leaves the row ``pending``; after
``STALE_PENDING`` it is sent again, since a lost report is worse than a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.config.review import MailSettings
from monitor.config.rules import build_calendar
from monitor.config.settings import Settings
from monitor.policy import SchoolCalendar
from monitor.reports.mail import MailError, PermanentMailError, send_message
from monitor.reports.render import new_message_id, render_weekly_email, weekly_subject
from monitor.reports.schedule import (
    GIVE_UP_AFTER,
    KIND_WEEKLY,
    PERMANENT,
    TEMPORARY,
    Recipient,
    due_reports,
    is_retry_due,
    report_scope,
)
from monitor.reports.weekly import ReportRole, Week, WeeklySummary, build_weekly_summary, parse_week
from monitor.store.models import SentReportRecord, UserRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one report in one run."""

    period: str
    recipient: str
    role: ReportRole
    status: str
    """``sent``, ``failed``, ``already sent``, ``in progress``."""
    message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReportFailure:
    """A report that failed and is not sent yet (for ``/healthz`` and the dashboard)."""

    kind: str
    period: str
    recipient: str
    role: str
    attempts: int
    last_error: str
    last_attempt_at: datetime | None


def find_recipients(db: Session, mail: MailSettings, site: str | None) -> list[Recipient]:
    """``mail.reviewers`` and ``mail.governors``, then active users with an address who may see
    ``site``'s report: users of every school, and (for one school's report) that school's own.
    An address listed in both roles gets the reviewer version once."""
    found: dict[str, Recipient] = {}
    configured = [(a, ReportRole.REVIEWER) for a in mail.reviewers]
    configured += [(a, ReportRole.GOVERNOR) for a in mail.governors]
    users = db.execute(
        select(UserRecord.email, UserRecord.role)
        .where(
            UserRecord.email.is_not(None),
            UserRecord.disabled.is_(False),
            UserRecord.role.in_([ReportRole.REVIEWER.value, ReportRole.GOVERNOR.value]),
            UserRecord.site.is_(None)
            if site is None
            else or_(UserRecord.site.is_(None), UserRecord.site == site),
        )
        .order_by(UserRecord.id)
    )
    configured += [(email, ReportRole(role)) for email, role in users if email]
    for address, role in configured:
        key = address.strip().lower()
        known = found.get(key)
        if known is None or (known.role is ReportRole.GOVERNOR and role is ReportRole.REVIEWER):
            found[key] = Recipient(address.strip(), role)
    return list(found.values())


# --- sending -------------------------------------------------------------------------------


class WeeklySender:
    """One run's state: settings, a lazily built calendar, and summaries built once per week
    and role."""

    def __init__(self, engine: Engine, settings: Settings, now: datetime) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self._calendar: SchoolCalendar | None = None
        self._summaries: dict[tuple[str, ReportRole], WeeklySummary] = {}

    def summary(self, week: Week, role: ReportRole) -> WeeklySummary:
        key = (week.iso, role)
        if key not in self._summaries:
            if self._calendar is None:
                self._calendar = build_calendar(self.settings)
            with Session(self.engine) as db:
                self._summaries[key] = build_weekly_summary(
                    db,
                    role,
                    week,
                    school=self.settings.site.name,
                    site=self.settings.report_site(),
                    calendar=self._calendar,
                    public_url=self.settings.web.public_url(),
                    floor=self.settings.incidents.floor(),
                    today=self.now.astimezone(self._calendar.zone).date(),
                )
        return self._summaries[key]

    def claim_new(self, week: Week, recipient: str, role: ReportRole) -> int | None:
        """Insert the ``pending`` row; None when another run recorded this report first."""
        record = SentReportRecord(
            kind=KIND_WEEKLY,
            period=week.iso,
            recipient=recipient,
            site=report_scope(self.settings),
            role=role.value,
            status="pending",
            attempts=1,
            created_at=self.now,
            sent_at=self.now,
        )
        try:
            with Session(self.engine) as db, db.begin():
                db.add(record)
                db.flush()
                row_id = record.id
        except IntegrityError:
            return None
        return row_id

    def claim_again(self, record: SentReportRecord) -> bool:
        """Move a failed, stale or (for a resend) sent row to ``pending``, if nobody else did."""
        with Session(self.engine) as db, db.begin():
            claimed = db.execute(
                update(SentReportRecord)
                .where(
                    SentReportRecord.id == record.id,
                    SentReportRecord.status == record.status,
                    SentReportRecord.attempts == record.attempts,
                )
                .values(status="pending", attempts=record.attempts + 1, sent_at=self.now)
            )
        return cast("CursorResult[Any]", claimed).rowcount == 1

    def attempt(self, row_id: int, week: Week, recipient: str, role: ReportRole) -> SendResult:
        """Build, send and record one claimed report."""
        mail = self.settings.mail
        values: dict[str, object]
        try:
            summary = self.summary(week, role)
            message = render_weekly_email(
                summary,
                from_address=mail.from_address,
                recipient=recipient,
                now=self.now,
                message_id=new_message_id(mail.from_address),
            )
            message_id = send_message(message, mail)
        except MailError as e:
            kind = PERMANENT if isinstance(e, PermanentMailError) else TEMPORARY
            values = {"status": "failed", "last_error": f"{kind}: {e}"}
            logger.warning(
                "weekly summary %s for a %s: %s failure: %s; will try again", week, role, kind, e
            )
            self._record(row_id, values)
            return SendResult(week.iso, recipient, role, "failed", error=f"{kind}: {e}")
        except Exception as e:
            # A bug or a database problem while building the summary: record it (retried as
            # temporary) and keep the scheduler running; the traceback goes to the log.
            logger.exception("weekly summary %s for a %s could not be built", week, role)
            error = f"{TEMPORARY}: {type(e).__name__}: {e}"
            self._record(row_id, {"status": "failed", "last_error": error})
            return SendResult(week.iso, recipient, role, "failed", error=error)
        values = {
            "status": "sent",
            "message_id": message_id,
            "subject": weekly_subject(summary),
            "sent_at": self.now,
            "last_error": None,
        }
        self._record(row_id, values)
        logger.info("weekly summary %s sent to a %s (%s)", week, role, message_id)
        return SendResult(week.iso, recipient, role, "sent", message_id=message_id)

    def _record(self, row_id: int, values: dict[str, object]) -> None:
        with Session(self.engine) as db, db.begin():
            db.execute(
                update(SentReportRecord).where(SentReportRecord.id == row_id).values(**values)
            )


def send_due_reports(db_engine: Engine, settings: Settings, now: datetime) -> list[SendResult]:
    """Send every weekly summary due at ``now`` and retry failed ones whose time has come.

    Does nothing while ``mail.enabled`` is false. Safe to call from several processes at once.
    """
    if not settings.mail.enabled:
        return []
    sender = WeeklySender(db_engine, settings, now)
    scope = report_scope(settings)
    with Session(db_engine) as db:
        recipients = find_recipients(db, settings.mail, settings.report_site())
        sent = {
            (period, recipient)
            for period, recipient in db.execute(
                select(SentReportRecord.period, SentReportRecord.recipient).where(
                    SentReportRecord.kind == KIND_WEEKLY, SentReportRecord.site == scope
                )
            )
        }
        unfinished = list(
            db.scalars(
                select(SentReportRecord).where(
                    SentReportRecord.kind == KIND_WEEKLY,
                    SentReportRecord.site == scope,
                    SentReportRecord.status.in_(("failed", "pending")),
                    SentReportRecord.created_at >= now - GIVE_UP_AFTER,
                )
            )
        )
    results = []
    due = due_reports(now, settings.calendar.timezone, settings.reports, sent, recipients)
    for report in due:
        row_id = sender.claim_new(report.week, report.recipient, report.role)
        if row_id is not None:
            results.append(sender.attempt(row_id, report.week, report.recipient, report.role))
    for record in unfinished:
        if is_retry_due(record, now, settings.reports) and sender.claim_again(record):
            week, role = parse_week(record.period), ReportRole(record.role)
            results.append(sender.attempt(record.id, week, record.recipient, role))
    return results


def last_failures(db: Session, *, limit: int = 20, site: str | None = None) -> list[ReportFailure]:
    """Reports that failed and are not sent yet, the latest attempt first: every school's, or
    only ``site``'s own reports."""
    where = [SentReportRecord.status == "failed"]
    if site is not None:
        where.append(SentReportRecord.site == site)
    records = db.scalars(
        select(SentReportRecord)
        .where(*where)
        .order_by(SentReportRecord.sent_at.desc(), SentReportRecord.id.desc())
        .limit(limit)
    )
    return [
        ReportFailure(
            kind=r.kind,
            period=r.period,
            recipient=r.recipient,
            role=r.role,
            attempts=r.attempts,
            last_error=r.last_error or "",
            last_attempt_at=r.sent_at,
        )
        for r in records
    ]
