"""What `hallmonitor doctor` and `hallmonitor selftest` share: a check's result, how it is
printed, who ran it, and the row that records the run for the governors' report.

A check that fails says how to fix it in one line, because the person reading it is the IT
technician at the gateway, not a developer.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.store.db import display_url, make_engine, normalise_url
from monitor.store.models import CheckRecord


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: whether it passed, what was found, and (when it failed) how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    """One line saying what to do; empty when the check passed."""


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, False, detail, fix)


def render(result: CheckResult, width: int = 12) -> list[str]:
    """``OK   name   detail``, and for a failure a ``fix:`` line under it."""
    lines = [f"{'OK' if result.ok else 'FAIL':<4} {result.name:<{width}} {result.detail}"]
    if not result.ok and result.fix:
        lines.append(f"{'':<4} {'':<{width}} fix: {result.fix}")
    return lines


def summary(results: Sequence[CheckResult]) -> str:
    """The one-line record of a run: every failure with its detail, the passes by name."""
    failures = [r for r in results if not r.ok]
    passes = [r.name for r in results if r.ok]
    parts = [f"{r.name} FAILED: {r.detail}" for r in failures]
    if passes:
        parts.append(f"passed: {', '.join(passes)}")
    return "; ".join(parts)


def current_user(by: str | None = None) -> str:
    """Who ran the check: ``--by NAME``, else the person behind sudo, else the OS user."""
    if by:
        return by
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def record_run(
    url: str,
    *,
    kind: str,
    ok: bool,
    detail: str,
    username: str,
    site: str,
    at: datetime | None = None,
) -> str:
    """Store the run as a ``CheckRecord``; a line saying where, or why it could not be."""
    shown = display_url(url)
    parsed = normalise_url(url)
    if missing_sqlite_file(parsed):
        return f"not recorded: the database {shown} does not exist yet"
    engine = make_engine(parsed)
    try:
        with Session(engine) as db, db.begin():
            db.add(
                CheckRecord(
                    at=at or datetime.now(UTC),
                    kind=kind,
                    ok=ok,
                    detail=detail,
                    username=username,
                    site=site,
                )
            )
    except SQLAlchemyError as e:
        first_line = str(getattr(e, "orig", None) or e).splitlines()[0]
        return f"not recorded: the database {shown} cannot take it ({first_line})"
    finally:
        engine.dispose()
    return f"recorded as a {kind} check by {username} in {shown}"


def missing_sqlite_file(url: URL) -> bool:
    """An SQLite URL naming a file that is not there (opening it would create it, empty)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return False
    return not database.startswith("file:") and not Path(database).expanduser().is_file()
