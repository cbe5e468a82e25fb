"""Group the hits of one device on one platform into incidents.

A name is not yet an incident: opening Instagram gives dozens of DNS lookups and connections in
a few minutes, and a news page with a Facebook widget gives Facebook names without anyone being
on Facebook. ``Sessionizer`` is the state machine between the two:

- Only flagged hits count (the policy said: this segment flags the category, in school time),
  for incidents and embedded counts alike.
- Hits are grouped by device and platform. The device's identity is its MAC address when known,
  else its IP address, so a laptop that changes address keeps its incident.
- An incident **opens** on a ``primary`` hit (a person is on the site or app). Further hits of
  the same device and platform, primary or embedded, over any protocol, **grow** it while each
  comes within ``idle_gap_s`` of the previous one. It **closes** when a hit comes after a longer
  gap (a primary one then opens a new incident), when ``close_idle`` finds it idle, or at
  ``close_all`` (shutdown, end of a replay: an incident cut short is still stored).
- ``embedded`` hits that find no open incident never open one: they are counted per device,
  platform and day (``EmbeddedCount``, fetched with ``drain_embedded_counts``).
- The ``Device`` and role of the opening hit are frozen into the incident: addresses move.
- ``resume`` carries on an incident that a previous run left open in the store (a crash, a
  ``kill -9``): later hits within the idle gap grow it under its own key instead of opening a
  second incident for the same activity, and ``close_idle`` closes it if none come.

Snapshots: ``feed`` returns an ``OPEN`` snapshot when an incident opens, then at most one per
``snapshot_interval_s`` of capture time while it grows; ``close_idle`` also returns the snapshots
held back by that throttle once they are due, and every incident ends with one ``CLOSED``
snapshot. The store upserts snapshots by ``Incident.key``, a digest of (site, device identity,
platform, time of the opening hit), so replaying the same capture stores each incident once.

Active minutes: the whole minutes, counted from the opening hit, that hold at least one hit;
when two consecutive hits are less than ``BRIDGE_GAP_S`` (2 minutes) apart, the minutes between
them count too (someone scrolling a feed does not look anything up for a minute). A single hit
is 1 minute; hits every 90 seconds from 10:00:00 to 10:30:00 are 31 minutes.

Confidence: ``monitor.confidence.score`` of the incident's ``Basis``, its distinct sightings of
the platform's own names (primary hits) by kind: connections (TLS, QUIC) and lookups (DNS).
Repeats of the same name over the same protocol within ``REPEAT_WINDOW_S`` (the A and AAAA
queries of one lookup and their answers) are one sighting.

Time: hits carry capture time and arrive roughly in order. Hits from several interfaces may be
a few seconds out of order (``OUT_OF_ORDER_TOLERANCE_S``): an incident's start is the earliest
and its end the latest hit, and ``close_idle`` waits that long past the idle gap. A late hit
inside an incident's span grows it. A hit more than the idle gap before the incident's start
(the capture clock went back) closes it, as a gap forward does.

Pure: no IO and no clock; time comes in with the hits and as ``now``.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from monitor.confidence import ATTRIBUTION_PENALTY, CONNECTION_PROTOS, score
from monitor.values import (
    Attribution,
    Basis,
    Category,
    Device,
    Evidence,
    Hit,
    Incident,
    IncidentState,
    Presence,
    Proto,
    SegmentRole,
    mac_or_ip,
)

DEFAULT_IDLE_GAP_S = 600.0
"""An incident closes after 10 minutes without a hit."""
DEFAULT_SNAPSHOT_INTERVAL_S = 60.0
"""A growing incident is written at most once a minute of capture time."""
DEFAULT_MAX_EVIDENCE = 50
"""The first 50 hits are kept as evidence; later ones are only counted."""
OUT_OF_ORDER_TOLERANCE_S = 2.0
"""How far out of order hits may arrive (several interfaces, several capture threads)."""
BRIDGE_GAP_S = 120.0
"""Consecutive hits closer than this count the minutes between them as active."""
REPEAT_WINDOW_S = 1.0
"""The same name over the same protocol within this time is one sighting for confidence."""


def utc_day(ts: float) -> date:
    """The UTC calendar date of ``ts`` (epoch seconds)."""
    return datetime.fromtimestamp(ts, tz=UTC).date()


def build_incident_key(site: str, identity: str, platform: str, start: float) -> str:
    """The stable key of the incident that ``identity`` opened on ``platform`` at ``start``.

    The time is rounded to the microsecond (pcap resolution) so that two readers of the same
    capture give the same key.
    """
    text = f"{site}\x1f{identity}\x1f{platform}\x1f{start:.6f}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class EmbeddedCount:
    """Embedded-only hits of one device on one platform on one day (never an incident)."""

    day: date
    """The calendar date of the hits, in the time zone of the ``day_of`` the sessionizer got."""
    device_ip: str
    device_mac: str | None
    platform: str
    count: int


class _OpenIncident:
    """The mutable state of one open incident; snapshots of it are ``Incident`` values."""

    __slots__ = (
        "active_minutes",
        "best_via",
        "category",
        "confidence_floor",
        "connections",
        "device",
        "emitted_at",
        "end",
        "evidence",
        "hit_count",
        "identity",
        "key",
        "last_sighting",
        "lookups",
        "minutes",
        "origin",
        "pending",
        "platform",
        "role",
        "start",
    )

    def __init__(self, key: str, identity: str, hit: Hit) -> None:
        ts = hit.observation.ts
        self.key = key
        self.identity = identity
        self.platform = hit.match.platform
        self.category: Category = hit.match.category
        self.device: Device = hit.device
        self.role: SegmentRole | None = hit.role
        self.origin = ts
        """The opening hit's time: minute numbers count from it."""
        self.start = ts
        self.end = ts
        self.emitted_at = ts
        """Capture time of the last snapshot returned while open."""
        self.pending = False
        """Hits arrived since that snapshot."""
        self.hit_count = 0
        self.evidence: list[Evidence] = []
        self.minutes: set[int] = set()
        self.active_minutes = 0
        self.connections = 0
        self.lookups = 0
        self.last_sighting: tuple[Proto, str, float] | None = None
        self.best_via = Attribution.ADDRESS
        self.confidence_floor = 0.0
        """The stored confidence of a resumed incident: its score never drops below it."""

    @classmethod
    def resumed(cls, incident: Incident, identity: str) -> _OpenIncident:
        """The state of an incident stored by a previous run, as far as the store kept it.

        Its active minutes are those the store counted; the minutes known to hold a hit (its
        evidence, start and end) are marked so that later hits are not counted twice. Its
        sightings are the stored basis (connections, lookups, attribution).
        """
        self = cls.__new__(cls)
        self.key = incident.key
        self.identity = identity
        self.platform = incident.platform
        self.category = incident.category
        self.device = incident.device
        self.role = incident.role
        self.origin = self.start = incident.start
        self.end = self.emitted_at = incident.end
        self.pending = False
        self.hit_count = incident.hit_count
        self.evidence = sorted(incident.evidence, key=_evidence_time)
        self.minutes = {self._minute(ts) for ts in (incident.start, incident.end)}
        self.minutes.update(self._minute(evidence.ts) for evidence in self.evidence)
        self.active_minutes = max(round(incident.active_minutes), len(self.minutes))
        self.connections = incident.basis.connections
        self.lookups = incident.basis.lookups
        self.last_sighting = None
        self.best_via = incident.basis.attribution
        self.confidence_floor = incident.confidence
        return self

    def add(self, hit: Hit, max_evidence: int) -> None:
        """Grow the incident by one hit."""
        observation = hit.observation
        ts = observation.ts
        if ts - self.end < BRIDGE_GAP_S:
            self._mark_minutes(min(ts, self.end), ts)
        else:
            self._mark_minutes(ts, ts)
        self.start = min(self.start, ts)
        self.end = max(self.end, ts)
        self.hit_count += 1
        self.pending = True
        if len(self.evidence) < max_evidence:
            evidence = Evidence(ts, observation.proto, observation.name, hit.match.via)
            bisect.insort(self.evidence, evidence, key=_evidence_time)
        if hit.match.presence is Presence.PRIMARY:
            self._sight(hit)

    def covers(self, ts: float, gap: float) -> bool:
        """Whether a hit at ``ts`` is within ``gap`` of this incident (before, inside or after)."""
        return self.start - gap <= ts <= self.end + gap

    def _mark_minutes(self, first: float, last: float) -> None:
        minutes = self.minutes
        for minute in range(self._minute(first), self._minute(last) + 1):
            if minute not in minutes:
                minutes.add(minute)
                self.active_minutes += 1

    def _minute(self, ts: float) -> int:
        return math.floor((ts - self.origin) / 60.0)

    def _sight(self, hit: Hit) -> None:
        observation = hit.observation
        previous = self.last_sighting
        if (
            previous is None
            or previous[0] is not observation.proto
            or previous[1] != observation.name
            or abs(observation.ts - previous[2]) > REPEAT_WINDOW_S
        ):
            if observation.proto in CONNECTION_PROTOS:
                self.connections += 1
            else:
                self.lookups += 1
            self.last_sighting = (observation.proto, observation.name, observation.ts)
        if ATTRIBUTION_PENALTY[hit.match.via] < ATTRIBUTION_PENALTY[self.best_via]:
            self.best_via = hit.match.via

    def basis(self) -> Basis:
        return Basis(self.connections, self.lookups, self.best_via)

    def confidence(self) -> float:
        """``monitor.confidence.score``, never below a resumed incident's stored score."""
        return max(score(self.basis(), self.active_minutes), self.confidence_floor)

    def snapshot(self, site: str, state: IncidentState) -> Incident:
        return Incident(
            key=self.key,
            site=site,
            platform=self.platform,
            category=self.category,
            device=self.device,
            role=self.role,
            start=self.start,
            end=self.end,
            active_minutes=float(self.active_minutes),
            confidence=self.confidence(),
            evidence=tuple(self.evidence),
            hit_count=self.hit_count,
            state=state,
            basis=self.basis(),
        )


