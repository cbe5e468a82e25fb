"""Builders for the query tests: realistic incidents, devices, observations, reviews, counters.

Times are UTC; the school is in Europe/London. ``T0`` is Tuesday 10 March 2026, 10:00 GMT.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from monitor.store.models import (
    UNKNOWN_MAC,
    Base,
    CheckRecord,
    DailyCounterRecord,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    IncidentReviewRecord,
    ListChangeRecord,
    ObservationRecord,
)

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SITE = "school"
OTHER_SITE = "annex"
STAFF_LAPTOP = ("10.1.4.23", "aa:bb:cc:00:00:01")
PUPIL_TABLET = ("10.2.0.50", "aa:bb:cc:00:00:02")
ROUTED_PC = ("10.9.0.7", None)
"""A device on a routed segment: no MAC is known."""

_keys = count(1)


def add_incident(
    db: Session,
    *,
    start: datetime = T0,
    minutes: float = 20,
    site: str = SITE,
    platform: str = "instagram",
    device: tuple[str, str | None] = STAFF_LAPTOP,
    host_name: str | None = "STAFF-LAPTOP-12",
    segment: str | None = "staff-wifi",
    role: str | None = "staff",
    label: str | None = None,
    confidence: float = 0.9,
    connections: int = 3,
    lookups: int = 0,
    hits: int = 12,
    status: str = "new",
    outcome: str | None = None,
    key: str | None = None,
) -> IncidentRecord:
    """One incident, flushed (its ``id`` is set)."""
    ip, mac = device
    record = IncidentRecord(
        key=key or f"incident-{next(_keys)}", site=site, platform=platform, category="social",
        device_ip=ip, device_mac=mac, device_host_name=host_name, device_segment=segment,
        device_label=label, role=role, start_at=start, end_at=start + timedelta(minutes=minutes),
        active_minutes=minutes, confidence=confidence, hit_count=hits, state="closed",
        connections=connections, lookups=lookups,
        evidence=[
            {"ts": (start + timedelta(seconds=30 * n)).timestamp(), "proto": "tls",
             "name": f"www.{platform}.com", "via": "name"}
            for n in range(3)
        ],
        status=status, outcome=outcome, created_at=start, updated_at=start,
    )  # fmt: skip
    db.add(record)
    db.flush()
    return record


def add_device(
    db: Session,
    *,
    device: tuple[str, str | None] = STAFF_LAPTOP,
    site: str = SITE,
    host_name: str | None = "STAFF-LAPTOP-12",
    label: str | None = None,
    first_seen: datetime = T0 - timedelta(days=30),
    last_seen: datetime = T0,
) -> DeviceRecord:
    ip, mac = device
    record = DeviceRecord(
        site=site, mac=mac or UNKNOWN_MAC, ip=ip, host_name=host_name, label=label,
        first_seen=first_seen, last_seen=last_seen,
    )  # fmt: skip
    db.add(record)
    db.flush()
    return record


def add_observation(
    db: Session,
    incident: IncidentRecord | None,
    *,
    ts: datetime = T0,
    device: tuple[str, str | None] = STAFF_LAPTOP,
    site: str = SITE,
    name: str = "www.instagram.com",
    flags: str = "",
) -> ObservationRecord:
    ip, mac = device
    record = ObservationRecord(
        site=site, ts=ts, proto="tls", name=name, client_ip=ip, client_mac=mac,
        server_ip="157.240.1.174", server_port=443, flags=flags, platform="instagram",
        presence="primary", via="name", incident_key=incident.key if incident else None,
    )  # fmt: skip
    db.add(record)
    db.flush()
    return record


def add_review(
    db: Session,
    incident: IncidentRecord,
    *,
    at: datetime = T0,
    username: str = "head",
    from_status: str = "new",
    to_status: str = "in_review",
    outcome: str | None = None,
    note: str = "",
) -> IncidentReviewRecord:
    record = IncidentReviewRecord(
        incident_id=incident.id, at=at, user_id=None, username=username,
        from_status=from_status, to_status=to_status, outcome=outcome, note=note,
    )  # fmt: skip
    db.add(record)
    db.flush()
    return record


def add_embedded(
    db: Session,
    *,
    day: date = date(2026, 3, 10),
    device: tuple[str, str | None] = STAFF_LAPTOP,
    site: str = SITE,
    platform: str = "facebook",
    count: int = 7,
) -> EmbeddedCountRecord:
    ip, mac = device
    record = EmbeddedCountRecord(
        site=site, day=day, device_ip=ip, device_mac=mac or UNKNOWN_MAC, platform=platform,
        count=count,
    )  # fmt: skip
    db.add(record)
    db.flush()
    return record


def add_counter(db: Session, day: date, name: str, count: int, *, site: str = SITE) -> None:
    db.add(DailyCounterRecord(site=site, day=day, name=name, count=count))
    db.flush()


def add_check(db: Session, at: datetime, kind: str, ok: bool, *, site: str | None = SITE) -> None:
    db.add(
        CheckRecord(at=at, kind=kind, ok=ok, detail="eth1 saw 10.1.4.23", username="it", site=site)
    )
    db.flush()


def add_list_change(db: Session, at: datetime, suffix: str, reason: str) -> None:
    db.add(
        ListChangeRecord(
            at=at, username="it", action="add", list_name="tiktok", suffix=suffix,
            presence="primary", reason=reason, approved_by="head",
        )
    )  # fmt: skip
    db.flush()


def rows_naming(db: Session | Connection, *values: str) -> list[tuple[str, tuple[object, ...]]]:
    """Every row of every table (whatever tables the schema has) holding one of ``values``."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)):
            text = json.dumps(list(row), default=str).lower()
            if any(value.lower() in text for value in values):
                found.append((table.name, tuple(row)))
    return found
