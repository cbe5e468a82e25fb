"""The dashboard: this week and this term at a glance.

Reviewers and admins see incidents by platform, segment and day (charts drawn on the server,
each with a table saying the same), the open items waiting for a decision and the sensors'
capture health, and a warning when weekly summaries could not be sent. Governors get their own dashboard built only from ``governor_summary``, whose
types have no device field at all: nothing on it can name a device or a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep, SettingsDep, UserDep, utcnow
from api.pages import NavLink, path_for, render_page
from api.pages.charts import BarChart, bar_chart
from api.pages.health import ReportFailureSummary, recent_report_failures
from monitor.config.settings import Settings
from monitor.reports.coverage import days_so_far, has_begun, is_silent_site
from monitor.reports.labels import (
    period_label,
    role_label,
    segment_label,
    week_label,
)
from monitor.store.queries import (
    CaptureHealth,
    GovernorSummary,
    IncidentStats,
    capture_health,
    governor_summary,
    incident_stats,
    sites_with_observations,
)
from monitor.store.queries.stats import Count
from monitor.store.queries.weeks import local_midnight
from monitor.store.workflow import UserRole, label_of

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Dashboard",
        "dashboard",
        frozenset(UserRole),
        "This week and this term at a glance.",
    ),
)

FALLBACK_TERM_WEEKS = 12
"""Without a configured term around today, "this term" is the last twelve weeks."""


@dataclass(frozen=True, slots=True)
class Period:
    """A named span of local days ``[start, end)``, as every period (``end`` excluded)."""

    name: str
    """``This week``, ``Autumn 2026`` or ``The last 12 weeks``."""
    start: date
    end: date

    @property
    def label(self) -> str:
        """The days it includes, as the emails word them (``16–22 November 2026``)."""
        return period_label(self.start, self.end)


@dataclass(frozen=True, slots=True)
class DashboardCoverage:
    """A period's data so far, by the rules of ``monitor.reports.coverage``."""

    days_so_far: int
    """Days of the period up to today."""
    silent_site: bool
    """The user's school sent nothing in the period while other schools did."""
    other_sites_with_data: int


@dataclass(frozen=True, slots=True)
class ReviewerDashboardPage:
    """What a reviewer or admin sees: incidents and capture health, scoped to their site."""

    week: Period
    term: Period
    week_stats: IncidentStats
    term_stats: IncidentStats
    week_charts: tuple[BarChart, ...]
    """By day, platform and segment."""
    term_charts: tuple[BarChart, ...]
    """By platform and segment."""
    health: CaptureHealth
    """This week's capture figures."""
    health_chart: BarChart
    """Observations per day of this week so far: a zero means a sensor saw nothing (days
    after today are left out: they are not "no data")."""
    coverage: DashboardCoverage
    open_items_href: str
    """The queue filtered on incidents waiting for a first look."""
    report_failures: ReportFailureSummary
    """Weekly summaries that could not be sent in the last two weeks (a count and the latest
    error's first line: no recipient address)."""
    site_charts: tuple[BarChart, ...] = ()
    """Incidents per school this week and this term: for a user who sees every site of a
    trust with more than one school; empty otherwise."""


@dataclass(frozen=True, slots=True)
class GovernorDashboardPage:
    """What a governor sees: aggregates of the term only (no device field anywhere)."""

    term: Period
    summary: GovernorSummary
    charts: tuple[BarChart, ...]
    """By platform, segment role, outcome and week."""
    coverage: DashboardCoverage
    """Whether the governor's school sent no data this term while other schools did."""


