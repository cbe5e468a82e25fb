"""``hallmonitor report weekly``: preview (files or text), send, or resend one week."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.config.settings import Settings
from monitor.reports.render import render_weekly_html, render_weekly_text, weekly_subject
from monitor.reports.schedule import KIND_WEEKLY, STALE_PENDING, Recipient, report_scope
from monitor.reports.sending import SendResult, WeeklySender, find_recipients
from monitor.reports.weekly import ReportRole, Week, parse_week, previous_week
from monitor.store.db import ensure_schema_current, make_engine
from monitor.store.models import SentReportRecord

logger = logging.getLogger(__name__)


def _send_one(
    sender: WeeklySender,
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


def _preview(sender: WeeklySender, week: Week, out_dir: Path | None) -> tuple[int, list[str]]:
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
        sender = WeeklySender(engine, settings, now)
        if preview:
            return _preview(sender, chosen, out_dir)
        with Session(engine) as db:
            recipients = find_recipients(db, settings.mail, settings.report_site())
            existing = _recorded(db, settings, chosen)
        if not recipients:
            return 1, ["error: no recipients: set mail.reviewers or mail.governors"]
        results = [
            _send_one(sender, chosen, r, existing.get(r.address), resend=resend) for r in recipients
        ]
    finally:
        engine.dispose()
    lines = [_describe(result) for result in results]
    return (1 if any(r.status == "failed" for r in results) else 0), lines


def _recorded(db: Session, settings: Settings, week: Week) -> dict[str, SentReportRecord]:
    """The ``sent_reports`` rows of ``week`` in this scheduler's scope, by recipient."""
    return {
        r.recipient: r
        for r in db.scalars(
            select(SentReportRecord).where(
                SentReportRecord.kind == KIND_WEEKLY,
                SentReportRecord.period == week.iso,
                SentReportRecord.site == report_scope(settings),
            )
        )
    }
