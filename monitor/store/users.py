"""The people who sign in to the review app, their passwords, lockouts and API tokens.

Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher``, RFC 9106 low-memory
profile); only the hash is stored. ``verify_login`` is the one place a password is checked: it
applies the lockout policy (``web.login_max_failures`` failures in a row lock the account for
``web.login_lockout_minutes``) and, for a name that does not exist, still verifies against a
dummy hash so the answer takes about as long (no user enumeration by timing). The attempt is
counted in a short transaction of its own before the hash, which runs with no transaction open
(a login flood must not hold SQLite's one write lock, which capture needs); the caller
(``api/auth.py``) writes the audit row in a second short transaction and commits it.

API tokens (``hm_`` followed by 43 URL-safe characters) are shown once at creation; the table
keeps their SHA-256. The ``run_users_*`` functions are what ``hallmonitor users ...`` calls;
each change they make is audited as ``cli:<login name>``.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.store.audit import AuditAction, NamedActor, record_event
from monitor.store.db import ensure_schema_current, make_engine
from monitor.store.models import ApiTokenRecord, UserRecord, WebSessionRecord
from monitor.store.workflow import in_words

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
"""Longer input is refused before hashing, so a huge password cannot tie up the server."""

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
API_TOKEN_PREFIX = "hm_"

T = TypeVar("T")

DEFAULT_HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106 low-memory: t=3, 64 MiB, p=4)."""


class UserRole(StrEnum):
    """What a person may see and do; enforced on the server (``api.deps.require_role``)."""

    ADMIN = "admin"
    """The IT technician: settings, lists, devices, users, audit log."""
    REVIEWER = "reviewer"
    """Headteacher or deputy: incidents, outcomes, exports."""
    GOVERNOR = "governor"
    """Aggregate figures only: never a device, address, host name or label."""

    @property
    def label(self) -> str:
        """How the role reads: ``IT administrator``, ``Reviewer``, ``Governor``."""
        return "IT administrator" if self is UserRole.ADMIN else in_words(self.value)


class LoginOutcome(StrEnum):
    """Why a login succeeded or failed; the page shows one message for every failure."""

    SUCCESS = "success"
    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"
    LOCKED = "locked"
    DISABLED = "disabled"


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


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Throttling settings (from ``settings.web``) and the hasher to verify with."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    hasher: PasswordHasher = field(default=DEFAULT_HASHER)
    """Tests pass a cheap argon2 profile; production uses the default."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What ``verify_login`` decided."""

    outcome: LoginOutcome
    user: UserInfo | None
    """The account the name belongs to (None for an unknown name)."""
    locked_until: datetime | None = None
    """Set when the account is locked (by this attempt or before)."""

    @property
    def ok(self) -> bool:
        return self.outcome is LoginOutcome.SUCCESS


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    """An API token's record, without the token."""

    id: int
    user_id: int
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    site: str | None = None
    """The owner's site: a token acts for its owner, within the owner's school."""


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


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a session or API token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utcnow(now: datetime | None) -> datetime:
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
        created_at=_utcnow(now),
        must_change_password=must_change_password,
    )
    db.add(record)
    db.flush()
    return user_info(record)


def _get_record(db: Session, username: str) -> UserRecord:
    record = db.scalar(
        select(UserRecord).where(UserRecord.username == normalise_username(username))
    )
    if record is None:
        raise NotFound(f"no user {normalise_username(username)!r}", "see `hallmonitor users list`")
    return record


def get_user(db: Session, username: str) -> UserInfo:
    """The user called ``username``; ``LookupError`` when there is none."""
    return user_info(_get_record(db, username))


def find_user_by_id(db: Session, user_id: int) -> UserInfo | None:
    """The user with this id, or None."""
    record = db.get(UserRecord, user_id)
    return None if record is None else user_info(record)


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """A new password: the user, and how many of their API tokens it revoked."""

    user: UserInfo
    tokens_revoked: int


def set_password(
    db: Session,
    username: str,
    password: str,
    *,
    hasher: PasswordHasher = DEFAULT_HASHER,
    now: datetime | None = None,
) -> PasswordChanged:
    """Replace the password, clear any lockout, sign the user out everywhere and revoke their
    API tokens (a password changed because it leaked must not leave a token working; a
    one-time password is gone once replaced)."""
    check_password_policy(password)
    password_hash = hasher.hash(password)  # before any query: no transaction is open yet
    record = _get_record(db, username)
    record.password_hash = password_hash
    record.failed_logins = 0
    record.locked_until = None
    record.must_change_password = False
    db.execute(delete(WebSessionRecord).where(WebSessionRecord.user_id == record.id))
    revoked = revoke_user_api_tokens(db, record.id, now=now)
    db.flush()
    return PasswordChanged(user_info(record), revoked)


