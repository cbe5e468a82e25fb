"""When weekly summaries are due, and sending each exactly once per week and recipient.

``due_reports`` is pure: given the time, the schedule (default Monday 07:00 on the school's
clocks, daylight saving included), the reports already recorded and the recipients, it says
which are due. The due week is the one before the latest scheduled send time, so a process
that was down at 07:00 on Monday sends the missed report once when it starts again.

``send_due_reports`` records every report in ``sent_reports`` before sending it. The unique key
(kind, period, recipient) decides who sends when two processes race (an in-process scheduler
and a systemd timer, say): each inserts a ``pending`` row first, and only the one whose insert
succeeds sends. Afterwards the row is ``sent`` (with the Message-ID) or ``failed`` (with
``attempts`` and ``last_error``). A failed row is retried, again by whoever wins a conditional
update, after ``reports.retry_minutes`` doubling with each attempt (at most every six hours)
for a temporary failure and after a day for a permanent one, for two weeks. For rows that are
not yet sent, ``sent_at`` holds the time of the latest attempt.

One case is at-least-once rather than exactly-once: a process that dies between the SMTP
server accepting a message and the ``sent`` update leaves the row ``pending``; after
``STALE_PENDING`` it is sent again, since a lost report is worse than a duplicate.

``ReportScheduler`` is the thread ``hallmonitor up`` and ``serve`` run; ``run_report_weekly``
is ``hallmonitor report weekly``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.config import MailSettings, ReportSettings, Settings
from monitor.config.calendar import WEEKDAYS
from monitor.config.rules import build_calendar
from monitor.policy import SchoolCalendar
from monitor.reports.mail import MailError, PermanentMailError, send_message
from monitor.reports.render import (
    new_message_id,
    render_weekly_email,
    render_weekly_html,
    render_weekly_text,
    weekly_subject,
)
from monitor.reports.weekly import (
    ReportRole,
    Week,
    WeeklySummary,
    build_weekly_summary,
    parse_week,
    previous_week,
    week_containing,
)
from monitor.store.db import ensure_schema_current, make_engine
from monitor.store.models import SentReportRecord, UserRecord

logger = logging.getLogger(__name__)

KIND_WEEKLY = "weekly"
"""``sent_reports.kind`` of the weekly summary."""
STALE_PENDING = timedelta(minutes=30)
"""A ``pending`` row older than this belongs to a process that died while sending."""
MAX_BACKOFF = timedelta(hours=6)
"""Temporary failures are retried at least this often."""
PERMANENT_RETRY = timedelta(hours=24)
"""A permanent failure (refused login, refused recipient) is tried again after a day, in case
the settings were fixed; ``hallmonitor report weekly --send`` tries at once."""
GIVE_UP_AFTER = timedelta(days=14)
"""Reports older than this are no longer retried; they stay ``failed`` and visible."""
TEMPORARY, PERMANENT = "temporary", "permanent"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    role: ReportRole


@dataclass(frozen=True, slots=True)
class DueReport:
    week: Week
    recipient: str
    role: ReportRole
    scheduled_at: datetime
    """The send time this report belongs to (UTC)."""


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


# --- the schedule (pure) -------------------------------------------------------------------


def _send_time(week: Week, zone: ZoneInfo, reports: ReportSettings) -> datetime:
    """When the summary is sent in ``week`` (UTC); a wall time skipped by DST moves later."""
    hour, minute = (int(part) for part in reports.weekly_time.split(":"))
    day = week.start + timedelta(days=WEEKDAYS.index(reports.weekly_day))
    return datetime.combine(day, time(hour, minute), zone).astimezone(UTC)


def latest_send_time(now: datetime, zone: ZoneInfo, reports: ReportSettings) -> datetime:
    """The latest scheduled send time at or before ``now`` (UTC)."""
    this_week = week_containing(now.astimezone(zone).date())
    moment = _send_time(this_week, zone, reports)
    if now.astimezone(UTC) >= moment:
        return moment
    return _send_time(this_week.before(), zone, reports)


def due_reports(
    now: datetime,
    tz: str | ZoneInfo,
    reports: ReportSettings,
    sent: AbstractSet[tuple[str, str]],
    recipients: Sequence[Recipient] = (),
) -> list[DueReport]:
    """The weekly reports due at ``now``: the week before the latest send time, for every
    recipient without a ``(period, recipient)`` record in ``sent``."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    moment = latest_send_time(now, zone, reports)
    week = week_containing(moment.astimezone(zone).date()).before()
    return [
        DueReport(week, recipient.address, recipient.role, moment)
        for recipient in recipients
        if (week.iso, recipient.address) not in sent
    ]


def retry_at(record: SentReportRecord, reports: ReportSettings) -> datetime:
    """When a failed report may be tried again."""
    last: datetime = record.sent_at or record.created_at
    if (record.last_error or "").startswith(PERMANENT):
        return last + PERMANENT_RETRY
    delay = timedelta(minutes=reports.retry_minutes) * (1 << min(max(record.attempts - 1, 0), 16))
    return last + min(delay, MAX_BACKOFF)


ALL_SITES = "*"
"""``sent_reports.site`` of a trust office's report (``reports.all_sites``)."""