@router.get("/dashboard", name="dashboard")
def dashboard(request: Request, user: UserDep, db: SessionDep, settings: SettingsDep) -> Response:
    """The role's dashboard: incidents and health for reviewers, aggregates for governors."""
    tz = ZoneInfo(settings.calendar.timezone)
    today = utcnow().astimezone(tz).date()
    week = this_week(today)
    term = this_term(settings, today)
    term_start, term_end = local_midnight(term.start, tz), local_midnight(term.end, tz)
    if user.role is UserRole.GOVERNOR:
        summary = governor_summary(db, term_start, term_end, tz, user.site)
        term_health = capture_health(db, term.start, term.end, user.site)
        coverage = period_coverage(db, term_health, today, user.site)
        governor_page = GovernorDashboardPage(term, summary, governor_charts(summary), coverage)
        return render_page(request, "pages/dashboard/governor.html", governor_page)
    week_start, week_end = local_midnight(week.start, tz), local_midnight(week.end, tz)
    floor = settings.incidents.floor()  # low-confidence incidents are counted apart, as by email
    week_stats = incident_stats(db, week_start, week_end, tz, user.site, floor)
    term_stats = incident_stats(db, term_start, term_end, tz, user.site, floor)
    health = capture_health(db, week.start, week.end, user.site)
    page = ReviewerDashboardPage(
        week=week,
        term=term,
        week_stats=week_stats,
        term_stats=term_stats,
        week_charts=(
            bar_chart(
                "Incidents by day",
                "Day",
                ((f"{d.day:%a %d %b}", d.count) for d in week_stats.by_day),
            ),
            bar_chart("Incidents by platform", "Platform", _counts(week_stats.by_platform)),
            bar_chart("Incidents by segment", "Segment", _segments(week_stats.by_segment)),
        ),
        term_charts=(
            bar_chart("Incidents by platform", "Platform", _counts(term_stats.by_platform)),
            bar_chart("Incidents by segment", "Segment", _segments(term_stats.by_segment)),
        ),
        health=health,
        health_chart=bar_chart(
            "Observations by day",
            "Day",
            ((f"{d.day:%a %d %b}", d.count) for d in health.by_day if has_begun(d.day, today)),
            empty_text="The sensors counted nothing on any day so far.",
        ),
        coverage=period_coverage(db, health, today, user.site),
        open_items_href=path_for(request, "incident_queue") + "?status=new",
        report_failures=recent_report_failures(db, utcnow(), user.site),
        site_charts=site_charts(week_stats, term_stats) if user.site is None else (),
    )
    return render_page(request, "pages/dashboard/reviewer.html", page)


def period_coverage(
    db: SessionDep, health: CaptureHealth, today: date, site: str | None
) -> DashboardCoverage:
    """How many days of the period have begun, and whether the user's school alone is silent."""
    others = set(sites_with_observations(db, health.start, health.end)) - {site}
    return DashboardCoverage(
        days_so_far=len(days_so_far((d.day for d in health.by_day), today)),
        silent_site=is_silent_site(site, health.observations_total, len(others)),
        other_sites_with_data=len(others),
    )


def this_week(today: date) -> Period:
    """Monday to Sunday of the week ``today`` is in."""
    monday = today - timedelta(days=today.weekday())
    return Period("This week", monday, monday + timedelta(days=7))


def this_term(settings: Settings, today: date) -> Period:
    """The configured term around ``today``, else the latest one that has started (up to
    today), else the last ``FALLBACK_TERM_WEEKS`` weeks."""
    tomorrow = today + timedelta(days=1)
    started = [term for term in settings.calendar.terms if term.start <= today]
    if started:
        term = max(started, key=lambda t: t.start)
        name = term.name or f"Term from {term.start:%d %b %Y}"
        return Period(name, term.start, min(term.end + timedelta(days=1), tomorrow))
    first = tomorrow - timedelta(weeks=FALLBACK_TERM_WEEKS)
    return Period(f"The last {FALLBACK_TERM_WEEKS} weeks", first, tomorrow)


def site_charts(week: IncidentStats, term: IncidentStats) -> tuple[BarChart, ...]:
    """Incidents per site this week and this term, when the term saw more than one site."""
    if len(term.by_site) < 2:
        return ()
    return (
        bar_chart("Incidents by site this week", "Site", _counts(week.by_site)),
        bar_chart("Incidents by site this term", "Site", _counts(term.by_site)),
    )


def governor_charts(summary: GovernorSummary) -> tuple[BarChart, ...]:
    """The governor's charts, from aggregates only."""
    return (
        bar_chart("Incidents by platform", "Platform", ((c.platform, c.count) for c in summary.by_platform)),
        bar_chart("Incidents by segment role", "Role", ((role_label(c.role), c.count) for c in summary.by_role)),
        bar_chart("Incidents by review outcome", "Outcome", ((label_of(c.outcome), c.count) for c in summary.by_outcome)),
        bar_chart("Incidents by week", "Week", ((week_label(w.start), w.count) for w in summary.weekly_trend)),
    )  # fmt: skip


def _counts(counts: tuple[Count, ...]) -> list[tuple[str, int]]:
    return [(c.key, c.count) for c in counts]


def _segments(counts: tuple[Count, ...]) -> list[tuple[str, int]]:
    return [(segment_label(c.key), c.count) for c in counts]
