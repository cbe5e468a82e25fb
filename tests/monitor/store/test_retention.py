"""Purge deletes exactly what the retention policy says, per record type, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from monitor.errors import SchemaNotCurrent
from monitor.store.models import (
    AppliedBatchRecord,
    DailyCounterRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.retention import PurgeResult, purge, run_purge

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
POLICY: dict[str, Any] = {"observations_days": 30, "incidents_days": 365, "false_positive_days": 30}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def incident(
    key: str, *, ended_days_ago: float, state: str = "closed", outcome: str | None = None
) -> IncidentRecord:
    end = days_ago(ended_days_ago)
    return IncidentRecord(
        key=key, site="school", platform="instagram", category="social", device_ip="10.1.4.23",
        start_at=end - timedelta(minutes=20), end_at=end, active_minutes=20, confidence=0.9,
        hit_count=12, state=state, evidence=[], outcome=outcome, created_at=end, updated_at=end,
    )  # fmt: skip


def observation(ts: datetime) -> ObservationRecord:
    return ObservationRecord(
        site="school", ts=ts, proto="dns", name="www.instagram.com", client_ip="10.1.4.23",
        server_ip="10.1.0.1", server_port=53, flags="", platform="instagram",
        presence="primary", via="name",
    )  # fmt: skip


@pytest.fixture
def populated(engine: Engine) -> Engine:
    with Session(engine) as db, db.begin():
        db.add_all([observation(days_ago(d)) for d in (0, 29.9, 30.1, 200)])
        db.add_all(
            [
                incident("recent", ended_days_ago=10),
                incident("last-year", ended_days_ago=364),
                incident("too-old", ended_days_ago=366),
                incident("still-open", ended_days_ago=400, state="open"),
                incident("fp-recent", ended_days_ago=29, outcome="false_positive"),
                incident("fp-old", ended_days_ago=31, outcome="false_positive"),
                incident("confirmed-old", ended_days_ago=31, outcome="confirmed"),
            ]
        )
        for day in (date(2026, 11, 23), date(2025, 11, 25), date(2025, 11, 23)):
            db.add(DailyCounterRecord(site="school", day=day, name="observations.dns", count=5))
            db.add(
                EmbeddedCountRecord(site="school", day=day, device_ip="10.1.4.23", device_mac="", platform="facebook", count=2)
            )  # fmt: skip
        db.add(AppliedBatchRecord(id="old", applied_at=days_ago(31)))
        db.add(AppliedBatchRecord(id="new", applied_at=days_ago(1)))
    return engine


def test_purge_deletes_exactly_what_the_policy_says(populated: Engine) -> None:
    with Session(populated) as db, db.begin():
        result = purge(db, NOW, **POLICY)
    assert result == PurgeResult(
        observations=2, incidents=1, false_positives=1, daily_counters=1, embedded_counts=1, applied_batches=1
    )  # fmt: skip
    with Session(populated) as db:
        keys = set(db.scalars(select(IncidentRecord.key)))
        observed = sorted(db.scalars(select(ObservationRecord.ts)))
        counter_days = sorted(db.scalars(select(DailyCounterRecord.day)))
        embedded_days = sorted(db.scalars(select(EmbeddedCountRecord.day)))
        batch_ids = set(db.scalars(select(AppliedBatchRecord.id)))
    assert keys == {"recent", "last-year", "still-open", "fp-recent", "confirmed-old"}
    assert observed == [days_ago(29.9), days_ago(0)]
    assert counter_days == embedded_days == [date(2025, 11, 25), date(2026, 11, 23)]
    assert batch_ids == {"new"}


def test_purge_twice_deletes_nothing_more(populated: Engine) -> None:
    with Session(populated) as db, db.begin():
        purge(db, NOW, **POLICY)
    with Session(populated) as db, db.begin():
        assert purge(db, NOW, **POLICY) == PurgeResult(0, 0, 0, 0, 0, 0)


def test_purge_given_an_engine_commits_its_own_transaction(populated: Engine) -> None:
    assert str(purge(populated, NOW, **POLICY)).startswith("purged 2 observations, 1 incidents")
    with Session(populated) as db:
        assert len(db.scalars(select(ObservationRecord.id)).all()) == 2


def add_expired_rows_at(engine: Engine, site: str) -> None:
    """One expired row of each kind that has a site."""
    old_incident, old_observation = incident(f"{site}-too-old", ended_days_ago=366), observation(days_ago(200))  # fmt: skip
    old_incident.site = old_observation.site = site
    with Session(engine) as db, db.begin():
        db.add_all([
            old_incident, old_observation,
            DailyCounterRecord(site=site, day=date(2025, 11, 23), name="observations.dns", count=5),
            EmbeddedCountRecord(site=site, day=date(2025, 11, 23), device_ip="10.1.4.23", device_mac="", platform="facebook", count=2),
        ])  # fmt: skip


def test_a_sensor_purges_only_its_own_site(populated: Engine) -> None:
    """A trust's schools share the database: one school's retention never deletes another's."""
    add_expired_rows_at(populated, "annex")
    result = purge(populated, NOW, **POLICY, site="school")
    assert result == PurgeResult(2, 1, 1, 1, 1, 1)
    with Session(populated) as db:
        sites = {
            model.__tablename__: sorted(db.scalars(select(model.site)))
            for model in (
                IncidentRecord,
                ObservationRecord,
                DailyCounterRecord,
                EmbeddedCountRecord,
            )
        }
    assert {name: rows.count("annex") for name, rows in sites.items()} == dict.fromkeys(sites, 1)


def test_a_purge_of_every_site_deletes_every_sites_expired_rows(populated: Engine) -> None:
    add_expired_rows_at(populated, "annex")
    assert purge(populated, NOW, **POLICY) == PurgeResult(3, 2, 1, 2, 2, 1)


def test_purge_refuses_a_naive_now_and_zero_days(engine: Engine) -> None:
    with Session(engine) as db:
        with pytest.raises(ValueError, match="timezone-aware"):
            purge(db, NOW.replace(tzinfo=None), **POLICY)
        with pytest.raises(
            ValueError, match="observations_days is 0: retention must be at least 1 day"
        ):
            purge(db, NOW, **{**POLICY, "observations_days": 0})


def test_run_purge_commits_and_summarises(populated: Engine) -> None:
    url = populated.url.render_as_string(hide_password=False)
    line = run_purge(url, NOW, **POLICY, site="school")
    assert "(site 'school')" in line
    assert line.endswith(
        "purged 2 observations, 1 incidents, 1 false positives, 1 daily counters, 1 embedded counts"
    )
    with Session(populated) as db:
        assert len(db.scalars(select(IncidentRecord.key)).all()) == 5


def test_run_purge_refuses_an_unmigrated_database(tmp_path) -> None:
    with pytest.raises(SchemaNotCurrent, match="hallmonitor db upgrade"):
        run_purge(f"sqlite:///{tmp_path / 'empty.sqlite3'}", NOW, **POLICY, site=None)


def test_run_purge_of_another_site_leaves_this_one(populated: Engine) -> None:
    url = populated.url.render_as_string(hide_password=False)
    line = run_purge(url, NOW, **POLICY, site="annex")
    assert "(site 'annex')" in line
    assert line.endswith(
        "purged 0 observations, 0 incidents, 0 false positives, 0 daily counters, 0 embedded counts"
    )
