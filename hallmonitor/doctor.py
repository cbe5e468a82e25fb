"""`hallmonitor doctor`: is this sensor ready to do its job, and if not, what to fix.

Each check looks at one thing the daemon depends on (interfaces that carry traffic, capture
capabilities, the database and its schema, the lists, which compiled modules are in use, the
mail server, the clock and the school calendar) and returns a ``CheckResult`` with a one-line fix when it fails. The probes
read the system; the ``judge_*`` functions decide from what they read and do no IO.

Interfaces are watched with the daemon's own capture (``LiveSource`` and its kernel filter)
rather than by ``/sys/class/net/X/statistics/rx_packets``: the counter says that frames arrive,
not that any of them is DNS, TLS or QUIC from clients, and a mirror port's frames only count
once the interface is promiscuous, which capture sets. The counter is still read, to tell a
silent interface from one carrying the wrong traffic, and it stands in when capture is not
permitted.
"""

from __future__ import annotations

import ctypes
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.checks import (
    CheckResult,
    current_user,
    failed,
    missing_sqlite_file,
    passed,
    record_run,
    render,
    summary,
)
from monitor.config.rules import build_calendar
from monitor.config.settings import Settings
from monitor.errors import BlocklistError, ConfigError
from monitor.extract.compiled import NOT_BUILT, REBUILD, Twin, twins
from monitor.extract.dns import DNS_PORTS
from monitor.lists.directories import check_lists as list_problems
from monitor.lists.directories import list_directories, load_lists
from monitor.policy import SchoolCalendar
from monitor.runner import default_interfaces
from monitor.sources.live import CaptureSetupError, LiveSource, build_bpf_filter
from monitor.store.db import (
    alembic_config,
    current_revision,
    display_url,
    head_revision,
    make_engine,
    normalise_url,
)
from monitor.store.queries.health import CaptureDay, capture_day

logger = logging.getLogger(__name__)

CHECKS = ("capabilities", "interfaces", "database", "drops", "lists", "compiled", "smtp", "time")
"""Every check, in the order run and printed."""
DEFAULT_WATCH_S = 5.0
"""How long an interface may stay silent before it fails the traffic check."""
SYS_NET = Path("/sys/class/net")
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAPTURE_CAPABILITIES = {"CAP_NET_RAW": CAP_NET_RAW, "CAP_NET_ADMIN": CAP_NET_ADMIN}
STA_UNSYNC = 0x0040
"""adjtimex status bit: the kernel clock is not synchronised."""
MAX_SYNC_ERROR_US = 16_000_000
"""Like systemd's NTPSynchronized: a larger estimated error counts as unsynchronised."""
CLOCK_AHEAD_LIMIT = timedelta(days=366 * 10)
"""A clock further than this past the build is taken to be wrong, not just a late upgrade."""
CLOCK_BEHIND_SLACK = timedelta(days=1)
"""Migration dates are written by hand, in any zone: a clock this close before one is fine."""
CAPABILITY_FIX = (
    "run as root, or grant CAP_NET_RAW and CAP_NET_ADMIN: AmbientCapabilities=CAP_NET_RAW "
    "CAP_NET_ADMIN in the systemd unit (deploy/systemd/), or setcap cap_net_raw,cap_net_admin+eip "
    "on the Python binary"
)


# --- capabilities -----------------------------------------------------------------------------


def effective_capabilities(status_text: str) -> int:
    """The ``CapEff`` bit mask from the text of ``/proc/<pid>/status``."""
    found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)\s*$", status_text, re.MULTILINE)
    if found is None:
        raise ValueError("no CapEff line in the process status")
    return int(found[1], 16)


def judge_capabilities(effective: int) -> CheckResult:
    """Capture needs CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN (promiscuous mode, buffer)."""
    missing = [name for name, bit in CAPTURE_CAPABILITIES.items() if not effective >> bit & 1]
    if missing:
        return failed(
            "capabilities",
            f"{' and '.join(missing)} not effective: live capture will be refused",
            CAPABILITY_FIX,
        )
    return passed("capabilities", "CAP_NET_RAW and CAP_NET_ADMIN effective")


def check_capabilities(status_file: Path = Path("/proc/self/status")) -> CheckResult:
    try:
        effective = effective_capabilities(status_file.read_text(encoding="ascii"))
    except (OSError, ValueError) as e:
        return failed("capabilities", f"cannot read {status_file}: {e}", CAPABILITY_FIX)
    return judge_capabilities(effective)


