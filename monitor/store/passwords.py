"""Passwords: changing one, and checking one at sign-in with the lockout.

``verify_login`` is the one place a password is checked: it applies the lockout policy
(``web.login_max_failures`` failures in a row lock the account for ``web.login_lockout_minutes``)
and, for a name that does not exist, still verifies against a dummy hash so the answer takes
about as long (no user enumeration by timing). The attempt is counted in a short transaction of
its own before the hash, which runs with no transaction open (a login flood must not hold
SQLite's one write lock, which capture needs); the caller (``api/auth.py``) writes the audit row
in a second short transaction and commits it.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import revoke_user_api_tokens
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.users import (
    DEFAULT_HASHER,
    PASSWORD_MAX_LENGTH,
    UserInfo,
    check_password_policy,
    get_user_record,
    normalise_username,
    user_info,
)


class LoginOutcome(StrEnum):
    """Why a login succeeded or failed; the page shows one message for every failure."""

    SUCCESS = "success"
    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"
    LOCKED = "locked"
    DISABLED = "disabled"


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
    record = get_user_record(db, username)
    record.password_hash = password_hash
    record.failed_logins = 0
    record.locked_until = None
    record.must_change_password = False
    db.execute(delete(WebSessionRecord).where(WebSessionRecord.user_id == record.id))
    revoked = revoke_user_api_tokens(db, record.id, now=now)
    db.flush()
    return PasswordChanged(user_info(record), revoked)


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
