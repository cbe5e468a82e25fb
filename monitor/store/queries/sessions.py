"""The review app's browser sessions: the rows behind the ``hm_session`` cookie.

``web_sessions`` keeps only the SHA-256 of a session's token (``token_hash``), its CSRF token
and when it was created and last used. The web app (``api/auth.py``) makes the tokens and sets
the cookie; the rows are read and written here, in the caller's transaction (the caller
commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import token_hash
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.users import UserInfo, user_info

SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
"""``last_seen_at`` is written at most this often, not on every request."""
TOKEN_MAX_LENGTH = 200
"""A longer cookie value is no token of ours: refused without a query."""


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session that may still be used: its user and the CSRF token its forms send back."""

    user: UserInfo
    csrf_token: str


def add_session(
    db: Session, token: str, csrf_token: str, user_id: int, now: datetime, address: str | None
) -> None:
    """Store a new session of ``user_id`` (only the token's hash)."""
    db.add(
        WebSessionRecord(
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
            address=address,
        )
    )


def live_session(
    db: Session, token: str, now: datetime, *, idle: timedelta, max_age: timedelta
) -> LiveSession | None:
    """The session of a cookie token, or None; an expired session's row is deleted.

    Refused: an unknown token, a session unused for longer than ``idle``, older than
    ``max_age``, or of a disabled user. ``last_seen_at`` moves on at most once a
    ``SESSION_TOUCH_INTERVAL``.
    """
    if len(token) > TOKEN_MAX_LENGTH:
        return None
    row = db.execute(
        select(WebSessionRecord, UserRecord)
        .join(UserRecord, UserRecord.id == WebSessionRecord.user_id)
        .where(WebSessionRecord.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    record, user = row
    unused = now - record.last_seen_at
    if user.disabled or unused > idle or now - record.created_at > max_age:
        db.delete(record)
        return None
    if unused >= SESSION_TOUCH_INTERVAL:
        record.last_seen_at = now
    return LiveSession(user_info(user), record.csrf_token)


def delete_session(db: Session, token: str) -> None:
    """Delete the session of this cookie token."""
    db.execute(delete(WebSessionRecord).where(WebSessionRecord.token_hash == token_hash(token)))
