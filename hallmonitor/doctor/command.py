"""`hallmonitor doctor`: is this sensor ready to do its job, and if not, what to fix.

Each check looks at one thing the daemon depends on (interfaces that carry traffic, capture
capabilities, the database and its schema, the lists, which compiled modules are in use, the
mail server, the clock and the school calendar) and returns a ``CheckResult`` with a one-line
fix when it fails. The probes read the system; the ``judge_*`` functions decide from what they
read and do no IO.

The checks live by what they check: ``capture`` (capabilities, interfaces), ``services``
(database, lists, compiled modules, mail server) and ``clock`` (time, calendar); this module
runs them and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from hallmonitor.doctor.capture import DEFAULT_WATCH_S, check_capabilities, check_interfaces
from hallmonitor.doctor.clock import check_time
from hallmonitor.doctor.drops import check_drops
from hallmonitor.doctor.services import check_database, check_lists, check_smtp, judge_compiled
from monitor.checks import (
    CheckResult,
    current_user,
    record_run,
    render,
    summary,
)
from monitor.config.settings import Settings
from monitor.extract.compiled import twins
from monitor.extract.dns import DNS_PORTS
from monitor.runner import default_interfaces
from monitor.sources.live import build_bpf_filter

CHECKS = ("capabilities", "interfaces", "database", "drops", "lists", "compiled", "smtp", "time")
"""Every check, in the order run and printed."""


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
