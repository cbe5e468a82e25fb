"""The weekly summary: which week, and what each kind of recipient is told about it.

The headteacher (``reviewer``) gets every figure, the busiest devices and links to the incidents
waiting for review; the nominated governor (``governor``) gets aggregates and trends only. Both
get a summary every week, even when nothing happened: silence must mean failure, not calm.

Weeks are ISO weeks (Monday to Sunday) of the school's local calendar. The default is the
previous week: on Monday 23 November 2026 that is ``2026-W47``, 16 to 22 November. The ISO
code is for the command line and stored keys only: a person reads dates (``labels``).

A week without any data never reads as calm: a school whose sensor sent nothing says "no data"
in the subject and at the top, and says so differently when other schools of the trust did
send data (``coverage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from monitor.confidence import Floor
from monitor.policy import SchoolCalendar
from monitor.reports.data import (
    GovernorWeek,
    ReviewerWeek,
    load_governor_week,
    load_reviewer_week,
)
from monitor.store.queries import weeks
from monitor.store.queries.weeks import iso_week_of, parse_iso_week
from monitor.store.workflow import UserRole


class ReportRole(StrEnum):
    """Which version of a report a recipient gets: the user roles that get one."""

    REVIEWER = UserRole.REVIEWER.value
    GOVERNOR = UserRole.GOVERNOR.value


@dataclass(frozen=True, slots=True)
class Week:
    """An ISO week: the local days ``[start, end)``, Monday to the Monday after."""

    year: int
    number: int

    @property
    def start(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def end(self) -> date:
        """The Monday after (excluded), as every period's end."""
        return self.start + timedelta(days=7)

    @property
    def last(self) -> date:
        """Its Sunday, the last day it includes."""
        return date.fromisocalendar(self.year, self.number, 7)

    @property
    def iso(self) -> str:
        """``2026-W47``: the form on the command line and in ``sent_reports.period``."""
        return iso_week_of(self.start)

    def before(self) -> Week:
        return week_containing(self.start - timedelta(days=7))

    def __str__(self) -> str:
        return self.iso


def week_containing(day: date) -> Week:
    year, number, _ = day.isocalendar()
    return Week(year, number)


def parse_week(text: str) -> Week:
    """``2026-W47`` (spaces around it allowed) to a ``Week``; raises ``ValueError`` saying
    what is allowed (``weeks.parse_iso_week``)."""
    monday, _ = parse_iso_week(text.strip())
    return week_containing(monday)


def previous_week(now: datetime, zone: ZoneInfo) -> Week:
    """The week before the one ``now`` falls in, on the school's clocks."""
    return parse_week(weeks.previous_week(now, zone))


@dataclass(frozen=True, slots=True)
class ReviewerWeeklySummary:
    """The headteacher's version: devices, the review queue with links, capture health."""

    school: str
    week: Week
    timezone: str
    school_days: int
    public_url: str
    data: ReviewerWeek

    @property
    def role(self) -> ReportRole:
        return ReportRole.REVIEWER

    @property
    def nothing_to_report(self) -> bool:
        """No incident and none waiting, and data did arrive (else it is "no data")."""
        return _nothing_to_report(self.data)

    def incident_url(self, incident_id: int) -> str:
        return f"{self.public_url}/incidents/{incident_id}"


@dataclass(frozen=True, slots=True)
class GovernorWeeklySummary:
    """The governor's version: aggregates and trends only (see ``GovernorWeek``)."""

    school: str
    week: Week
    timezone: str
    school_days: int
    public_url: str
    data: GovernorWeek

    @property
    def role(self) -> ReportRole:
        return ReportRole.GOVERNOR

    @property
    def nothing_to_report(self) -> bool:
        """No incident and none waiting, and data did arrive (else it is "no data")."""
        return _nothing_to_report(self.data)


def _nothing_to_report(data: ReviewerWeek | GovernorWeek) -> bool:
    quiet = data.incidents == 0 and data.waiting_review_total == 0
    return quiet and not data.health.no_data


WeeklySummary = ReviewerWeeklySummary | GovernorWeeklySummary


def build_weekly_summary(
    db: Session,
    role: ReportRole,
    week: Week,
    *,
    school: str,
    site: str | None,
    calendar: SchoolCalendar,
    public_url: str,
    today: date,
    floor: Floor | None = None,
) -> WeeklySummary:
    """The summary of ``week`` for ``role``, counting ``site``'s incidents (None: every site),
    as known on the school's local day ``today`` (a week still running has days to come);
    incidents below ``floor`` are left out and only counted (``low_confidence``)."""
    zone = calendar.zone
    school_days = calendar.school_days(week.start, week.last)
    if role is ReportRole.REVIEWER:
        return ReviewerWeeklySummary(
            school=school,
            week=week,
            timezone=calendar.tz,
            school_days=len(school_days),
            public_url=public_url.rstrip("/"),
            data=load_reviewer_week(
                db, week.start, week.end, zone, school_days, site=site, today=today, floor=floor
            ),
        )
    return GovernorWeeklySummary(
        school=school,
        week=week,
        timezone=calendar.tz,
        school_days=len(school_days),
        public_url=public_url.rstrip("/"),
        data=load_governor_week(
            db, week.start, week.end, zone, school_days, site=site, today=today, floor=floor
        ),
    )
