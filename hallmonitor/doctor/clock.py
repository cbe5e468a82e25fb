"""The time check: a known zone, a synchronised and plausible clock, and what today is for the
school."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from zoneinfo import ZoneInfo

from alembic.script import ScriptDirectory

from monitor.checks import (
    CheckResult,
    failed,
    passed,
)
from monitor.config.rules import build_calendar
from monitor.config.settings import Settings
from monitor.errors import ConfigError
from monitor.policy import SchoolCalendar
from monitor.store.db import (
    alembic_config,
    head_revision,
)

STA_UNSYNC = 0x0040
"""adjtimex status bit: the kernel clock is not synchronised."""
MAX_SYNC_ERROR_US = 16_000_000
"""Like systemd's NTPSynchronized: a larger estimated error counts as unsynchronised."""
CLOCK_AHEAD_LIMIT = timedelta(days=366 * 10)
"""A clock further than this past the build is taken to be wrong, not just a late upgrade."""
CLOCK_BEHIND_SLACK = timedelta(days=1)
"""Migration dates are written by hand, in any zone: a clock this close before one is fine."""


def clock_synchronised() -> bool | None:
    """Whether the kernel clock is synchronised (NTP), from ``adjtimex``; None if unknown."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buffer = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        if libc.adjtimex(buffer) < 0:
            return None
    except (OSError, AttributeError):
        return None
    # struct timex on 64-bit Linux: modes (int, padded), offset, freq, maxerror, esterror
    # (longs), status (int).
    maxerror = int.from_bytes(buffer.raw[24:32], "little", signed=True)
    status = int.from_bytes(buffer.raw[40:44], "little", signed=True)
    return judge_sync(status, maxerror)


def judge_sync(status: int, maxerror_us: int) -> bool:
    return not status & STA_UNSYNC and maxerror_us < MAX_SYNC_ERROR_US


def build_date() -> datetime:
    """When this version was made: the Create Date of its newest migration."""
    script = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
    assert script is not None
    text = Path(script.path).read_text(encoding="utf-8")
    found = re.search(r"^Create Date: (\S+ \S+)", text, re.MULTILINE)
    if found is None:
        raise ValueError(f"{script.path}: no 'Create Date:' line")
    made = datetime.fromisoformat(found[1])
    return made if made.tzinfo else made.replace(tzinfo=UTC)


def school_today(calendar: SchoolCalendar, now: datetime, closures: dict[date, str]) -> str:
    """``today (Wednesday 2 December 2026) is a school day, 08:00-16:30`` or why it is not."""
    local = now.astimezone(calendar.zone)
    day = local.date()
    label = f"today ({local:%A} {day.day} {local:%B %Y})"
    hours = calendar.hours[day.weekday()]
    if calendar.is_school_day(day):
        shown = ", ".join(
            f"{start:%H:%M}-{'24:00' if end == wall_time.max else f'{end:%H:%M}'}"
            for start, end in hours
        )
        return f"{label} is a school day, {shown}"
    if not hours:
        return f"{label} is not a school day: no hours on {local:%A}s"
    if day in calendar.closures:
        reason = closures.get(day) or "a closure"
        return f"{label} is not a school day: {reason}"
    return f"{label} is not a school day: outside the terms"


def judge_time(
    zone_name: str,
    now: datetime,
    synchronised: bool | None,
    built: datetime,
) -> tuple[list[str], str]:
    """Problems with the clock and zone, and the fix for the first; ``[]`` when sane."""
    try:
        ZoneInfo(zone_name)
    except (ValueError, KeyError):
        return [f"{zone_name!r} is not a known time zone"], (
            "set calendar.timezone to an IANA name such as Europe/London (apt-get install tzdata)"
        )
    ntp_fix = (
        "enable time synchronisation: timedatectl set-ntp true (systemd-timesyncd), or install "
        "chrony; check that this host can reach an NTP server"
    )
    if now < built - CLOCK_BEHIND_SLACK:
        return [
            f"the clock says {now:%Y-%m-%d %H:%M} UTC, before this version was made "
            f"({built:%Y-%m-%d})"
        ], ntp_fix
    if now > built + CLOCK_AHEAD_LIMIT:
        return [f"the clock says {now:%Y-%m-%d}, over ten years after this version was made"], (
            ntp_fix
        )
    if synchronised is False:
        return ["the system clock is not synchronised (NTP)"], ntp_fix
    return [], ""


def check_time(
    settings: Settings,
    *,
    now: datetime | None = None,
    synchronised: Callable[[], bool | None] = clock_synchronised,
    built: datetime | None = None,
) -> CheckResult:
    """A known zone, a synchronised and plausible clock, and what today is for the school."""
    now = now or datetime.now(UTC)
    zone_name = settings.calendar.timezone
    sync = synchronised()
    problems, fix = judge_time(zone_name, now, sync, built or build_date())
    if problems and "time zone" in problems[0]:
        return failed("time", problems[0], fix)
    sync_text = {True: ", clock synchronised", False: "", None: ", clock synchronisation unknown"}
    zone = ZoneInfo(zone_name)
    parts = [f"{now.astimezone(zone):%H:%M %Z} in {zone_name}{sync_text[sync]}"]
    try:
        calendar = build_calendar(settings)
    except ConfigError as e:
        problems.append(f"the school calendar does not load: {e}")
        fix = fix or "correct the calendar settings; `hallmonitor config check` names the problem"
    else:
        parts.append(school_today(calendar, now, settings.calendar.closure_days()))
    if problems:
        return failed("time", "; ".join([*problems, *parts]), fix)
    return passed("time", "; ".join(parts))
