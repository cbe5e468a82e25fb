"""The people who sign in to the review app: accounts, their roles and the password policy.

Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher``, RFC 9106 low-memory
profile); only the hash is stored. Checking a password at sign-in, with the lockout, is
``monitor.store.passwords``; API tokens are ``monitor.store.api_tokens``; the
``hallmonitor users ...`` commands are ``monitor.store.user_admin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.workflow import UserRole

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
"""Longer input is refused before hashing, so a huge password cannot tie up the server."""

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")

DEFAULT_HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106 low-memory: t=3, 64 MiB, p=4)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the rest of the program sees it (never the password hash)."""

    id: int
    username: str
    display_name: str
    role: UserRole
    email: str | None
    site: str | None
    """Limits the user to one school of a trust; None sees every site."""
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    must_change_password: bool = False
    """Signed in with a one-time password: the review app asks for a new one first."""


# --- validation ------------------------------------------------------------------------------


def normalise_username(username: str) -> str:
    """Usernames compare case-insensitively and without surrounding spaces."""
    return username.strip().lower()


def check_password_policy(password: str) -> None:
    """Raise ``ValueError`` saying what is allowed when ``password`` is too short or too long."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(
            f"password too short ({len(password)} characters): use at least "
            f"{PASSWORD_MIN_LENGTH} characters, e.g. three or four unrelated words"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"password too long: use at most {PASSWORD_MAX_LENGTH} characters")


def _check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"username {username!r}: use 1 to 64 lowercase letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def _check_fields(display_name: str, role: str, email: str | None) -> UserRole:
    if not display_name.strip() or len(display_name) > 100:
        raise ValueError("display name: give 1 to 100 characters, e.g. 'Mrs J Smith (Head)'")
    if email is not None and not EMAIL_PATTERN.fullmatch(email):
        raise ValueError(f"email {email!r}: not an email address")
    try:
        return UserRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in UserRole)
        raise ValueError(f"role {role!r}: use one of {allowed}") from None


def current_time(now: datetime | None) -> datetime:
    """``now`` when given (tests pass a time), else the current UTC time."""
    return now if now is not None else datetime.now(UTC)


def user_info(record: UserRecord) -> UserInfo:
    """The ``UserInfo`` of a row (for the store and the web app's session lookup)."""
    return UserInfo(
        id=record.id,
        username=record.username,
        display_name=record.display_name,
        role=UserRole(record.role),
        email=record.email,
        site=record.site,
        disabled=record.disabled,
        locked_until=record.locked_until,
        created_at=record.created_at,
        last_login_at=record.last_login_at,
        must_change_password=record.must_change_password,
    )


# --- users -----------------------------------------------------------------------------------


def create_user(
    db: Session,
    username: str,
    display_name: str,
    role: UserRole | str,
    password: str,
    *,
    email: str | None = None,
    site: str | None = None,
    hasher: PasswordHasher = DEFAULT_HASHER,
    now: datetime | None = None,
    must_change_password: bool = False,
) -> UserInfo:
    """Add a user; ``ValueError`` for a taken name, a bad field or a short password.
    ``must_change_password``: the password is a one-time one."""
    name = _check_username(username)
    checked_role = _check_fields(display_name, str(role), email)
    check_password_policy(password)
    password_hash = hasher.hash(password)  # before any query: no transaction is open yet
    if db.scalar(select(UserRecord.id).where(UserRecord.username == name)) is not None:
        raise ValueError(f"username {name!r} is taken: choose another or use `users passwd`")
    record = UserRecord(
        username=name,
        display_name=display_name.strip(),
        email=email,
        password_hash=password_hash,
        role=checked_role.value,
        site=site or None,
        disabled=False,
        failed_logins=0,
        created_at=current_time(now),
        must_change_password=must_change_password,
    )
    db.add(record)
    db.flush()
    return user_info(record)


def get_user_record(db: Session, username: str) -> UserRecord:
    """The row of the user called ``username``, to change it; ``LookupError`` when there is none."""
    record = db.scalar(
        select(UserRecord).where(UserRecord.username == normalise_username(username))
    )
    if record is None:
        raise NotFound(f"no user {normalise_username(username)!r}", "see `hallmonitor users list`")
    return record


def get_user(db: Session, username: str) -> UserInfo:
    """The user called ``username``; ``LookupError`` when there is none."""
    return user_info(get_user_record(db, username))


def set_disabled(db: Session, username: str, disabled: bool) -> UserInfo:
    """Disable (and sign out everywhere) or re-enable a user; API tokens stop working too."""
    record = get_user_record(db, username)
    record.disabled = disabled
    if disabled:
        db.execute(delete(WebSessionRecord).where(WebSessionRecord.user_id == record.id))
    db.flush()
    return user_info(record)


def list_users(db: Session) -> list[UserInfo]:
    """Every user, by username."""
    return [user_info(r) for r in db.scalars(select(UserRecord).order_by(UserRecord.username))]