def _evidence_time(evidence: Evidence) -> float:
    return evidence.ts


class Sessionizer:
    """The incident state machine: flagged hits in, incident snapshots out."""

    def __init__(
        self,
        *,
        site: str,
        idle_gap_s: float = DEFAULT_IDLE_GAP_S,
        max_evidence: int = DEFAULT_MAX_EVIDENCE,
        snapshot_interval_s: float = DEFAULT_SNAPSHOT_INTERVAL_S,
        day_of: Callable[[float], date] = utc_day,
    ) -> None:
        if idle_gap_s <= 0:
            raise ValueError(f"idle_gap_s must be positive, got {idle_gap_s}")
        if max_evidence < 1:
            raise ValueError(f"max_evidence must be at least 1, got {max_evidence}")
        if snapshot_interval_s < 0:
            raise ValueError(f"snapshot_interval_s must not be negative, got {snapshot_interval_s}")
        self.site = site
        self.idle_gap_s = idle_gap_s
        self.max_evidence = max_evidence
        self.snapshot_interval_s = snapshot_interval_s
        self._day_of = day_of
        self._open: dict[tuple[str, str], _OpenIncident] = {}
        self._embedded: dict[tuple[date, str, str | None, str], int] = {}

    def feed(self, hit: Hit) -> list[Incident]:
        """Take one hit; return the snapshots it made due (closed, opened or grown)."""
        if not hit.flagged:
            return []
        device = hit.device
        identity = mac_or_ip(device.mac, device.ip)
        group = (identity, hit.match.platform)
        ts = hit.observation.ts
        changed: list[Incident] = []
        current = self._open.get(group)
        if current is not None and not current.covers(ts, self.idle_gap_s):
            del self._open[group]
            changed.append(current.snapshot(self.site, IncidentState.CLOSED))
            current = None
        if current is not None:
            current.add(hit, self.max_evidence)
            if current.end - current.emitted_at >= self.snapshot_interval_s:
                changed.append(self._emit(current, current.end))
        elif hit.match.presence is Presence.PRIMARY:
            key = build_incident_key(self.site, identity, hit.match.platform, ts)
            current = _OpenIncident(key, identity, hit)
            current.add(hit, self.max_evidence)
            self._open[group] = current
            changed.append(self._emit(current, ts))
        else:
            counter = (self._day_of(ts), device.ip, device.mac, hit.match.platform)
            self._embedded[counter] = self._embedded.get(counter, 0) + 1
        return changed

    def resume(self, incident: Incident) -> list[Incident]:
        """Carry on ``incident``, which a previous run left open; see the module docstring.

        When the same device and platform already have an open incident (a previous run left
        two), the one that ended later carries on and the other is returned as CLOSED.
        """
        identity = mac_or_ip(incident.device.mac, incident.device.ip)
        group = (identity, incident.platform)
        resumed = _OpenIncident.resumed(incident, identity)
        current = self._open.get(group)
        if current is not None:
            if current.end >= resumed.end:
                return [resumed.snapshot(self.site, IncidentState.CLOSED)]
            self._open[group] = resumed
            return [current.snapshot(self.site, IncidentState.CLOSED)]
        self._open[group] = resumed
        return []

    def close_idle(self, now: float) -> list[Incident]:
        """Close the incidents idle at capture time ``now``; return their CLOSED snapshots.

        An incident is idle when ``now`` is more than the idle gap (plus the out-of-order
        tolerance) after its last hit, or before its first (the capture clock went back). Growing
        incidents whose throttled snapshot is due by ``now`` are returned too, as OPEN snapshots,
        so that the store does not wait for the next hit to see them.
        """
        changed: list[Incident] = []
        limit = self.idle_gap_s + OUT_OF_ORDER_TOLERANCE_S
        for group, current in list(self._open.items()):
            if not current.covers(now, limit):
                del self._open[group]
                changed.append(current.snapshot(self.site, IncidentState.CLOSED))
            elif current.pending and now - current.emitted_at >= self.snapshot_interval_s:
                changed.append(self._emit(current, now))
        return changed

    def close_all(self) -> list[Incident]:
        """Close every open incident (shutdown, end of a replay); return the CLOSED snapshots."""
        closed = [
            current.snapshot(self.site, IncidentState.CLOSED) for current in self._open.values()
        ]
        self._open.clear()
        return closed

    def drain_embedded_counts(self) -> list[EmbeddedCount]:
        """The embedded-only counts since the last drain (then forgotten here)."""
        counts = [
            EmbeddedCount(day, ip, mac, platform, count)
            for (day, ip, mac, platform), count in self._embedded.items()
        ]
        self._embedded.clear()
        return counts

    def open_count(self) -> int:
        """How many incidents are open."""
        return len(self._open)

    def open_key(self, device: Device, platform: str) -> str | None:
        """The key of the incident ``device`` has open on ``platform`` (where ``feed`` put its
        hit), or None."""
        current = self._open.get((mac_or_ip(device.mac, device.ip), platform))
        return current.key if current is not None else None

    def forget(self, erased: Callable[[Device, float], bool]) -> int:
        """Drop, without a snapshot, what ``erased(device, since)`` says was erased: the open
        incidents (``since``: their start) and the embedded counts not yet drained (``since``:
        -inf, they are at most a flush interval old); how many incidents were dropped."""
        gone = [
            group for group, current in self._open.items() if erased(current.device, current.start)
        ]
        for group in gone:
            del self._open[group]
        for counter in list(self._embedded):
            _day, ip, mac, _platform = counter
            if erased(Device(ip=ip, mac=mac), -math.inf):
                del self._embedded[counter]
        return len(gone)

    def _emit(self, current: _OpenIncident, at: float) -> Incident:
        current.emitted_at = at
        current.pending = False
        return current.snapshot(self.site, IncidentState.OPEN)
