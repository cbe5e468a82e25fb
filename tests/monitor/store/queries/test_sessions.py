"""Browser sessions: only the token's hash is stored; an idle, too old or disabled user's
session is refused and its row deleted; ``last_seen_at`` moves on at most once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import token_hash
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.queries.sessions import (
    SESSION_TOUCH_INTERVAL,
    add_session,
    delete_session,
    live_session,
)
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.monitor.store.queries.factories import T0

IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def user_id(db: Session) -> int:
    user = create_user(
        db, "head", "Head", UserRole.REVIEWER, "a long password", hasher=CHEAP, now=T0
    )
    add_session(db, "the-token", "the-csrf", user.id, T0, "10.0.0.9")
    db.flush()
    return user.id


def sessions(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(WebSessionRecord)) or 0


def test_a_session_is_found_by_its_token_and_stored_by_its_hash(db: Session, user_id: int) -> None:
    found = live_session(db, "the-token", T0 + timedelta(minutes=5), idle=IDLE, max_age=MAX_AGE)
    assert found is not None and (found.user.id, found.csrf_token) == (user_id, "the-csrf")
    assert db.scalars(select(WebSessionRecord.token_hash)).all() == [token_hash("the-token")]
    assert live_session(db, "another-token", T0, idle=IDLE, max_age=MAX_AGE) is None


@pytest.mark.parametrize(
    "later", [IDLE + timedelta(seconds=1), MAX_AGE + timedelta(seconds=1)], ids=["idle", "old"]
)
def test_an_expired_session_is_refused_and_deleted(
    db: Session, user_id: int, later: timedelta
) -> None:
    if later > IDLE * 2:  # keep the session in use, so that only its age ends it
        for minutes in range(0, int(later.total_seconds() // 60), 20):
            live_session(
                db, "the-token", T0 + timedelta(minutes=minutes), idle=IDLE, max_age=MAX_AGE
            )
    assert live_session(db, "the-token", T0 + later, idle=IDLE, max_age=MAX_AGE) is None
    assert sessions(db) == 0


def test_a_disabled_users_session_is_refused(db: Session, user_id: int) -> None:
    record = db.get(UserRecord, user_id)
    assert record is not None
    record.disabled = True
    assert live_session(db, "the-token", T0, idle=IDLE, max_age=MAX_AGE) is None
    assert sessions(db) == 0


def test_last_seen_moves_on_at_most_once_a_minute(db: Session, user_id: int) -> None:
    soon = T0 + SESSION_TOUCH_INTERVAL - timedelta(seconds=1)
    live_session(db, "the-token", soon, idle=IDLE, max_age=MAX_AGE)
    assert db.scalar(select(WebSessionRecord.last_seen_at)) == T0
    later = T0 + SESSION_TOUCH_INTERVAL
    live_session(db, "the-token", later, idle=IDLE, max_age=MAX_AGE)
    assert db.scalar(select(WebSessionRecord.last_seen_at)) == later


def test_a_session_ends_when_deleted(db: Session, user_id: int) -> None:
    delete_session(db, "the-token")
    assert live_session(db, "the-token", T0, idle=IDLE, max_age=MAX_AGE) is None
