"""Devices: list and search, one device's page, labels, and merging a device whose MAC changed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import (
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.queries.devices import (
    get_device,
    label_device,
    list_devices,
    merge_devices,
)
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    PUPIL_TABLET,
    ROUTED_PC,
    SITE,
    STAFF_LAPTOP,
    T0,
    add_device,
    add_embedded,
    add_incident,
    add_observation,
)

NEW_MAC = "aa:bb:cc:99:99:99"


class TestList:
    def test_most_recently_seen_first(self, db: Session) -> None:
        old = add_device(db, device=PUPIL_TABLET, last_seen=T0 - timedelta(days=2))
        new = add_device(db, device=STAFF_LAPTOP, last_seen=T0)
        routed = add_device(db, device=ROUTED_PC, host_name=None, last_seen=T0 - timedelta(days=1))
        page = list_devices(db, None)
        assert [d.id for d in page.items] == [new.id, routed.id, old.id]
        assert page.items[1].mac is None  # unknown, not ''
        assert (page.total, page.pages, page.search) == (3, 1, None)

    @pytest.mark.parametrize(
        ("search", "expected"),
        [("staff-laptop", [STAFF_LAPTOP]), ("00:02", [PUPIL_TABLET]), ("10.9.", [ROUTED_PC]),
         ("library", [PUPIL_TABLET]), ("_", []), ("", [STAFF_LAPTOP, PUPIL_TABLET])],
    )  # fmt: skip
    def test_search(self, db: Session, search: str, expected: list[tuple[str, str | None]]) -> None:
        add_device(db, device=STAFF_LAPTOP)
        add_device(db, device=PUPIL_TABLET, host_name="TAB-7", label="Library iPad", last_seen=T0 - timedelta(hours=1))  # fmt: skip
        add_device(db, device=ROUTED_PC, site=OTHER_SITE, host_name=None)
        page = list_devices(db, SITE if search != "10.9." else OTHER_SITE, search)
        assert [(d.ip, d.mac) for d in page.items] == expected

    def test_pages(self, db: Session) -> None:
        for n in range(5):
            add_device(db, device=(f"10.1.0.{n}", f"aa:bb:cc:00:01:0{n}"), last_seen=T0 - timedelta(hours=n))  # fmt: skip
        page = list_devices(db, None, None, page=2, per_page=2)
        assert [d.ip for d in page.items] == ["10.1.0.2", "10.1.0.3"]
        assert (page.total, page.pages) == (5, 3)


class TestDevicePage:
    def test_counts_addresses_and_last_activity(self, db: Session) -> None:
        device = add_device(db, last_seen=T0 - timedelta(days=1))
        moved = add_device(
            db, device=("10.1.9.9", STAFF_LAPTOP[1]), last_seen=T0 - timedelta(days=2)
        )
        add_incident(db, start=T0 - timedelta(days=3), status="closed", outcome="no_action")
        latest = add_incident(db, start=T0, minutes=45, segment="staff-wifi")
        add_incident(db, device=PUPIL_TABLET, start=T0 + timedelta(days=1))
        detail = get_device(db, device.id)
        assert [a.id for a in detail.addresses] == [moved.id]
        assert (detail.incidents_count, detail.open_incidents) == (2, 1)
        assert detail.last_activity == T0 + timedelta(minutes=45)
        assert detail.segment == "staff-wifi"
        assert [i.id for i in detail.recent][0] == latest.id

    def test_a_device_without_incidents(self, db: Session) -> None:
        device = add_device(db, device=ROUTED_PC, last_seen=T0)
        add_incident(db, device=(ROUTED_PC[0], "aa:bb:cc:00:00:77"))  # another device, same address
        detail = get_device(db, device.id)
        assert (detail.incidents_count, detail.last_activity, detail.segment, detail.recent) == (0, T0, None, ())  # fmt: skip

    def test_site_scope_and_missing(self, db: Session) -> None:
        device = add_device(db, site=OTHER_SITE)
        with pytest.raises(LookupError, match="no device"):
            get_device(db, device.id, SITE)
        with pytest.raises(LookupError, match="no device"):
            get_device(db, 10**9)


class TestLabel:
    def test_labels_every_address_of_the_mac_and_its_incidents(self, db: Session) -> None:
        add_device(db)
        add_device(db, device=("10.1.9.9", STAFF_LAPTOP[1]))
        mine = [add_incident(db), add_incident(db, device=("10.1.9.9", STAFF_LAPTOP[1]))]
        other = add_incident(db, device=PUPIL_TABLET)
        result = label_device(db, "AA:BB:CC:00:00:01", None, "  Ms Smith, room 4 ")
        assert (result.mac, result.label, result.devices, result.incidents) == (STAFF_LAPTOP[1], "Ms Smith, room 4", 2, 2)  # fmt: skip
        assert {i.device_label for i in mine} == {"Ms Smith, room 4"}
        assert other.device_label is None

    def test_labels_an_address_without_mac_only(self, db: Session) -> None:
        add_device(db, device=ROUTED_PC, host_name=None)
        routed = add_incident(db, device=ROUTED_PC)
        same_ip_with_mac = add_incident(db, device=(ROUTED_PC[0], "aa:bb:cc:00:00:77"))
        result = label_device(db, None, ROUTED_PC[0], "Exam hall PC")
        assert (result.devices, result.incidents) == (1, 1)
        assert (routed.device_label, same_ip_with_mac.device_label) == ("Exam hall PC", None)

    def test_a_device_known_only_from_incidents_gets_rows(self, db: Session) -> None:
        add_incident(db, start=T0 - timedelta(days=1))
        add_incident(db, start=T0, device=("10.1.9.9", STAFF_LAPTOP[1]))
        result = label_device(db, STAFF_LAPTOP[1], None, "Ms Smith")
        assert (result.devices, result.incidents) == (2, 2)
        rows = db.scalars(select(DeviceRecord).order_by(DeviceRecord.ip)).all()
        assert [(r.site, r.mac, r.ip, r.label) for r in rows] == [
            (SITE, STAFF_LAPTOP[1], "10.1.4.23", "Ms Smith"),
            (SITE, STAFF_LAPTOP[1], "10.1.9.9", "Ms Smith"),
        ]
        assert rows[0].first_seen == T0 - timedelta(days=1)

    def test_an_empty_label_clears_it(self, db: Session) -> None:
        add_device(db, label="old")
        incident = add_incident(db, label="old")
        label_device(db, STAFF_LAPTOP[1], None, "  ")
        assert incident.device_label is None
        assert db.scalars(select(DeviceRecord.label)).all() == [None]

    def test_scope_unknown_device_and_bad_input(self, db: Session) -> None:
        add_device(db, site=OTHER_SITE)
        with pytest.raises(LookupError, match="nothing is held for device aa:bb:cc:00:00:01"):
            label_device(db, STAFF_LAPTOP[1], None, "x", site_scope=SITE)
        with pytest.raises(ValueError, match="not a MAC address"):
            label_device(db, "laptop", None, "x")
        with pytest.raises(ValueError, match="MAC address or IP address"):
            label_device(db, None, None, "x")


class TestMerge:
    def test_rewrites_every_row_to_the_surviving_mac(self, db: Session) -> None:
        add_device(db, first_seen=T0 - timedelta(days=60), last_seen=T0 - timedelta(days=10), label="Ms Smith")  # fmt: skip
        add_device(db, device=(STAFF_LAPTOP[0], NEW_MAC), host_name="NEW-NAME", first_seen=T0 - timedelta(days=9))  # fmt: skip
        add_device(db, device=("10.1.9.9", STAFF_LAPTOP[1]))
        incidents = [add_incident(db), add_incident(db, start=T0 - timedelta(days=1))]
        add_observation(db, incidents[0])
        add_embedded(db, count=3)
        add_embedded(db, device=(STAFF_LAPTOP[0], NEW_MAC), count=4)
        add_embedded(db, day=date(2026, 3, 9), count=5)
        untouched = add_incident(db, device=PUPIL_TABLET)

        result = merge_devices(db, STAFF_LAPTOP[1], NEW_MAC.upper(), " new motherboard ")

        assert (result.from_mac, result.to_mac, result.reason) == (STAFF_LAPTOP[1], NEW_MAC, "new motherboard")  # fmt: skip
        assert (result.incidents, result.observations, result.embedded_counts, result.devices) == (2, 1, 2, 2)  # fmt: skip
        assert {i.device_mac for i in incidents} == {NEW_MAC}
        assert {i.device_label for i in incidents} == {"Ms Smith"}  # the survivor's label
        assert untouched.device_mac == PUPIL_TABLET[1]
        assert db.scalars(select(ObservationRecord.client_mac)).all() == [NEW_MAC]
        embedded = db.execute(select(EmbeddedCountRecord.day, EmbeddedCountRecord.device_mac, EmbeddedCountRecord.count).order_by(EmbeddedCountRecord.day)).all()  # fmt: skip
        assert [tuple(row) for row in embedded] == [(date(2026, 3, 9), NEW_MAC, 5), (date(2026, 3, 10), NEW_MAC, 7)]  # fmt: skip
        devices = db.scalars(select(DeviceRecord).order_by(DeviceRecord.ip)).all()
        assert [(d.mac, d.ip, d.label, d.host_name) for d in devices] == [
            (NEW_MAC, "10.1.4.23", "Ms Smith", "NEW-NAME"),
            (NEW_MAC, "10.1.9.9", None, "STAFF-LAPTOP-12"),
        ]
        assert devices[0].first_seen == T0 - timedelta(days=60)
        assert devices[0].last_seen == T0

    @pytest.mark.parametrize(
        ("from_mac", "to_mac", "reason", "error", "message"),
        [
            (STAFF_LAPTOP[1], STAFF_LAPTOP[1].upper(), "why", ValueError, "into itself"),
            (STAFF_LAPTOP[1], NEW_MAC, " ", ValueError, "needs a reason"),
            ("laptop", NEW_MAC, "why", ValueError, "not a MAC address"),
            ("aa:bb:cc:00:00:55", NEW_MAC, "why", LookupError, "nothing is held"),
        ],
    )
    def test_refused(self, db: Session, from_mac: str, to_mac: str, reason: str, error: type[Exception], message: str) -> None:  # fmt: skip
        add_incident(db)
        with pytest.raises(error, match=message):
            merge_devices(db, from_mac, to_mac, reason)
        assert db.scalars(select(IncidentRecord.device_mac)).all() == [STAFF_LAPTOP[1]]