def report_scope(settings: Settings) -> str:
    """The site a scheduler's ``sent_reports`` rows belong to: its school, or ``ALL_SITES``."""
    site = settings.report_site()
    return ALL_SITES if site is None else site


# --- recipients ----------------------------------------------------------------------------


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


class _Sender:
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


def _is_retry_due(record: SentReportRecord, now: datetime, reports: ReportSettings) -> bool:
    if record.created_at < now - GIVE_UP_AFTER:
        return False
    if record.status == "failed":
        return now >= retry_at(record, reports)
    last = record.sent_at or record.created_at
    return record.status == "pending" and last <= now - STALE_PENDING


def send_due_reports(db_engine: Engine, settings: Settings, now: datetime) -> list[SendResult]:
    """Send every weekly summary due at ``now`` and retry failed ones whose time has come.

    Does nothing while ``mail.enabled`` is false. Safe to call from several processes at once.
    """
    if not settings.mail.enabled:
        return []
    sender = _Sender(db_engine, settings, now)
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
        if _is_retry_due(record, now, settings.reports) and sender.claim_again(record):
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


# --- the in-process scheduler --------------------------------------------------------------


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


# --- hallmonitor report weekly -------------------------------------------------------------


def _send_one(
    sender: _Sender,
    week: Week,
    recipient: Recipient,
    existing: SentReportRecord | None,
    *,
    resend: bool,
) -> SendResult:
    if existing is None:
        row_id = sender.claim_new(week, recipient.address, recipient.role)
        if row_id is None:
            return SendResult(week.iso, recipient.address, recipient.role, "in progress")
        return sender.attempt(row_id, week, recipient.address, recipient.role)
    fresh_pending = existing.status == "pending" and not _is_stale(existing, sender.now)
    if fresh_pending or (existing.status == "sent" and not resend):
        status = "already sent" if existing.status == "sent" else "in progress"
        return SendResult(week.iso, recipient.address, recipient.role, status, existing.message_id)
    if not sender.claim_again(existing):
        return SendResult(week.iso, recipient.address, recipient.role, "in progress")
    return sender.attempt(existing.id, week, recipient.address, recipient.role)


def _is_stale(record: SentReportRecord, now: datetime) -> bool:
    return (record.sent_at or record.created_at) <= now - STALE_PENDING


def _describe(result: SendResult) -> str:
    who = f"{result.recipient} ({result.role})"
    match result.status:
        case "sent":
            return f"sent {result.period} to {who}: {result.message_id}"
        case "already sent":
            return (
                f"already sent {result.period} to {who}: {result.message_id} (--resend sends again)"
            )
        case "in progress":
            return f"{result.period} to {who} is being sent by another process"
        case _:
            return f"error: {result.period} to {who} failed: {result.error}"


def _preview(sender: _Sender, week: Week, out_dir: Path | None) -> tuple[int, list[str]]:
    lines = []
    for role in ReportRole:
        summary = sender.summary(week, role)
        if out_dir is None:
            lines += [f"--- {role.value} version: {weekly_subject(summary)}", ""]
            lines += render_weekly_text(summary).splitlines()
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        for suffix, text in (
            ("html", render_weekly_html(summary)),
            ("txt", render_weekly_text(summary)),
        ):
            path = out_dir / f"weekly-{week.iso}-{role.value}.{suffix}"
            path.write_text(text, encoding="utf-8")
            lines.append(f"wrote {path}")
    return 0, lines


def run_report_weekly(
    settings: Settings,
    *,
    week: str | None,
    preview: bool,
    send: bool,
    resend: bool,
    out_dir: Path | None,
    now: datetime | None = None,
) -> tuple[int, list[str]]:
    """``hallmonitor report weekly``: preview (files or text), send, or resend one week.

    ``--send`` records and sends the week to every recipient that has not had it, and retries
    failed ones at once; ``--resend`` sends again to everyone. Returns (exit status, lines).
    """
    if sum((preview, send, resend)) != 1:
        return 2, ["error: choose one of --preview, --send or --resend"]
    now = now or datetime.now(UTC)
    try:
        chosen = (
            parse_week(week) if week else previous_week(now, ZoneInfo(settings.calendar.timezone))
        )
    except ValueError as e:
        return 2, [f"error: --week {e}"]
    if not preview and not settings.mail.enabled:
        return 1, ["error: mail.enabled is false: set it to true, with mail.host and recipients"]
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        ensure_schema_current(engine)
        sender = _Sender(engine, settings, now)
        if preview:
            return _preview(sender, chosen, out_dir)
        with Session(engine) as db:
            recipients = find_recipients(db, settings.mail, settings.report_site())
            existing = {
                r.recipient: r
                for r in db.scalars(
                    select(SentReportRecord).where(
                        SentReportRecord.kind == KIND_WEEKLY,
                        SentReportRecord.period == chosen.iso,
                        SentReportRecord.site == report_scope(settings),
                    )
                )
            }
        if not recipients:
            return 1, ["error: no recipients: set mail.reviewers or mail.governors"]
        results = [
            _send_one(sender, chosen, r, existing.get(r.address), resend=resend) for r in recipients
        ]
    finally:
        engine.dispose()
    lines = [_describe(result) for result in results]
    return (1 if any(r.status == "failed" for r in results) else 0), lines
