"""The models match the migrated schema, and timestamps are UTC-aware on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from monitor.store.models import Base, DailyCounterRecord, DeviceRecord


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_constraint_names_follow_the_naming_convention(engine: Engine) -> None:
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("incidents")["name"] in ("pk_incidents", None)
    assert {index["name"] for index in inspector.get_indexes("incidents")} >= {
        "ix_incidents_site_start_at",
        "ix_incidents_platform_start_at",
        "ix_incidents_end_at",
    }
    assert [c["name"] for c in inspector.get_unique_constraints("incidents")] == [
        "uq_incidents_key"
    ]
    assert {c["name"] for c in inspector.get_check_constraints("incidents")} == {
        "ck_incidents_state",
        "ck_incidents_status",
    }


def test_daily_counters_hold_no_identities() -> None:
    assert set(DailyCounterRecord.__table__.c.keys()) == {"site", "day", "name", "count"}


def _device(first_seen: datetime) -> DeviceRecord:
    return DeviceRecord(
        site="school", mac="", ip="10.1.4.23", first_seen=first_seen, last_seen=first_seen
    )


def test_timestamps_come_back_as_utc_whatever_zone_went_in(engine: Engine) -> None:
    summer = timezone(timedelta(hours=1))
    with Session(engine) as db, db.begin():
        db.add(_device(datetime(2026, 6, 1, 9, 30, tzinfo=summer)))
    with Session(engine) as db:
        seen = db.scalars(select(DeviceRecord.first_seen)).one()
    assert seen == datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    assert seen.tzinfo == UTC


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with Session(engine) as db, pytest.raises(StatementError, match="naive datetime"):
        db.add(_device(datetime(2026, 6, 1, 9, 30)))  # noqa: DTZ001 - the point of the test
        db.flush()
