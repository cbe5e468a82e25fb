"""From observations to what the store keeps: classify, identify, apply policy, group.

The engine holds no sockets and no database: it hands what must be stored to a ``sink`` (the
writer's ``submit``), so a capture daemon, a replay (``scan --record``) and the tests drive the
same code. What it hands on follows the privacy rules of DESIGN.md:

- a matched observation that the policy flags is stored, with the incident it belongs to;
- every other observation, and a match outside the school day or on an unflagged segment,
  only increments an anonymous daily counter (no address, no name);
- DHCP host names are passed on as device sightings, for naming devices in the review app.

A stored observation carries the device as the directory resolved it (its MAC, also when the
frame had none) and the key of the incident its hit went to, so that erasing a device finds
every row about it and the incident page's timeline is its stored observations.

Erasure: ``forget`` takes the erasures the database recorded (digests only, see
``monitor.devices``): the erased devices' open incidents, pending embedded counts and directory
entries are dropped without being stored, and an observation of an erased device dated at or
before its erasure is refused (counted in ``EngineStats.erased`` only).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date

from monitor.classify import Classifier
from monitor.devices import DeviceDirectory, Erasure, ErasureSet
from monitor.policy import Policy
from monitor.records import (
    CounterIncrement,
    DeviceSeen,
    EmbeddedCountRow,
    EngineItem,
    StoredObservation,
)
from monitor.sessions import Sessionizer
from monitor.values import Attribution, Flag, Hit, Incident, IncidentState, Observation, Proto

logger = logging.getLogger(__name__)

Sink = Callable[[EngineItem], None]

VISIBILITY_FLAGS = frozenset({Flag.ECH, Flag.ENCRYPTED_DNS})
"""Flags counted per day: they say what a monitor cannot see (reports show them as gaps)."""

COUNTER_FLUSH_INTERVAL_S = 60.0
"""How often (in capture time) the anonymous counters are handed to the store."""


@dataclass(slots=True)
class EngineStats:
    """Totals since start, for the periodic log line and the health page. No identities."""

    observations: int = 0
    matches: int = 0
    flagged: int = 0
    incidents_opened: int = 0
    incidents_closed: int = 0
    erased: int = 0
    """Observations refused because their device was erased after they were made."""


class Engine:
    """Turns each observation into store items; call ``tick`` regularly and ``close`` at the end."""

    def __init__(
        self,
        *,
        site: str,
        classifier: Classifier,
        policy: Policy,
        sessionizer: Sessionizer,
        devices: DeviceDirectory,
        sink: Sink,
        day_of: Callable[[float], date],
    ) -> None:
        self.site = site
        self.classifier = classifier
        self.policy = policy
        self.sessionizer = sessionizer
        self.devices = devices
        self.sink = sink
        self.day_of = day_of
        self.stats = EngineStats()
        self._counters: Counter[tuple[date, str]] = Counter()
        self._next_counter_flush: float | None = None
        self._opened: set[str] = set()
        self.erasures = ErasureSet()
        """Every erasure ``forget`` was given: what is dated before them is refused."""

    def replace_rules(self, classifier: Classifier, policy: Policy) -> None:
        """New lists and configuration (SIGHUP); open incidents carry on."""
        self.classifier = classifier
        self.policy = policy

    def resume(self, incidents: Iterable[Incident]) -> int:
        """Carry on the incidents a previous run left open (from the store); how many carry on.

        Those that stay idle are closed by the next ``tick``, like any other.
        """
        for incident in incidents:
            self._opened.add(incident.key)
            self._emit_incidents(self.sessionizer.resume(incident))
        return self.sessionizer.open_count()

    def forget(self, erasures: Iterable[Erasure]) -> int:
        """Forget the devices just erased (open incidents, embedded counts, directory) and
        refuse what is dated before their erasure from now on; how many incidents were dropped."""
        erasures = list(erasures)
        fresh = ErasureSet(erasures)
        if not erasures:
            return 0
        self.erasures.add(erasures)
        self.devices.forget(fresh)
        return self.sessionizer.forget(
            lambda device, since: fresh.erases(device.mac, device.ip, since)
        )

    def feed(self, observation: Observation) -> None:
        """Everything one observation means for the store."""
        if observation.ts <= self.erasures.latest and self._erased(observation):
            self.stats.erased += 1
            return
        self.stats.observations += 1
        self.devices.learn(observation)
        day = self.day_of(observation.ts)
        counters = self._counters
        counters[(day, f"observations.{observation.proto.value}")] += 1
        if observation.flags:
            for flag in observation.flags & VISIBILITY_FLAGS:
                counters[(day, f"flags.{flag.value}")] += 1
        if observation.proto is Proto.DHCP:
            self._device_seen(observation)
            return
        match = self.classifier.classify(observation)
        if match is None:
            return
        if Flag.RESPONSE in observation.flags and match.via is Attribution.NAME:
            # The question was counted when it was asked: the answer only taught the classifier
            # the platform's addresses.
            return
        self.stats.matches += 1
        segment = self.policy.segments.find(observation.client_ip, observation.vlan)
        device = self.devices.identify(observation, segment.name if segment else None)
        hit = self.policy.decide(observation, match, device)
        if not hit.flagged:
            self._counters[(day, f"matches.{self._why_not_flagged(hit)}")] += 1
            return
        self.stats.flagged += 1
        self._emit_incidents(self.sessionizer.feed(hit))
        if observation.client_mac != device.mac:
            observation = replace(observation, client_mac=device.mac)
        key = self.sessionizer.open_key(device, match.platform)
        self.sink(StoredObservation(self.site, observation, match, key))

    def count(self, ts: float, name: str, amount: int) -> None:
        """Add to an anonymous daily counter of the engine's own (``capture.frames``...)."""
        if amount:
            self._counters[(self.day_of(ts), name)] += amount

    def tick(self, now: float) -> None:
        """Close idle incidents and hand over counters; ``now`` is the capture clock."""
        self._emit_incidents(self.sessionizer.close_idle(now))
        if self._next_counter_flush is None:
            self._next_counter_flush = now + COUNTER_FLUSH_INTERVAL_S
        elif now >= self._next_counter_flush:
            self._next_counter_flush = now + COUNTER_FLUSH_INTERVAL_S
            self.flush_counters()

    def close(self) -> None:
        """End of capture or replay: close every open incident and flush every counter."""
        self._emit_incidents(self.sessionizer.close_all())
        self.flush_counters()

    def flush_counters(self) -> None:
        """Hand the anonymous daily counters and the embedded counts to the store."""
        for (day, name), count in sorted(self._counters.items()):
            self.sink(CounterIncrement(self.site, day, name, count))
        self._counters.clear()
        for embedded in self.sessionizer.drain_embedded_counts():
            self.sink(
                EmbeddedCountRow(
                    self.site,
                    embedded.day,
                    embedded.device_ip,
                    embedded.device_mac,
                    embedded.platform,
                    embedded.count,
                )
            )

    def _emit_incidents(self, incidents: list[Incident]) -> None:
        for incident in incidents:
            if incident.state is IncidentState.CLOSED:
                self.stats.incidents_closed += 1
                self._opened.discard(incident.key)
            elif incident.key not in self._opened:
                self._opened.add(incident.key)
                self.stats.incidents_opened += 1
            self.sink(incident)

    def _erased(self, observation: Observation) -> bool:
        ip = observation.client_ip
        mac = observation.client_mac or self.devices.find_mac(ip)
        return self.erasures.erases(mac, ip, observation.ts)

    def _why_not_flagged(self, hit: Hit) -> str:
        if hit.role is None:
            return "unsegmented"
        if not self.policy.calendar.is_school_time(hit.observation.ts):
            return "outside_school_time"
        return "not_flagged_for_segment"

    def _device_seen(self, observation: Observation) -> None:
        self.sink(
            DeviceSeen(
                self.site,
                observation.client_mac,
                observation.client_ip,
                observation.name,
                observation.ts,
            )
        )
