"""Checks of what the daemon loads and talks to: the database, the lists, the compiled modules
and the mail server."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from monitor.checks import (
    CheckResult,
    failed,
    missing_sqlite_file,
    passed,
)
from monitor.config.settings import Settings
from monitor.errors import BlocklistError
from monitor.extract.compiled import NOT_BUILT, REBUILD, Twin
from monitor.lists.directories import check_lists as list_problems
from monitor.lists.directories import list_directories, load_lists
from monitor.store.db import (
    current_revision,
    display_url,
    head_revision,
    make_engine,
    normalise_url,
)

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
