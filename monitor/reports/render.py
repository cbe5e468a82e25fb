"""Turning report values into text, HTML and email messages (no IO apart from reading templates).

The templates live in ``monitor/reports/templates/``: ``weekly.html`` (an email: inline CSS,
table layout, bars drawn as table cells, no remote images), ``weekly.txt`` (the plain-text part)
and ``governors.html`` (a printable page with ``@media print`` rules). HTML autoescaping is on.
Words are plain English for a headteacher reading on a phone: outcome codes are turned into
sentences here; weeks and counter names are worded in ``labels`` (shared with the review app),
and whether a day is "no data" is decided in ``coverage``.
"""

from __future__ import annotations

from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from monitor.platforms import platform_name
from monitor.reports.data import GovernorReport
from monitor.reports.labels import (
    COUNTER_LABELS,
    GAP_COUNTERS,
    period_label,
    readable_counters,
    role_label,
    segment_label,
    week_label,
)
from monitor.reports.weekly import ReviewerWeeklySummary, WeeklySummary
from monitor.store.queries.stats import Count
from monitor.store.workflow import label_of

PROTOCOL_LABELS = {
    "dns": "DNS lookups",
    "tls": "secure web connections (TLS)",
    "quic": "QUIC connections (HTTP/3)",
    "dhcp": "device name announcements (DHCP)",
}


def counter_text(name: str) -> str:
    """The label of a counter that ``readable`` kept (it has one)."""
    return COUNTER_LABELS[name]


def readable(counters: tuple[Count, ...]) -> list[Count]:
    """The counters a person can read (``labels.readable_counters``)."""
    return readable_counters(counters, lambda row: row.key)


def protocol_label(name: str) -> str:
    return PROTOCOL_LABELS.get(name, name)


def change(current: int, previous: int) -> str:
    """``up 3 from 5``, ``down 2 from 4``, ``same as``... in words."""
    if current > previous:
        return f"up {current - previous} from {previous}"
    if current < previous:
        return f"down {previous - current} from {previous}"
    return f"the same as the {previous}"


def minutes(value: float) -> str:
    whole = round(value)
    if whole < 60:
        return f"{whole} min"
    return f"{whole // 60} h {whole % 60:02d} min"


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def local_time(instant: datetime, tz: str) -> str:
    local = instant.astimezone(ZoneInfo(tz))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def bar_percent(count: int, largest: int) -> int:
    """Width of a bar, 0 to 100; any count above zero shows at least a sliver."""
    if count <= 0 or largest <= 0:
        return 0
    return max(2, round(100 * count / largest))


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def week_range(summary: WeeklySummary) -> str:
    return period_label(summary.week.start, summary.week.end)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        platform=platform_name,
        outcome=label_of,
        segment=segment_label,
        role=role_label,
        counter=counter_text,
        readable=readable,
        week=week_label,
        protocol=protocol_label,
        minutes=minutes,
        day=day_label,
        long_date=long_date,
        local=local_time,
    )
    env.globals.update(
        change=change,
        bar_percent=bar_percent,
        plural=plural,
        period=period_label,
        GAP_COUNTERS=GAP_COUNTERS,
    )
    return env


def weekly_subject(summary: WeeklySummary) -> str:
    """E.g. ``Hill School weekly summary, 16–22 November 2026: 3 incidents, 2 to review``;
    a week without data says so first (``no data from this school``, ``no data received``)."""
    head = f"{summary.school} weekly summary, {week_range(summary)}"
    health = summary.data.health
    if health.silent_site:
        return f"{head}: no data from this school (other schools' data arrived)"
    if health.no_data:
        return f"{head}: no data received"
    if summary.nothing_to_report:
        return f"{head}: nothing to report"
    data = summary.data
    return f"{head}: {plural(data.incidents, 'incident')}, {data.waiting_review_total} to review"


def _weekly_context(summary: WeeklySummary) -> dict[str, object]:
    return {
        "summary": summary,
        "data": summary.data,
        "reviewer": isinstance(summary, ReviewerWeeklySummary),
        "subject": weekly_subject(summary),
        "week_range": week_range(summary),
    }


def render_weekly_html(summary: WeeklySummary) -> str:
    return _environment().get_template("weekly.html").render(_weekly_context(summary))


def render_weekly_text(summary: WeeklySummary) -> str:
    return _environment().get_template("weekly.txt").render(_weekly_context(summary))


def render_weekly_email(
    summary: WeeklySummary,
    *,
    from_address: str,
    recipient: str,
    now: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message: the text part first, then the HTML part."""
    message = EmailMessage()
    message["Subject"] = weekly_subject(summary)
    message["From"] = from_address
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id or new_message_id(from_address)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render_weekly_text(summary), cte="quoted-printable")
    message.add_alternative(render_weekly_html(summary), subtype="html", cte="quoted-printable")
    return message


def new_message_id(from_address: str) -> str:
    """A fresh ``<...@domain>`` id in the sender's domain."""
    return make_msgid("hallmonitor", domain=from_address.rpartition("@")[2] or "localhost")


def render_governors_report(
    report: GovernorReport,
    *,
    school: str,
    start: date,
    end: date,
    tz: str,
    generated_at: datetime,
) -> str:
    """The printable governors' report of the local days ``[start, end)`` as one HTML page."""
    return (
        _environment()
        .get_template("governors.html")
        .render(
            report=report,
            school=school,
            start=start,
            end=end,
            tz=tz,
            generated_at=generated_at,
        )
    )