# --- interfaces -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterfaceState:
    """What the kernel says of an interface (from ``/sys/class/net``)."""

    name: str
    exists: bool
    operstate: str = ""
    rx_packets: int = 0


@dataclass(frozen=True, slots=True)
class Traffic:
    """What an interface received while it was watched."""

    captured: int | None
    """Frames that passed the daemon's filter (DNS, TLS, QUIC...); None when capture failed."""
    received: int
    """Frames the kernel counted in ``rx_packets``, whatever they were."""
    capture_error: str = ""


def interface_state(name: str, sys_net: Path = SYS_NET) -> InterfaceState:
    entry = sys_net / name
    if not entry.is_dir():
        return InterfaceState(name, exists=False)
    return InterfaceState(
        name,
        exists=True,
        operstate=_read(entry / "operstate", "unknown"),
        rx_packets=int(_read(entry / "statistics" / "rx_packets", "0") or 0),
    )


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return default


def is_up(state: InterfaceState) -> bool:
    """``unknown`` is up too: tunnels and some drivers never report an operational state."""
    return state.operstate in ("up", "unknown")


class InterfaceProblem(NamedTuple):
    kind: Literal["missing", "down", "silent", "no-lookups"]
    text: str


INTERFACE_FIXES = {
    "missing": "set capture.interfaces to the LAN-side interface(s); `ip -br link` lists those "
    "that exist",
    "down": "bring it up (ip link set {name} up) and check its cable or switch port",
    "no-lookups": "the sensor sees traffic but not the clients' lookups: put it on the LAN side "
    "of NAT or on a switch mirror port of the clients' uplink (deploy/IT guide)",
    "silent": "connect the interface to the LAN side of NAT or to a switch mirror port, or set "
    "capture.interfaces to the one that carries the clients' traffic",
}
"""The fix for each kind of problem, most basic first: the first kind found is the one shown."""


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def judge_interface(
    state: InterfaceState, traffic: Traffic | None, watch_s: float
) -> InterfaceProblem | None:
    """Why the interface cannot serve (None when it can)."""
    name = state.name
    if not state.exists:
        return InterfaceProblem("missing", f"{name} does not exist")
    if not is_up(state):
        return InterfaceProblem("down", f"{name} is {state.operstate}")
    if traffic is None or traffic.captured or (traffic.captured is None and traffic.received):
        return None
    if traffic.captured is None:
        return InterfaceProblem("silent", f"{name} received no frames in {watch_s:g} s")
    if traffic.received:
        return InterfaceProblem(
            "no-lookups",
            f"{name} received {_count(traffic.received, 'frame')} in {watch_s:g} s but no DNS, "
            "TLS or QUIC from clients",
        )
    return InterfaceProblem("silent", f"{name} is silent: no frames in {watch_s:g} s")


def describe_interface(state: InterfaceState, traffic: Traffic | None, watch_s: float) -> str:
    problem = judge_interface(state, traffic, watch_s)
    if problem is not None:
        return problem.text
    if traffic is None:
        return f"{state.name} up"
    if traffic.captured is None:
        return (
            f"{state.name} up, {_count(traffic.received, 'frame')} received (kernel counter; "
            f"not captured: {traffic.capture_error})"
        )
    return f"{state.name} up, {_count(traffic.captured, 'DNS/TLS/QUIC packet')} seen"


def interface_fix(problems: Sequence[tuple[str, InterfaceProblem]]) -> str:
    """The fix for the most basic kind of problem found (``problems``: interface, problem)."""
    for kind, fix in INTERFACE_FIXES.items():
        for name, problem in problems:
            if problem.kind == kind:
                return fix.format(name=name)
    return ""


def watch_interfaces(
    names: Sequence[str],
    watch_s: float,
    *,
    bpf: str,
    sys_net: Path = SYS_NET,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.1,
) -> dict[str, Traffic]:
    """Capture on each interface until each has seen a packet, at most ``watch_s`` seconds."""
    before = {name: interface_state(name, sys_net).rx_packets for name in names}
    sources: dict[str, LiveSource] = {}
    errors: dict[str, str] = {}
    try:
        for name in names:
            try:
                sources[name] = LiveSource([name], bpf=bpf, snaplen=256, buffer_bytes=2 << 20)
            except CaptureSetupError as e:
                errors[name] = str(e)
        seen = dict.fromkeys(sources, 0)
        deadline = clock() + watch_s
        while True:
            for name, source in sources.items():
                received, dropped = source.stats()[name]
                seen[name] = received + dropped
            if (sources and all(seen.values())) or clock() >= deadline:
                break
            time.sleep(poll_s)
    finally:
        for source in sources.values():
            source.close()
    after = {name: interface_state(name, sys_net).rx_packets for name in names}
    return {
        name: Traffic(
            captured=seen.get(name) if name in sources else None,
            received=max(0, after[name] - before[name]),
            capture_error=errors.get(name, ""),
        )
        for name in names
    }


