"""Users for the account, password, token and command tests: a cheap hasher, a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import token_hash
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.passwords import LoginPolicy
from monitor.store.users import create_user
from monitor.store.workflow import UserRole

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SLOWER = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POLICY = LoginPolicy(max_failures=3, lockout=timedelta(minutes=15), hasher=FAST)


def add(db: Session, username: str = "head", role: UserRole = UserRole.REVIEWER) -> int:
    user = create_user(db, username, "Mrs Head", role, PASSWORD, hasher=FAST, now=NOW)
    db.commit()
    return user.id


def record(db: Session, username: str) -> UserRecord:
    db.expire_all()
    found = db.scalar(select(UserRecord).where(UserRecord.username == username))
    assert found is not None
    return found


def add_session(db: Session, user_id: int) -> None:
    db.add(
        WebSessionRecord(
            token_hash=token_hash(f"t{user_id}"), user_id=user_id, csrf_token="c",
            created_at=NOW, last_seen_at=NOW,
        )
    )  # fmt: skip
    db.commit()


def session_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(WebSessionRecord)) or 0
