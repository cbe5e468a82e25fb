"""``hallmonitor users ...``: add, passwd, disable, token, list.

Each change is audited as ``cli:<login name>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from monitor.store.api_tokens import create_api_token
from monitor.store.audit import AuditAction, NamedActor, record_event
from monitor.store.db import ensure_schema_current, make_engine
from monitor.store.passwords import set_password
from monitor.store.users import UserInfo, create_user, get_user, list_users, set_disabled

T = TypeVar("T")


def run_in_transaction(url: str, action: Callable[[Session], T]) -> T:
    """Run ``action`` in one committed transaction on a database at the current schema."""
    engine = make_engine(url)
    try:
        ensure_schema_current(engine)
        with Session(engine) as db:
            result = action(db)
            db.commit()
        return result
    finally:
        engine.dispose()


def run_users_add(
    url: str,
    username: str,
    display_name: str,
    role: str,
    email: str | None,
    site: str | None,
    password: str,
) -> str:
    """``hallmonitor users add``: returns a one-line summary; ``ValueError`` for bad input."""

    def add(db: Session) -> str:
        user = create_user(
            db, username, display_name, role, password, email=email or None, site=site or None
        )
        _audit_cli(db, user, {"change": "add", "role": user.role.value, "site": user.site})
        return f"added {user.role} {user.username!r} ({user.display_name})"

    return run_in_transaction(url, add)


def run_users_passwd(url: str, username: str, password: str) -> str:
    """``hallmonitor users passwd``: new password, lockout cleared, signed out everywhere."""

    def passwd(db: Session) -> str:
        changed = set_password(db, username, password)
        user = changed.user
        _audit_cli(db, user, {"change": "password", "tokens_revoked": changed.tokens_revoked})
        return (
            f"password changed for {user.username!r}; their sessions were ended and "
            f"{_tokens(changed.tokens_revoked)} revoked"
        )

    return run_in_transaction(url, passwd)


def run_users_disable(url: str, username: str, *, disabled: bool = True) -> str:
    """``hallmonitor users disable`` (``disabled=False``: enable again)."""

    def toggle(db: Session) -> str:
        user = set_disabled(db, username, disabled)
        _audit_cli(db, user, {"change": "disable" if disabled else "enable"})
        if disabled:
            return f"disabled {user.username!r}: signed out, API tokens refused"
        return f"enabled {user.username!r}"

    return run_in_transaction(url, toggle)


def run_users_token(url: str, username: str, name: str) -> str:
    """``hallmonitor users token``: create an API token and return it (shown only this once)."""

    def issue(db: Session) -> str:
        user = get_user(db, username)
        token = create_api_token(db, user.id, name)
        record_event(
            db, user=cli_actor(), action=AuditAction.CREATE_API_TOKEN, target_type="user",
            target_id=user.id, detail={"name": name}, address=None, site=user.site,
        )  # fmt: skip
        return token

    return run_in_transaction(url, issue)


def _tokens(count: int) -> str:
    if count == 0:
        return "no API token was"
    return "1 API token was" if count == 1 else f"{count} API tokens were"


def cli_actor() -> NamedActor:
    """Changes made at the command line are audited as ``cli:<login name>``."""
    return NamedActor(None, "cli:" + getpass.getuser())


def _audit_cli(db: Session, user: UserInfo, detail: dict[str, object]) -> None:
    record_event(
        db, user=cli_actor(), action=AuditAction.CHANGE_USER, target_type="user",
        target_id=user.id, detail=detail, address=None, site=user.site,
    )  # fmt: skip


def run_users_list(url: str) -> list[str]:
    """``hallmonitor users list``: a header line and one line per user."""
    users = run_in_transaction(url, list_users)
    now = datetime.now(UTC)
    return [_list_line("USERNAME", "ROLE", "NAME", "EMAIL", "SITE", "STATE", "LAST LOGIN")] + [
        _list_line(
            u.username,
            u.role.value,
            u.display_name,
            u.email or "-",
            u.site or "all",
            _state(u, now),
            u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never",
        )
        for u in users
    ]


def _state(user: UserInfo, now: datetime) -> str:
    if user.disabled:
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return "locked until " + user.locked_until.strftime("%H:%M UTC")
    return "active"


def _list_line(*cells: str) -> str:
    widths = (16, 9, 24, 28, 10, 18)
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
    return "  ".join([*padded, *cells[len(widths) :]]).rstrip()
