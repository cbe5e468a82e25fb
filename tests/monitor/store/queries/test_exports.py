"""CSV of the queue (safe in a spreadsheet), subject-access export and erasure of one device."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.devices import identity_digest
from monitor.store.audit import AuditAction, NamedActor, record_event
from monitor.store.models import (
    AuditEventRecord,
    DeviceRecord,
    EmbeddedCountRecord,
    ErasureRecord,
    IncidentRecord,
    IncidentReviewRecord,
    ObservationRecord,
)
from monitor.store.queries.exports import (
    EXPLANATION_CSV_COLUMNS,
    INCIDENT_CSV_COLUMNS,
    ErasureResult,
    csv_safe,
    erase_device,
    export_device_records,
    incidents_csv,
)
from monitor.store.queries.incidents import IncidentFilters
from tests.monitor.store.queries.factories import (
    LONDON,
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
    add_review,
    rows_naming,
)

ADMIN = NamedActor(1, "admin")


def parse(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


@pytest.mark.parametrize(
    ("text", "safe"),
    [("=1+1", "'=1+1"), ("+44", "'+44"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ms Smith", "Ms Smith"), ("", ""), ("a=b", "a=b")],
)  # fmt: skip
def test_csv_safe_prefixes_formulas(text: str, safe: str) -> None:
    assert csv_safe(text) == safe
    assert csv_safe(-2) == -2  # numbers we wrote are left alone


class TestIncidentsCsv:
    def test_header_and_rows_newest_first(self, db: Session) -> None:
        older = add_incident(db, start=T0 - timedelta(days=1), status="closed", outcome="no_action")
        newer = add_incident(db, start=T0, label="Ms Smith")
        rows = parse(list(incidents_csv(db, IncidentFilters(), None)))
        assert rows[0] == [*INCIDENT_CSV_COLUMNS, *EXPLANATION_CSV_COLUMNS]
        assert [int(row[0]) for row in rows[1:]] == [newer.id, older.id]
        record = dict(zip(rows[0], rows[1], strict=True))
        assert record["start"] == "2026-03-10T10:00:00+00:00"
        assert (record["device_label"], record["device_mac"], record["hits"], record["outcome"]) == ("Ms Smith", STAFF_LAPTOP[1], "12", "")  # fmt: skip

    def test_filters_site_scope_and_local_times(self, db: Session) -> None:
        add_incident(db, start=T0.replace(month=7), platform="tiktok")
        add_incident(db, start=T0.replace(month=7), platform="tiktok", site=OTHER_SITE)
        add_incident(db, start=T0.replace(month=7), platform="x")
        filters = IncidentFilters(platforms=("tiktok",), tz=LONDON)
        rows = parse(list(incidents_csv(db, filters, SITE)))
        assert len(rows) == 2
        assert rows[1][2] == "2026-07-10T11:00:00+01:00"  # BST

    def test_cells_that_look_like_formulas_stay_text(self, db: Session) -> None:
        add_incident(
            db, label='=HYPERLINK("http://evil.example","x")', host_name="+cmd|' /C calc'!A0"
        )
        (_, row) = parse(list(incidents_csv(db, IncidentFilters(), None)))
        record = dict(zip([*INCIDENT_CSV_COLUMNS, *EXPLANATION_CSV_COLUMNS], row, strict=True))
        assert record["device_label"] == '\'=HYPERLINK("http://evil.example","x")'
        assert record["device_host_name"] == "'+cmd|' /C calc'!A0"

    def test_streams_one_line_at_a_time(self, db: Session) -> None:
        for n in range(30):
            add_incident(db, start=T0 + timedelta(minutes=n))
        lines = incidents_csv(db, IncidentFilters(), None)
        assert next(lines).startswith("id,site,start,")
        assert sum(1 for _ in lines) == 30


@pytest.fixture
def device_data(db: Session) -> dict[str, int]:
    """Rows of the staff laptop (two addresses), plus rows of two other devices."""
    mine = add_incident(db)
    moved = add_incident(db, device=("10.1.9.9", STAFF_LAPTOP[1]), start=T0 - timedelta(days=1))
    add_review(db, mine, note="spoke to Ms Smith")
    add_review(
        db, mine, from_status="in_review", to_status="closed", outcome="no_action", note="ok"
    )
    add_observation(db, mine)
    add_observation(db, moved, device=("10.1.9.9", STAFF_LAPTOP[1]))
    add_embedded(db)
    add_device(db, label="Ms Smith")
    add_device(db, device=("10.1.9.9", STAFF_LAPTOP[1]))
    # other devices, one of which later had the laptop's first address
    other = add_incident(db, device=PUPIL_TABLET)
    add_review(db, other)
    add_observation(db, other, device=PUPIL_TABLET)
    add_incident(db, device=(STAFF_LAPTOP[0], "aa:bb:cc:00:00:42"), start=T0 + timedelta(days=5))
    add_embedded(db, device=ROUTED_PC)
    add_device(db, device=ROUTED_PC)
    return {"mine": mine.id, "moved": moved.id, "other": other.id}


def table_counts(db: Session) -> dict[str, int]:
    models = {"incidents": IncidentRecord, "incident_reviews": IncidentReviewRecord, "observations": ObservationRecord,
              "embedded_counts": EmbeddedCountRecord, "devices": DeviceRecord}  # fmt: skip
    return {name: db.scalar(select(func.count()).select_from(model)) or 0 for name, model in models.items()}  # fmt: skip


class TestSubjectAccess:
    def test_export_by_mac_holds_every_row_of_the_device(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        export = export_device_records(db, STAFF_LAPTOP[1].upper())
        assert (export.subject, export.macs) == (STAFF_LAPTOP[1], (STAFF_LAPTOP[1],))
        counts = {name: len(rows) for name, rows in export.tables().items()}
        assert counts == {"incidents": 2, "incident_reviews": 2, "observations": 2, "embedded_counts": 1, "devices": 2}  # fmt: skip
        assert {row["id"] for row in export.incidents} == {
            device_data["mine"],
            device_data["moved"],
        }
        assert {row["note"] for row in export.incident_reviews} == {"spoke to Ms Smith", "ok"}
        assert export.incidents[0]["start_at"] == "2026-03-10T10:00:00+00:00"

    def test_export_by_address_lists_every_mac_that_had_it(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        export = export_device_records(db, STAFF_LAPTOP[0])
        assert export.macs == ("aa:bb:cc:00:00:01", "aa:bb:cc:00:00:42")
        assert len(export.incidents) == 2

    def test_export_is_json_and_csv(self, db: Session, device_data: dict[str, int]) -> None:
        add_incident(db, label="=cmd", device=ROUTED_PC)
        export = export_device_records(db, ROUTED_PC[0])
        document = json.loads(json.dumps(export.as_json_dict()))
        assert document["subject"] == ROUTED_PC[0]
        assert document["incidents"][0]["evidence"][0]["proto"] == "tls"
        files = export.csv_files()
        assert sorted(files) == ["devices.csv", "embedded_counts.csv", "incident_reviews.csv", "incidents.csv", "observations.csv"]  # fmt: skip
        incidents = list(csv.DictReader(io.StringIO(files["incidents.csv"])))
        assert incidents[0]["device_label"] == "'=cmd"
        assert json.loads(incidents[0]["evidence"])[0]["name"] == "www.instagram.com"

    def test_export_in_site_scope(self, db: Session, device_data: dict[str, int]) -> None:
        assert export_device_records(db, STAFF_LAPTOP[1], OTHER_SITE).incidents == ()

    def test_export_refuses_what_is_not_a_device(self, db: Session) -> None:
        with pytest.raises(ValueError, match="neither a MAC address nor an IP address"):
            export_device_records(db, "STAFF-LAPTOP-12")


def erase(db: Session, mac_or_ip: str, site: str = SITE, reason: str = "parent's request") -> ErasureResult:  # fmt: skip
    return erase_device(db, mac_or_ip, site, user=ADMIN, reason=reason, address="192.0.2.1")


class TestErasure:
    def test_erase_by_mac_deletes_every_row_and_nothing_else(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        before = table_counts(db)
        result = erase(db, STAFF_LAPTOP[1])
        erased = {"incidents": 2, "incident_reviews": 2, "observations": 2, "embedded_counts": 1, "devices": 2}  # fmt: skip
        assert (result.incidents, result.incident_reviews, result.observations, result.embedded_counts, result.devices) == tuple(erased.values())  # fmt: skip
        assert result.total == 9
        assert table_counts(db) == {name: before[name] - erased[name] for name in before}
        assert all(
            not rows for rows in export_device_records(db, STAFF_LAPTOP[1]).tables().values()
        )
        assert db.get(IncidentRecord, device_data["other"]) is not None

    def test_no_table_names_the_erased_device_afterwards(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        mac, moved_ip = STAFF_LAPTOP[1], "10.1.9.9"
        # what the device's address held without a MAC (a routed moment) is the device's too
        add_observation(db, None, device=(moved_ip, None))
        record_event(db, user=ADMIN, action=AuditAction.VIEW_DEVICE, target_type="device",
                     target_id=7, detail={"subject": mac, "page": "erase"}, address="192.0.2.1", site=SITE)  # fmt: skip
        record_event(db, user=ADMIN, action=AuditAction.MERGE_DEVICES, target_type="device",
                     target_id=8, detail={"reason": "new card, was AABB.CC00.0001"}, address="192.0.2.1", site=SITE)  # fmt: skip
        assert rows_naming(db, mac, moved_ip)
        result = erase(db, mac.upper().replace(":", "-"), reason=f"asked by the owner of {mac.upper()} at {moved_ip}")  # fmt: skip
        assert rows_naming(db, mac, moved_ip, "aabb.cc00.0001") == []
        assert result.audit_events_redacted == 2
        (audit,) = db.scalars(select(AuditEventRecord).where(AuditEventRecord.action == "erase_device"))  # fmt: skip
        assert audit.detail["device_digest"] == result.digest == identity_digest(mac)
        assert audit.detail["reason"] == f"asked by the owner of erased device {result.digest} at erased device {result.digest}"  # fmt: skip
        assert (audit.username, audit.address, audit.site) == ("admin", "192.0.2.1", SITE)
        digests = set(db.scalars(select(ErasureRecord.digest)))
        assert digests == {identity_digest(mac), identity_digest(moved_ip), identity_digest(STAFF_LAPTOP[0])}  # fmt: skip
        # the other device that later had the laptop's first address keeps its rows
        assert db.scalar(select(func.count()).select_from(IncidentRecord).where(IncidentRecord.device_mac == "aa:bb:cc:00:00:42")) == 1  # fmt: skip

    def test_erasing_twice_deletes_nothing_more_and_is_audited_twice(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        erase(db, STAFF_LAPTOP[1])
        assert erase(db, STAFF_LAPTOP[1]).total == 0
        assert db.scalar(select(func.count()).select_from(AuditEventRecord).where(AuditEventRecord.action == "erase_device")) == 2  # fmt: skip

    def test_erase_by_address_takes_every_device_that_had_it(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        result = erase(db, STAFF_LAPTOP[0])
        assert result.incidents == 2
        assert rows_naming(db, STAFF_LAPTOP[0]) == []
        (erasure,) = db.scalars(select(ErasureRecord))
        assert (erasure.digest, erasure.every_device) == (identity_digest(STAFF_LAPTOP[0]), True)

    def test_erase_needs_a_reason(self, db: Session, device_data: dict[str, int]) -> None:
        with pytest.raises(ValueError, match="give the reason"):
            erase(db, STAFF_LAPTOP[1], reason="  ")
        assert table_counts(db)["incidents"] == 4

    def test_erase_nothing_held_is_all_zeros(self, db: Session) -> None:
        assert erase(db, "10.200.0.1").total == 0

    def test_erase_in_site_scope_leaves_other_sites(self, db: Session, device_data: dict[str, int]) -> None:  # fmt: skip
        assert erase(db, STAFF_LAPTOP[1], OTHER_SITE).total == 0
