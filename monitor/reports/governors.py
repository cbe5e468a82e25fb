"""The governors' termly or annual report: the evidence a school keeps for its annual review.

The DfE filtering and monitoring standards ask the governing body to review, at least once a
year, how filtering and monitoring work. This report gathers what that review needs, as figures
only: incidents by outcome and their trend, the checks and self-tests run, what the monitor saw
and could not see, and every list change with its reason. It is one HTML page that prints
cleanly to PDF from a browser (``hallmonitor report governors --from ... --to ... --out ...``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from monitor.config.rules import build_calendar
from monitor.config.settings import Settings
from monitor.reports.data import GovernorReport, load_governor_report
from monitor.reports.render import plural, render_governors_report
from monitor.store.db import ensure_schema_current, make_engine


def build_governors_report(
    db: Session, settings: Settings, start: date, end: date, *, now: datetime
) -> GovernorReport:
    """The report for the local days ``[start, end)`` as known at ``now`` (reads the closure
    files named in the settings, for the school days; days after ``now`` are never counted as
    "no data")."""
    if end <= start:
        raise ValueError(f"the period ends ({end - timedelta(days=1)}) before it starts ({start})")
    calendar = build_calendar(settings)
    school_days = calendar.school_days(start, end - timedelta(days=1))
    today = now.astimezone(calendar.zone).date()
    return load_governor_report(
        db, start, end, calendar.zone, school_days, site=settings.report_site(), today=today
    )


def run_report_governors(
    settings: Settings, *, start: date, end: date, out: Path, now: datetime | None = None
) -> str:
    """``hallmonitor report governors``: write the printable report of the days ``start`` to
    ``end``, both included (``--from`` and ``--to`` as a person types them), to ``out``;
    returns a summary line. Raises ``ValueError`` for a period that ends before it starts and
    ``SchemaNotCurrent`` for an old database."""
    now = now or datetime.now(UTC)
    end = end + timedelta(days=1)  # from here on, the local days [start, end)
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        ensure_schema_current(engine)
        with Session(engine) as db:
            report = build_governors_report(db, settings, start, end, now=now)
    finally:
        engine.dispose()
    html = render_governors_report(
        report,
        school=settings.site.name,
        start=start,
        end=end,
        tz=settings.calendar.timezone,
        generated_at=now,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return (
        f"wrote the governors' report for {start} to {end - timedelta(days=1)} to {out}: "
        f"{plural(report.incidents, 'incident')}, "
        f"{plural(sum(c.runs for c in report.summary.checks), 'check')}, "
        f"{plural(len(report.summary.list_changes), 'list change')}"
    )
