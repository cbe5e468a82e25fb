"""When weekly summaries are due, and when a failed one is tried again (pure).

``due_reports``: given the time, the schedule (default Monday 07:00 on the school's clocks,
daylight saving included), the reports already recorded and the recipients, it says which are
due. The due week is the one before the latest scheduled send time, so a process that was down
at 07:00 on Monday sends the missed report once when it starts again.

A failed report is retried after ``reports.retry_minutes`` doubling with each attempt (at most
every six hours) for a temporary failure and after a day for a permanent one, for two weeks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.config.calendar import WEEKDAYS
from monitor.config.review import ReportSettings
from monitor.config.settings import Settings
from monitor.reports.weekly import ReportRole, Week, week_containing
from monitor.store.models import SentReportRecord

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


def is_retry_due(record: SentReportRecord, now: datetime, reports: ReportSettings) -> bool:
    """Whether an unfinished report may be tried again at ``now``: failed and its retry time
    reached, or ``pending`` for longer than ``STALE_PENDING``; never after ``GIVE_UP_AFTER``."""
    if record.created_at < now - GIVE_UP_AFTER:
        return False
    if record.status == "failed":
        return now >= retry_at(record, reports)
    last = record.sent_at or record.created_at
    return record.status == "pending" and last <= now - STALE_PENDING
