"""Items encode to tagged JSON and apply idempotently, in any order, on both backends."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from monitor.confidence import basis_from_evidence
from monitor.records import CounterIncrement, DeviceSeen, EmbeddedCountRow
from monitor.sessions import build_incident_key
from monitor.store.items import WriterItem, apply_records, decode_item, encode_item
from monitor.store.models import (
    DailyCounterRecord,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.spool import SpoolRecord
from monitor.values import Device, IncidentState
from tests.monitor.store.factories import SITE, T0, make_incident, make_observation, utc

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def apply(engine: Engine, *batches: list[WriterItem], record_id: str | None = None) -> int:
    """Apply each batch as one record in its own transaction, like the writer does."""
    applied = 0
    for number, batch in enumerate(batches):
        record = SpoolRecord(
            record_id or f"batch-{number}-{uuid.uuid4().hex}", [encode_item(i) for i in batch]
        )
        with engine.begin() as connection:
            count, bad = apply_records(connection, [record], now=NOW, skip_applied=True)
        assert bad == []
        applied += count
    return applied


def incident_rows(engine: Engine) -> list[IncidentRecord]:
    with Session(engine) as db:
        return list(db.scalars(select(IncidentRecord).order_by(IncidentRecord.key)))


class TestEncoding:
    @pytest.mark.parametrize(
        "item",
        [
            make_incident(hit_count=3),
            make_observation(T0),
            CounterIncrement(SITE, DAY, "observations.dns", 7),
            EmbeddedCountRow(SITE, DAY, "10.1.4.23", None, "facebook", 3),
            DeviceSeen(SITE, None, "10.1.4.23", "room4-laptop", T0),
        ],
        ids=["incident", "observation", "counter", "embedded", "device"],
    )
    def test_encode_item_is_json_tagged_with_type_and_version(self, item: WriterItem) -> None:
        encoded = json.loads(json.dumps(encode_item(item)))
        kind, params = decode_item(encoded)
        assert (encoded["t"], encoded["v"]) == (kind, 1)
        assert all(
            value is None or not isinstance(value, float) or value < 1e9
            for k, value in params.items()
            if k != "ts"
        )

    def test_decode_item_turns_times_into_utc_datetimes_and_days_into_dates(self) -> None:
        _, incident = decode_item(encode_item(make_incident(hit_count=2)))
        assert (incident["start_at"], incident["end_at"]) == (utc(T0), utc(T0 + 30))
        _, counter = decode_item(encode_item(CounterIncrement(SITE, DAY, "x", 1)))
        assert counter["day"] == DAY

    def test_an_incident_spooled_before_it_had_a_basis_gets_one_from_its_evidence(self) -> None:
        encoded = encode_item(make_incident(hit_count=2))
        for name in ("connections", "lookups", "attribution"):
            del encoded[name]
        _, incident = decode_item(encoded)
        estimate = basis_from_evidence(encoded["evidence"])
        assert (incident["connections"], incident["lookups"], incident["attribution"]) == (
            estimate.connections,
            estimate.lookups,
            estimate.attribution.value,
        )

    def test_unknown_macs_are_stored_as_empty_strings_in_keys(self) -> None:
        encoded = encode_item(EmbeddedCountRow(SITE, DAY, "10.1.4.23", None, "x", 1))
        assert encoded["device_mac"] == ""

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"t": "gossip"}, "unknown item type 'gossip'"),
            ({"v": 2}, "counter item version 2, expected 1"),
            ({"day": "Tuesday"}, "counter item: bad day 'Tuesday'"),
            ({"name": None, "count": None}, None),
        ],
    )
    def test_decode_item_rejects_what_it_cannot_read(
        self, change: dict[str, Any], message: str | None
    ) -> None:
        encoded = {**encode_item(CounterIncrement(SITE, DAY, "x", 1)), **change}
        if message is None:
            del encoded["name"], encoded["count"]
            message = "counter item without name, count"
        with pytest.raises(ValueError, match=message):
            decode_item(encoded)

    def test_decode_item_rejects_a_bad_timestamp(self) -> None:
        encoded = {**encode_item(make_incident()), "start_at": "soon"}
        with pytest.raises(ValueError, match="incident item: bad start_at 'soon'"):
            decode_item(encoded)


class TestIncidents:
    def test_snapshots_upsert_one_row_per_key(self, engine: Engine) -> None:
        apply(engine, [make_incident(hit_count=1)], [make_incident(hit_count=4)])
        apply(engine, [make_incident(hit_count=9, state=IncidentState.CLOSED)])
        (row,) = incident_rows(engine)
        assert (row.key, row.hit_count, row.state, row.status) == ("k1", 9, "closed", "new")
        assert (row.start_at, row.end_at) == (utc(T0), utc(T0 + 240))
        assert row.evidence[0] == {
            "ts": T0,
            "proto": "tls",
            "name": "www.instagram.com",
            "via": "name",
        }
        assert (row.device_ip, row.device_mac, row.device_segment, row.role) == (
            "10.1.4.23", "aa:bb:cc:00:00:01", "staff", "staff",
        )  # fmt: skip

    def test_an_older_snapshot_never_overwrites_a_newer_one(self, engine: Engine) -> None:
        closed = make_incident(hit_count=5, state=IncidentState.CLOSED)
        apply(engine, [closed], [make_incident(hit_count=5)], [make_incident(hit_count=2)])
        (row,) = incident_rows(engine)
        assert (row.hit_count, row.state) == (5, "closed")

    def test_snapshots_of_one_key_in_one_batch_keep_the_newest(self, engine: Engine) -> None:
        apply(
            engine,
            [make_incident(hit_count=3), make_incident(hit_count=7), make_incident(hit_count=2)],
        )
        (row,) = incident_rows(engine)
        assert row.hit_count == 7

    def test_the_device_label_is_frozen_in_from_the_devices_table(self, engine: Engine) -> None:
        apply(engine, [DeviceSeen(SITE, "aa:bb:cc:00:00:01", "10.1.4.23", None, T0)])
        with engine.begin() as connection:
            connection.execute(update(DeviceRecord).values(label="Room 4 staff laptop"))
        apply(engine, [make_incident()])
        with engine.begin() as connection:
            connection.execute(update(DeviceRecord).values(label="relabelled later"))
        apply(engine, [make_incident(hit_count=2)])
        assert incident_rows(engine)[0].device_label == "Room 4 staff laptop"

    def test_a_device_without_a_mac_gets_its_label_by_address(self, engine: Engine) -> None:
        apply(engine, [DeviceSeen(SITE, None, "10.9.0.5", None, T0)])
        with engine.begin() as connection:
            connection.execute(update(DeviceRecord).values(label="library PC 5"))
        apply(engine, [make_incident(device=Device("10.9.0.5"))])
        assert incident_rows(engine)[0].device_label == "library PC 5"


def decide(engine: Engine, key: str, status: str = "closed") -> None:
    """What the review app does: change the review status (the writer must respect it)."""
    outcome = "informal_conversation" if status == "closed" else None
    with engine.begin() as connection:
        connection.execute(
            update(IncidentRecord)
            .where(IncidentRecord.key == key)
            .values(status=status, outcome=outcome)
        )


def summary(row: IncidentRecord) -> tuple[object, ...]:
    return (row.key, row.status, row.state, row.start_at, row.end_at, row.hit_count,
            row.active_minutes)  # fmt: skip


class TestDecidedIncidents:
    """Once in review or closed, an incident stays as decided; later hits continue it."""

    @pytest.mark.parametrize("status", ["in_review", "closed"])
    def test_a_decided_incident_is_never_grown_and_later_hits_go_to_a_linked_continuation(
        self, engine: Engine, status: str
    ) -> None:
        apply(engine, [make_incident(hit_count=3)])
        decide(engine, "k1", status)
        (decided,) = incident_rows(engine)
        before = summary(decided)
        apply(engine, [make_incident(hit_count=5)])
        first, continuation = incident_rows(engine)
        assert summary(first) == (*before[:2], "closed", *before[3:])
        assert first.outcome == ("informal_conversation" if status == "closed" else None)
        assert continuation.key == "k1.1"
        assert (continuation.continues_id, continuation.source_key) == (first.id, "k1")
        assert (continuation.status, continuation.state) == ("new", "open")
        assert continuation.hit_count == 2
        assert (continuation.start_at, continuation.end_at) == (utc(T0 + 90), utc(T0 + 120))
        assert [item["ts"] for item in continuation.evidence] == [T0 + 90, T0 + 120]

    def test_a_continuation_grows_until_it_is_decided_then_a_second_one_follows(
        self, engine: Engine
    ) -> None:
        apply(engine, [make_incident(hit_count=2)])
        decide(engine, "k1")
        apply(engine, [make_incident(hit_count=4)], [make_incident(hit_count=5)])
        assert [row.hit_count for row in incident_rows(engine)] == [2, 3]
        decide(engine, "k1.1", "in_review")
        apply(engine, [make_incident(hit_count=9, state=IncidentState.CLOSED)])
        first, second, third = incident_rows(engine)
        assert [row.hit_count for row in (first, second, third)] == [2, 3, 4]
        assert third.key == "k1.2" and third.continues_id == second.id
        assert [row.state for row in (first, second, third)] == ["closed"] * 3
        assert third.start_at == utc(T0 + 240)

    def test_a_reopened_incident_is_back_in_review_and_still_does_not_grow(
        self, engine: Engine
    ) -> None:
        apply(engine, [make_incident(hit_count=3)])
        decide(engine, "k1", "closed")
        apply(engine, [make_incident(hit_count=4)])
        decide(engine, "k1", "in_review")
        apply(engine, [make_incident(hit_count=6)])
        first, continuation = incident_rows(engine)
        assert (first.status, first.hit_count, first.end_at) == ("in_review", 3, utc(T0 + 60))
        assert (continuation.key, continuation.hit_count) == ("k1.1", 3)

    def test_replaying_snapshots_after_a_decision_changes_nothing(self, engine: Engine) -> None:
        apply(engine, [make_incident(hit_count=3)])
        decide(engine, "k1")
        later: list[WriterItem] = [
            make_incident(hit_count=2),
            make_incident(hit_count=3),
            make_incident(hit_count=6),
        ]
        apply(engine, later)
        once = [summary(row) for row in incident_rows(engine)]
        apply(engine, later, [make_incident(hit_count=4)])
        assert [summary(row) for row in incident_rows(engine)] == once
        assert len(once) == 2

    def test_the_activity_ending_without_more_hits_only_closes_the_decided_incident(
        self, engine: Engine
    ) -> None:
        apply(engine, [make_incident(hit_count=3)])
        decide(engine, "k1", "in_review")
        (row,) = incident_rows(engine)
        before = summary(row)
        apply(engine, [make_incident(hit_count=3, state=IncidentState.CLOSED)])
        (row,) = incident_rows(engine)
        assert summary(row) == (*before[:2], "closed", *before[3:])


class TestCountsAndDevices:
    def test_counters_add_up_across_items_and_batches(self, engine: Engine) -> None:
        dns = CounterIncrement(SITE, DAY, "observations.dns", 2)
        apply(engine, [dns, dns, CounterIncrement(SITE, DAY, "matches.outside_hours", 1)], [dns])
        with Session(engine) as db:
            rows = db.execute(select(DailyCounterRecord.name, DailyCounterRecord.count))
            counts = dict(rows.all())
        assert counts == {"observations.dns": 6, "matches.outside_hours": 1}

    def test_a_replayed_record_is_applied_once(self, engine: Engine) -> None:
        batch: list[WriterItem] = [
            CounterIncrement(SITE, DAY, "observations.dns", 5),
            make_observation(T0),
        ]
        assert apply(engine, batch, record_id="same-id") == 2
        assert apply(engine, batch, record_id="same-id") == 0
        with Session(engine) as db:
            assert db.scalars(select(DailyCounterRecord.count)).one() == 5
            assert len(db.scalars(select(ObservationRecord.id)).all()) == 1

    def test_embedded_counts_add_per_device_platform_and_day(self, engine: Engine) -> None:
        row = EmbeddedCountRow(SITE, DAY, "10.1.4.23", None, "facebook", 3)
        apply(
            engine,
            [row, row],
            [EmbeddedCountRow(SITE, DAY, "10.1.4.23", "aa:bb:cc:00:00:01", "facebook", 1)],
        )
        with Session(engine) as db:
            rows = db.execute(
                select(EmbeddedCountRecord.device_mac, EmbeddedCountRecord.count).order_by(
                    EmbeddedCountRecord.device_mac
                )
            ).all()
        assert [tuple(row) for row in rows] == [("", 6), ("aa:bb:cc:00:00:01", 1)]

    def test_devices_keep_first_and_last_seen_and_the_latest_host_name(
        self, engine: Engine
    ) -> None:
        mac = "aa:bb:cc:00:00:01"
        apply(
            engine,
            [
                DeviceSeen(SITE, mac, "10.1.4.23", "old-name", T0 + 60),
                DeviceSeen(SITE, mac, "10.1.4.23", None, T0 + 120),
            ],
            [DeviceSeen(SITE, mac, "10.1.4.23", "new-name", T0 + 300)],
            [DeviceSeen(SITE, mac, "10.1.4.23", "stale-name", T0)],
        )
        with Session(engine) as db:
            device = db.scalars(select(DeviceRecord)).one()
        assert (device.first_seen, device.last_seen, device.host_name) == (
            utc(T0),
            utc(T0 + 300),
            "new-name",
        )

    def test_observations_are_stored_with_their_match(self, engine: Engine) -> None:
        apply(engine, [make_observation(T0), make_observation(T0 + 1, incident_key=None)])
        with Session(engine) as db:
            rows = db.scalars(select(ObservationRecord).order_by(ObservationRecord.id)).all()
        assert [
            (r.ts, r.name, r.platform, r.presence, r.via, r.flags, r.incident_key) for r in rows
        ] == [
            (utc(T0), "www.instagram.com", "instagram", "primary", "name", "", "k1"),
            (utc(T0 + 1), "www.instagram.com", "instagram", "primary", "name", "", None),
        ]

    def test_undecodable_items_are_returned_not_applied(self, engine: Engine) -> None:
        good = encode_item(CounterIncrement(SITE, DAY, "x", 1))
        record = SpoolRecord("r1", [good, {"t": "gossip", "v": 1}])
        with engine.begin() as connection:
            count, bad = apply_records(connection, [record], now=NOW, skip_applied=False)
        assert count == 1
        assert bad == [({"t": "gossip", "v": 1}, "unknown item type 'gossip'")]


class TestSites:
    """A trust's sensors share one database, and its schools the same private addresses."""

    def test_two_sites_seeing_the_same_device_at_the_same_time_keep_their_own_rows(
        self, engine: Engine
    ) -> None:
        ip, mac = "10.1.4.23", "aa:bb:cc:00:00:01"
        batches: list[list[WriterItem]] = []
        for site in ("north", "south"):
            key = build_incident_key(site, mac, "instagram", T0)
            batches.append([
                replace(make_incident(key, hit_count=2), site=site),
                replace(make_observation(T0, incident_key=key), site=site),
                CounterIncrement(site, DAY, "observations.dns", 3),
                EmbeddedCountRow(site, DAY, ip, mac, "facebook", 2),
                DeviceSeen(site, mac, ip, f"{site}-laptop", T0),
            ])  # fmt: skip
        apply(engine, *batches)
        with Session(engine) as db:
            incidents = db.execute(select(IncidentRecord.site, IncidentRecord.hit_count)).all()
            observations = db.scalars(select(ObservationRecord.site)).all()
            counters = db.execute(select(DailyCounterRecord.site, DailyCounterRecord.count)).all()
            embedded = db.execute(select(EmbeddedCountRecord.site, EmbeddedCountRecord.count)).all()
            devices = db.execute(select(DeviceRecord.site, DeviceRecord.host_name)).all()
        assert sorted(map(tuple, incidents)) == [("north", 2), ("south", 2)]
        assert sorted(observations) == ["north", "south"]
        assert sorted(map(tuple, counters)) == [("north", 3), ("south", 3)]
        assert sorted(map(tuple, embedded)) == [("north", 2), ("south", 2)]
        assert sorted(map(tuple, devices)) == [("north", "north-laptop"), ("south", "south-laptop")]

    def test_a_sites_incident_label_comes_from_its_own_sites_device(self, engine: Engine) -> None:
        ip, mac = "10.1.4.23", "aa:bb:cc:00:00:01"
        apply(engine, [DeviceSeen(site, mac, ip, None, T0) for site in ("north", "south")])
        with engine.begin() as connection:
            connection.execute(
                update(DeviceRecord)
                .where(DeviceRecord.site == "north")
                .values(label="Head's laptop")
            )
        south_key = build_incident_key("south", mac, "instagram", T0)
        apply(engine, [replace(make_incident(south_key), site="south")])
        (row,) = incident_rows(engine)
        assert (row.site, row.device_label) == ("south", None)
