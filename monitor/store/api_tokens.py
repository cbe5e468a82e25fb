"""API tokens: bearer tokens that act for their owner, within the owner's school.

A token (``hm_`` followed by 43 URL-safe characters) is shown once at creation; the table keeps
its SHA-256 (``token_hash``, also what the web app keeps of a session token).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.store.models import ApiTokenRecord, UserRecord
from monitor.store.users import UserInfo, current_time, user_info

API_TOKEN_PREFIX = "hm_"


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


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a session or API token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
            created_at=current_time(now),
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
        record.revoked_at = current_time(now)
        db.flush()


def revoke_user_api_tokens(db: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Revoke every live API token of a user (the records stay); how many were live."""
    result = db.execute(
        update(ApiTokenRecord)
        .where(ApiTokenRecord.user_id == user_id, ApiTokenRecord.revoked_at.is_(None))
        .values(revoked_at=current_time(now))
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
