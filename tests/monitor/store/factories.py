"""Builders for the values the store tests write (an incident's life, matched observations)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.records import StoredObservation
from monitor.values import (
    Attribution,
    Category,
    Device,
    Evidence,
    Incident,
    IncidentState,
    Match,
    Observation,
    Presence,
    Proto,
    SegmentRole,
)

T0 = datetime(2026, 3, 10, 10, 12, tzinfo=UTC).timestamp()
"""Tuesday 10 March 2026, 10:12 UTC: a school morning."""
SITE = "school"


def make_incident(
    key: str = "k1",
    *,
    hit_count: int = 1,
    state: IncidentState = IncidentState.OPEN,
    start: float = T0,
    device: Device | None = None,
    platform: str = "instagram",
) -> Incident:
    """A snapshot of an incident with ``hit_count`` hits, one every 30 seconds from ``start``."""
    evidence = tuple(
        Evidence(start + 30 * i, Proto.TLS, "www.instagram.com", Attribution.NAME)
        for i in range(min(hit_count, 5))
    )
    return Incident(
        key=key,
        site=SITE,
        platform=platform,
        category=Category.SOCIAL,
        device=device or Device("10.1.4.23", "aa:bb:cc:00:00:01", "room4-laptop", "staff"),
        role=SegmentRole.STAFF,
        start=start,
        end=start + 30 * (hit_count - 1),
        active_minutes=float(hit_count // 2 + 1),
        confidence=0.9,
        evidence=evidence,
        hit_count=hit_count,
        state=state,
    )


def make_observation(
    ts: float, *, name: str = "www.instagram.com", incident_key: str | None = "k1"
) -> StoredObservation:
    return StoredObservation(
        site=SITE,
        observation=Observation(
            ts=ts,
            proto=Proto.TLS,
            name=name,
            client_ip="10.1.4.23",
            client_mac="aa:bb:cc:00:00:01",
            server_ip="157.240.1.174",
            server_port=443,
        ),
        match=Match("instagram", Category.SOCIAL, Presence.PRIMARY, "instagram.com"),
        incident_key=incident_key,
    )


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