def check_interfaces(
    names: Sequence[str], watch_s: float, *, bpf: str, sys_net: Path = SYS_NET
) -> CheckResult:
    """Every interface exists, is up, and carries what the daemon reads."""
    if not names:
        return failed(
            "interfaces",
            "no interface to capture on: capture.interfaces is empty and no interface is up",
            "set capture.interfaces to the LAN-side interface(s); `ip -br link` lists them",
        )
    states = [interface_state(name, sys_net) for name in names]
    usable = [state.name for state in states if state.exists and is_up(state)]
    traffic = watch_interfaces(usable, watch_s, bpf=bpf, sys_net=sys_net) if usable else {}
    problems = [
        (state.name, problem)
        for state in states
        if (problem := judge_interface(state, traffic.get(state.name), watch_s)) is not None
    ]
    detail = "; ".join(describe_interface(s, traffic.get(s.name), watch_s) for s in states)
    if problems:
        return failed("interfaces", detail, interface_fix(problems))
    return passed("interfaces", detail)


# --- database ---------------------------------------------------------------------------------


def check_database(url: str) -> CheckResult:
    """Reachable, and at the migration this version needs."""
    shown = display_url(url)
    upgrade = "run `hallmonitor db upgrade` (as the service user), then start the services again"
    parsed = normalise_url(url)
    if missing_sqlite_file(parsed):
        return failed("database", f"{shown} does not exist yet", upgrade)
    try:
        head = head_revision()
        engine = make_engine(parsed)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as e:
        first_line = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return failed(
            "database",
            f"{shown} cannot be reached: {first_line}",
            "check database.url, that the server is running and that this host may connect",
        )
    if current is None:
        return failed("database", f"{shown} has no schema (an empty database)", upgrade)
    if current != head:
        return failed(
            "database",
            f"{shown} is at schema revision {current}; this version needs {head}",
            upgrade,
        )
    return passed("database", f"{shown} reachable, schema at the latest revision {head}")


# --- the running daemon's kernel drops ----------------------------------------------------------


def judge_drops(site: str, day: date, figures: CaptureDay | None) -> CheckResult:
    """Whether the capture daemon of ``site`` lost packets in the kernel on ``day``, from the
    daily counters it writes (``CaptureCounts``, every few minutes while it runs)."""
    if figures is None:
        return passed("drops", f"no capture figures for {site!r} on {day} (no daemon ran yet)")
    seen = f"{_count(figures.frames, 'frame')} read by the capture on {day}"
    if not figures.kernel_drops:
        return passed("drops", f"{seen}, no kernel drops")
    share = figures.kernel_drops / (figures.frames + figures.kernel_drops)
    return failed(
        "drops",
        f"{seen}, {_count(figures.kernel_drops, 'packet')} dropped by the kernel ({share:.1%})",
        "the capture cannot keep up: set capture.workers to the number of cores, or raise "
        "capture.buffer_mb, then restart the daemon",
    )


def check_drops(url: str, site: str, day: date) -> CheckResult:
    """The capture's kernel drops today, as the running daemon counted them in the database
    (the daemon's own metrics, ``capture.metrics_listen``, show them live too)."""
    parsed = normalise_url(url)
    if missing_sqlite_file(parsed):  # opening it would create it
        return failed(
            "drops", "no database to read the capture figures from", "see the database check"
        )
    try:
        engine = make_engine(parsed)
        try:
            with Session(engine) as db:
                figures = capture_day(db, site, day)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as e:
        first_line = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return failed(
            "drops", f"the capture figures cannot be read: {first_line}", "see the database check"
        )
    return judge_drops(site, day, figures)


# --- lists ------------------------------------------------------------------------------------


def check_lists(settings: Settings) -> CheckResult:
    """The platform lists and allowlists load, with how many entries."""
    fix = "correct the file or line named, then run `hallmonitor lists check` until it passes"
    directories = list_directories(settings)
    problems = list_problems(directories)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return failed("lists", f"{problems[0]}{more}", fix)
    try:
        lists = load_lists(directories, extra_allow=settings.lists.allow)
    except BlocklistError as e:
        return failed("lists", str(e), "correct lists.allow in the configuration")
    return passed(
        "lists",
        f"{len(lists.platforms)} platforms, {len(lists.entries):,} entries, "
        f"{len(lists.allowlist)} allowlist entries from {len(directories)} director"
        f"{'y' if len(directories) == 1 else 'ies'}",
    )