def set_disabled(db: Session, username: str, disabled: bool) -> UserInfo:
    """Disable (and sign out everywhere) or re-enable a user; API tokens stop working too."""
    record = _get_record(db, username)
    record.disabled = disabled
    if disabled:
        db.execute(delete(WebSessionRecord).where(WebSessionRecord.user_id == record.id))
    db.flush()
    return user_info(record)


def list_users(db: Session) -> list[UserInfo]:
    """Every user, by username."""
    return [user_info(r) for r in db.scalars(select(UserRecord).order_by(UserRecord.username))]


@functools.lru_cache(maxsize=8)
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))


def _password_matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login attempt after its first, short transaction: either already decided (unknown
    name, locked or disabled account) or counted against the lockout and still to be checked."""

    outcome: LoginOutcome | None
    """The decision when no password check is allowed; None when the password is to be checked."""
    user: UserInfo | None
    password_hash: str | None = None
    """The stored hash to check against (None: check against a dummy hash, for the timing)."""
    locked_until: datetime | None = None
    """The lock in force, or the one this attempt set by being the last one allowed."""


def reserve_login_attempt(
    db: Session, username: str, now: datetime, policy: LoginPolicy
) -> LoginAttempt:
    """Count an attempt against the lockout before its password is checked (the caller commits
    at once, before hashing).

    The user's row is locked (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises anyway)
    while the count moves on, so parallel guesses each take their own place in it: at most
    ``policy.max_failures`` in a row are ever checked. The attempt that reaches the limit sets
    the lock and is still checked; if its password is right, ``finish_login`` lifts the lock.
    """
    name = normalise_username(username)
    record = (
        db.scalar(select(UserRecord).where(UserRecord.username == name).with_for_update())
        if name
        else None
    )
    if record is None:
        return LoginAttempt(LoginOutcome.UNKNOWN_USER, None)
    if record.locked_until is not None and record.locked_until > now:
        return LoginAttempt(
            LoginOutcome.LOCKED, user_info(record), locked_until=record.locked_until
        )
    if record.disabled:
        return LoginAttempt(LoginOutcome.DISABLED, user_info(record))
    locked_until = None
    record.failed_logins += 1
    if record.failed_logins >= policy.max_failures:
        locked_until = now + policy.lockout
        record.failed_logins = 0
        record.locked_until = locked_until
    db.flush()
    return LoginAttempt(None, user_info(record), record.password_hash, locked_until)


@dataclass(frozen=True, slots=True)
class CheckedPassword:
    """The result of the slow part of a login, computed with no transaction open."""

    matches: bool
    new_hash: str | None = None
    """The password hashed with the current parameters, when the stored hash is outdated."""


def check_password(attempt: LoginAttempt, password: str, hasher: PasswordHasher) -> CheckedPassword:
    """Verify one argon2 hash, whatever the attempt (a dummy one when no check is allowed), so
    every answer takes about as long. Touches no database."""
    password = password[:PASSWORD_MAX_LENGTH]
    if attempt.outcome is not None or attempt.password_hash is None:
        _password_matches(hasher, _dummy_hash(hasher), password)
        return CheckedPassword(False)
    if not _password_matches(hasher, attempt.password_hash, password):
        return CheckedPassword(False)
    if hasher.check_needs_rehash(attempt.password_hash):
        return CheckedPassword(True, hasher.hash(password))
    return CheckedPassword(True)


def finish_login(
    db: Session, attempt: LoginAttempt, checked: CheckedPassword, now: datetime
) -> LoginResult:
    """Record the end of an attempt (in the caller's transaction): a success clears the count
    and any lock and notes the time; a failure was counted already."""
    if attempt.outcome is not None or attempt.user is None:
        return LoginResult(
            attempt.outcome or LoginOutcome.UNKNOWN_USER, attempt.user, attempt.locked_until
        )
    if not checked.matches:
        return LoginResult(LoginOutcome.WRONG_PASSWORD, attempt.user, attempt.locked_until)
    record = db.get(UserRecord, attempt.user.id)
    if record is None:  # deleted while its password was being checked
        return LoginResult(LoginOutcome.UNKNOWN_USER, None)
    if checked.new_hash is not None:
        record.password_hash = checked.new_hash
    record.failed_logins = 0
    record.locked_until = None
    record.last_login_at = now
    db.flush()
    user = user_info(record)
    return LoginResult(LoginOutcome.SUCCESS, user)


def verify_login(
    db: Session, username: str, password: str, now: datetime, policy: LoginPolicy
) -> LoginResult:
    """Check a login attempt: ``reserve_login_attempt``, committed at once; the argon2 hash
    with no transaction open (on SQLite a transaction holds the one write lock, which capture
    needs too); then ``finish_login`` in the caller's transaction, which the caller commits.

    Every path verifies one argon2 hash, so an unknown name, a locked or disabled account and a
    wrong password take about the same time. A locked account refuses even the right password
    until ``locked_until``; the lock is not extended by attempts made while it holds.
    """
    attempt = reserve_login_attempt(db, username, now, policy)
    db.commit()
    checked = check_password(attempt, password, policy.hasher)
    return finish_login(db, attempt, checked, now)


# --- API tokens ------------------------------------------------------------------------------


def create_api_token(db: Session, user_id: int, name: str, *, now: datetime | None = None) -> str:
    """Create a bearer token for the user and return it: the only time it is shown."""
    if not name.strip() or len(name) > 100:
        raise ValueError("token name: give 1 to 100 characters saying what uses it")
    if db.get(UserRecord, user_id) is None:
        raise NotFound(f"no user with id {user_id}")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(
        ApiTokenRecord(
            user_id=user_id,
            name=name.strip(),
            token_hash=token_hash(token),
            created_at=_utcnow(now),
        )
    )
    db.flush()
    return token


def revoke_api_token(db: Session, token_id: int, *, now: datetime | None = None) -> None:
    """Revoke a token (kept for the record); ``LookupError`` when there is no such token."""
    record = db.get(ApiTokenRecord, token_id)
    if record is None:
        raise NotFound(f"no API token with id {token_id}")
    if record.revoked_at is None:
        record.revoked_at = _utcnow(now)
        db.flush()


def revoke_user_api_tokens(db: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Revoke every live API token of a user (the records stay); how many were live."""
    result = db.execute(
        update(ApiTokenRecord)
        .where(ApiTokenRecord.user_id == user_id, ApiTokenRecord.revoked_at.is_(None))
        .values(revoked_at=_utcnow(now))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount if isinstance(result, CursorResult) else 0


def list_api_tokens(db: Session) -> list[ApiTokenInfo]:
    """Every API token, newest first, with the name of its user."""
    rows = db.execute(
        select(ApiTokenRecord, UserRecord.username, UserRecord.site)
        .join(UserRecord, UserRecord.id == ApiTokenRecord.user_id)
        .order_by(ApiTokenRecord.created_at.desc(), ApiTokenRecord.id.desc())
    )
    return [
        ApiTokenInfo(
            t.id, t.user_id, username, t.name, t.created_at, t.last_used_at, t.revoked_at, site
        )
        for t, username, site in rows
    ]


TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token."""


def find_api_token_user(db: Session, token: str, now: datetime) -> UserInfo | None:
    """The enabled user a live (not revoked) bearer token acts for, or None."""
    if not token.startswith(API_TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.execute(
        select(ApiTokenRecord, UserRecord)
        .join(UserRecord, UserRecord.id == ApiTokenRecord.user_id)
        .where(ApiTokenRecord.token_hash == token_hash(token))
        .where(ApiTokenRecord.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    record, user = row
    if user.disabled:
        return None
    if record.last_used_at is None or now - record.last_used_at >= TOKEN_TOUCH_INTERVAL:
        record.last_used_at = now
        db.flush()
    return user_info(user)


# --- command line ----------------------------------------------------------------------------


def _run(url: str, action: Callable[[Session], T]) -> T:
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

    return _run(url, add)


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

    return _run(url, passwd)


def run_users_disable(url: str, username: str, *, disabled: bool = True) -> str:
    """``hallmonitor users disable`` (``disabled=False``: enable again)."""

    def toggle(db: Session) -> str:
        user = set_disabled(db, username, disabled)
        _audit_cli(db, user, {"change": "disable" if disabled else "enable"})
        if disabled:
            return f"disabled {user.username!r}: signed out, API tokens refused"
        return f"enabled {user.username!r}"

    return _run(url, toggle)


def run_users_token(url: str, username: str, name: str) -> str:
    """``hallmonitor users token``: create an API token and return it (shown only this once)."""

    def issue(db: Session) -> str:
        user = get_user(db, username)
        token = create_api_token(db, user.id, name)
        record_event(
            db, user=_cli_actor(), action=AuditAction.CREATE_API_TOKEN, target_type="user",
            target_id=user.id, detail={"name": name}, address=None, site=user.site,
        )  # fmt: skip
        return token

    return _run(url, issue)


def _tokens(count: int) -> str:
    if count == 0:
        return "no API token was"
    return "1 API token was" if count == 1 else f"{count} API tokens were"


def _cli_actor() -> NamedActor:
    """Changes made at the command line are audited as ``cli:<login name>``."""
    return NamedActor(None, "cli:" + getpass.getuser())


def _audit_cli(db: Session, user: UserInfo, detail: dict[str, object]) -> None:
    record_event(
        db, user=_cli_actor(), action=AuditAction.CHANGE_USER, target_type="user",
        target_id=user.id, detail=detail, address=None, site=user.site,
    )  # fmt: skip


def run_users_list(url: str) -> list[str]:
    """``hallmonitor users list``: a header line and one line per user."""
    users = _run(url, list_users)
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
