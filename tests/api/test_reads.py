"""Reading an incident or a device for someone writes the view's audit row in the same
transaction, committed; a missing item writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import Request
from sqlalchemy import select

from api.deps import CurrentUser
from api.reads import DEVICE, INCIDENT, read_viewed
from monitor.errors import NotFound
from monitor.store.models import AuditEventRecord, DeviceRecord, IncidentRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
REVIEWER = CurrentUser(1, "head", "Head", UserRole.REVIEWER, None)
LIMITED = CurrentUser(2, "annex-head", "Annex head", UserRole.REVIEWER, "annex")


def request_from(address: str) -> Request:
    return Request({"type": "http", "client": (address, 1234), "headers": []})


def add_incident(harness: AppHarness, site: str) -> int:
    with harness.db() as db:
        record = IncidentRecord(
            key="k", site=site, platform="tiktok", category="social", device_ip="10.0.0.5",
            device_mac="aa:bb:cc:00:00:01", start_at=T0, end_at=T0 + timedelta(minutes=5),
            active_minutes=5, confidence=0.9, hit_count=3, state="closed", connections=2,
            lookups=1, evidence=[], status="new", created_at=T0, updated_at=T0,
        )  # fmt: skip
        db.add(record)
        db.commit()
        return record.id


def audit_rows(harness: AppHarness) -> list[tuple[str, str | None, str | None, dict[str, object], str | None, str | None]]:  # fmt: skip
    with harness.db() as db:
        rows = db.execute(
            select(AuditEventRecord.action, AuditEventRecord.target_type, AuditEventRecord.target_id,
                   AuditEventRecord.detail, AuditEventRecord.address, AuditEventRecord.site)
        )  # fmt: skip
        return [tuple(row) for row in rows]


def test_a_viewed_incident_is_read_and_its_view_audited_and_committed(harness: AppHarness) -> None:
    incident_id = add_incident(harness, "school")
    with harness.db() as db:
        found = read_viewed(
            request_from("10.0.0.9"), db, REVIEWER, INCIDENT, incident_id, {"via": "api"}
        )
    assert found.incident.id == incident_id
    assert audit_rows(harness) == [
        ("view_incident", "incident", str(incident_id), {"via": "api"}, "10.0.0.9", "school")
    ]


def test_the_audit_detail_may_be_made_from_the_item(harness: AppHarness) -> None:
    with harness.db() as db:
        db.add(DeviceRecord(site="school", mac="aa:bb:cc:00:00:01", ip="10.0.0.5", first_seen=T0, last_seen=T0))  # fmt: skip
        db.commit()
        device_id = db.scalars(select(DeviceRecord.id)).one()
        read_viewed(
            request_from("10.0.0.9"), db, REVIEWER, DEVICE, device_id,
            lambda found: {"subject": found.device.mac},
        )  # fmt: skip
    assert audit_rows(harness) == [
        ("view_device", "device", str(device_id), {"subject": "aa:bb:cc:00:00:01"}, "10.0.0.9", "school")
    ]  # fmt: skip


def test_another_sites_item_is_missing_and_nothing_is_audited(harness: AppHarness) -> None:
    incident_id = add_incident(harness, "school")
    with harness.db() as db, pytest.raises(NotFound, match=f"no incident {incident_id}"):
        read_viewed(request_from("10.0.0.9"), db, LIMITED, INCIDENT, incident_id)
    assert audit_rows(harness) == []
