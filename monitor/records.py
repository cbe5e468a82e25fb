"""What the engine emits for the store: the writer's item types, as plain values.

The engine turns observations into these items and hands them to a sink (in production the
store's writer, in tests a list). They are values only (no IO, no SQL): the store imports them
to encode and apply them (``monitor.store.items``), never the other way, so the engine stays a
pure stage. An ``Incident`` (``monitor.values``) is an item too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from monitor.values import Incident, Match, Observation


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """A matched observation to store, with the incident it counted towards (if any)."""

    site: str
    observation: Observation
    match: Match
    incident_key: str | None = None


@dataclass(frozen=True, slots=True)
class CounterIncrement:
    """Add ``count`` to an anonymous daily counter (``observations.dns``, ``matches.outside_hours``)."""

    site: str
    day: date
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class EmbeddedCountRow:
    """Add ``count`` embedded-only hits for one device, platform and day."""

    site: str
    day: date
    device_ip: str
    device_mac: str | None
    platform: str
    count: int


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """A device (MAC, where known) was seen at an address at ``ts``, perhaps with a host name."""

    site: str
    mac: str | None
    ip: str
    host_name: str | None
    ts: float


@dataclass(frozen=True, slots=True)
class CaptureRecorded:
    """A replay has handed the writer every other item of a capture file: enter it in the ledger.

    Submitted after the file's items, so it commits with or after the file's last batch.
    """

    site: str
    sha256: str
    file_name: str
    size_bytes: int
    frames: int


EngineItem = (
    Incident
    | StoredObservation
    | CounterIncrement
    | EmbeddedCountRow
    | DeviceSeen
    | CaptureRecorded
)
"""Everything the engine emits for the writer to store."""
