"""Audit rows are appended in the caller's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.store.audit import USERNAME_MAX_LENGTH, AuditAction, NamedActor, record_event
from monitor.store.models import AuditEventRecord

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def rows(engine: Engine) -> list[AuditEventRecord]:
    with Session(engine) as db:
        return list(db.scalars(select(AuditEventRecord).order_by(AuditEventRecord.id)))


def test_record_event_writes_every_column(engine: Engine, db: Session) -> None:
    record_event(
        db,
        user=NamedActor(7, "head"),
        action=AuditAction.VIEW_INCIDENT,
        target_type="incident",
        target_id=42,
        detail={"from": "queue", "filters": ["instagram"]},
        address="10.1.0.5",
        at=AT,
    )
    db.commit()
    [row] = rows(engine)
    assert (row.at, row.user_id, row.username, row.action) == (AT, 7, "head", "view_incident")
    assert (row.target_type, row.target_id, row.address) == ("incident", "42", "10.1.0.5")
    assert row.detail == {"from": "queue", "filters": ["instagram"]}


def test_record_event_without_a_user_or_target(engine: Engine, db: Session) -> None:
    record_event(
        db, user=None, action="purge", target_type=None, target_id=None, detail=None, address=None
    )
    db.commit()
    [row] = rows(engine)
    assert (row.user_id, row.username, row.target_id, row.detail) == (None, None, None, {})
    assert row.at.tzinfo is not None


def test_record_event_belongs_to_the_callers_transaction(engine: Engine, db: Session) -> None:
    record_event(
        db, user=NamedActor(None, "x"), action=AuditAction.LOGIN_FAILED,
        target_type=None, target_id=None, detail={}, address=None,
    )  # fmt: skip
    db.rollback()
    assert rows(engine) == []


def test_a_long_typed_username_is_cut(engine: Engine, db: Session) -> None:
    record_event(
        db, user=NamedActor(None, "a" * 1000), action=AuditAction.LOGIN_FAILED,
        target_type=None, target_id=None, detail={}, address=None,
    )  # fmt: skip
    db.commit()
    [row] = rows(engine)
    assert row.username == "a" * USERNAME_MAX_LENGTH


def test_each_call_appends_exactly_one_row(engine: Engine, db: Session) -> None:
    for action in (AuditAction.LOGIN, AuditAction.VIEW_DEVICE, AuditAction.LOGOUT):
        record_event(
            db, user=NamedActor(1, "head"), action=action, target_type=None, target_id=None,
            detail={}, address="10.0.0.1",
        )  # fmt: skip
    db.commit()
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(AuditEventRecord)) == 3
    assert [r.action for r in rows(engine)] == ["login", "view_device", "logout"]