# --- compiled modules -------------------------------------------------------------------------


def judge_compiled(found: Sequence[Twin]) -> CheckResult:
    """Which compiled modules are in use and which run as Python: a pass either way (they only
    make the same work cheaper), with why a module that is there cannot be loaded."""
    compiled = [twin.name for twin in found if twin.module is not None]
    python = [twin.python for twin in found if twin.module is None]
    detail = f"compiled: {', '.join(compiled) or 'none'}"
    if python:
        detail += f"; running as Python: {', '.join(python)}"
    notes = [
        f"{twin.name} cannot be loaded ({twin.problem})"
        for twin in found
        if twin.problem not in (None, NOT_BUILT)
    ]
    notes += [f"{twin.name} was built before its source changed" for twin in found if twin.stale]
    if notes:
        detail += f"; {'; '.join(notes)}: {REBUILD}"
    elif python:
        detail += f" ({NOT_BUILT}: optional, they need a C compiler when installing)"
    return passed("compiled", detail)


# --- smtp -------------------------------------------------------------------------------------


def check_smtp(settings: Settings) -> CheckResult:
    """The mail server takes a connection as configured (only when mail is enabled)."""
    mail = settings.mail
    if not mail.enabled:
        return passed("smtp", "mail disabled (mail.enabled = false): nothing to check")
    from monitor.reports.mail import MailError, check_server

    try:
        detail = check_server(mail)
    except MailError as e:
        return failed(
            "smtp",
            str(e),
            "check mail.host, mail.port and mail.security (587 starttls, 465 tls), the "
            "credentials, and that the firewall lets this host reach the server",
        )
    return passed("smtp", detail)


# --- time -------------------------------------------------------------------------------------


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


# --- the whole run ----------------------------------------------------------------------------


def run_checks(
    settings: Settings, *, only: Sequence[str] = (), watch_s: float = DEFAULT_WATCH_S
) -> list[CheckResult]:
    """Every check (or those named in ``only``), in ``CHECKS`` order."""
    wanted = [name for name in CHECKS if not only or name in only]
    results = []
    for name in wanted:
        if name == "capabilities":
            results.append(check_capabilities())
        elif name == "interfaces":
            interfaces = list(settings.capture.interfaces) or default_interfaces()
            ports = sorted(DNS_PORTS | set(settings.capture.dns_ports))
            results.append(check_interfaces(interfaces, watch_s, bpf=build_bpf_filter(ports)))
        elif name == "database":
            results.append(check_database(settings.database.url.get_secret_value()))
        elif name == "drops":
            today = datetime.now(ZoneInfo(settings.calendar.timezone)).date()
            url = settings.database.url.get_secret_value()
            results.append(check_drops(url, settings.site.name, today))
        elif name == "lists":
            results.append(check_lists(settings))
        elif name == "compiled":
            results.append(judge_compiled(twins()))
        elif name == "smtp":
            results.append(check_smtp(settings))
        elif name == "time":
            results.append(check_time(settings))
    return results


def run_doctor(
    settings: Settings,
    *,
    only: Sequence[str] = (),
    watch_s: float = DEFAULT_WATCH_S,
    by: str | None = None,
) -> tuple[int, list[str]]:
    """``hallmonitor doctor``: exit status and the lines to print; the run is recorded."""
    for name in only:
        if name not in CHECKS:
            raise ValueError(f"no check named {name!r}; the checks are {', '.join(CHECKS)}")
    results = run_checks(settings, only=only, watch_s=watch_s)
    ok = all(result.ok for result in results)
    lines = [line for result in results for line in render(result)]
    failures = sum(1 for result in results if not result.ok)
    lines.append(
        f"all {len(results)} checks passed" if ok else f"{failures} of {len(results)} checks failed"
    )
    if any(result.name == "database" and not result.ok for result in results):
        lines.append("not recorded: the database check failed")
    else:
        lines.append(
            record_run(
                settings.database.url.get_secret_value(),
                kind="doctor",
                ok=ok,
                detail=summary(results),
                username=current_user(by),
                site=settings.site.name,
            )
        )
    return (0 if ok else 1), lines
