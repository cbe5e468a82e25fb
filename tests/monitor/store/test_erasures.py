"""The erasure signal: the writer never stores what an erased device did before its erasure,
and the capture's poll hands each erasure over once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.devices import identity_digest
from monitor.records import DeviceSeen, EmbeddedCountRow
from monitor.store.audit import NamedActor
from monitor.store.erasures import ErasureWatch
from monitor.store.models import (
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.queries.exports import erase_device
from monitor.values import Device
from tests.monitor.store.factories import SITE, T0, make_incident, make_observation, utc
from tests.monitor.store.test_items import apply

MAC, IP = "aa:bb:cc:00:00:01", "10.1.4.23"
ERASED_AT = T0 + 600


def erase(engine: Engine, mac_or_ip: str, at: float = ERASED_AT, site: str = SITE) -> None:
    with Session(engine) as db:
        erase_device(db, mac_or_ip, site, user=NamedActor(None, "cli:it"), reason="asked",
                     address=None, at=utc(at))  # fmt: skip
        db.commit()


def count(engine: Engine, model: type) -> int:
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def test_the_writer_refuses_what_an_erased_device_did_before_its_erasure(engine: Engine) -> None:
    erase(engine, MAC)
    before, after = T0 + 60, ERASED_AT + 60
    apply(
        engine,
        [
            make_incident("old", start=before, hit_count=3),
            make_observation(before, incident_key="old"),
            DeviceSeen(SITE, MAC, IP, "room4-laptop", before),
            EmbeddedCountRow(SITE, utc(before).date(), IP, MAC, "facebook", 2),
        ],
        [make_incident("new", start=after), make_observation(after, incident_key="new")],
    )
    with Session(engine) as db:
        assert list(db.scalars(select(IncidentRecord.key))) == ["new"]
        assert [utc(after)] == list(db.scalars(select(ObservationRecord.ts)))
    assert count(engine, DeviceRecord) == count(engine, EmbeddedCountRecord) == 0


def test_an_erased_mac_leaves_other_devices_and_other_sites_alone(engine: Engine) -> None:
    erase(engine, MAC)
    other = Device("10.1.4.24", "aa:bb:cc:00:00:02", None, "staff")
    apply(engine, [make_incident("other", device=other), EmbeddedCountRow("annex", date(2026, 3, 10), IP, MAC, "x", 1)])  # fmt: skip
    assert count(engine, IncidentRecord) == count(engine, EmbeddedCountRecord) == 1


def test_an_erased_address_refuses_every_device_seen_at_it_before(engine: Engine) -> None:
    erase(engine, IP)
    apply(engine, [make_incident("k1"), make_observation(T0)])
    assert count(engine, IncidentRecord) == count(engine, ObservationRecord) == 0


def test_the_watch_hands_each_erasure_over_once(engine: Engine) -> None:
    watch = ErasureWatch(engine, SITE)
    assert watch.poll() == []
    apply(engine, [make_observation(T0)])
    erase(engine, MAC)
    first = watch.poll()
    assert {erasure.digest for erasure in first} == {identity_digest(MAC), identity_digest(IP)}
    assert {erasure.every_device for erasure in first} == {False}
    assert all(erasure.at == ERASED_AT for erasure in first)
    assert watch.poll() == []
    erase(engine, MAC, site="annex")
    assert watch.poll() == []
