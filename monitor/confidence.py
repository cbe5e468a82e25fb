"""How sure an incident is, and why, in plain English: the one place the formula lives.

The sessionizer scores each incident with :func:`score`; the incident page, the API, the CSV
export and the weekly email explain the stored score with :func:`explain`; the store's queue
filter (``monitor.store.queries.incidents.low_condition``) is the SQL form of :func:`level_of`.

Score, 0..1 rounded to two places: 0.5 for one sighting of the platform's own names, +0.1 for a
second and +0.1 for a third distinct sighting, +0.15 when a TLS or QUIC connection to its
servers was seen (not only DNS lookups), +0.1 for at least ``SEVERAL_MINUTES`` active minutes,
-0.1 when the best sighting was only tied through a CNAME chain and -0.2 when only by address.

Level: **high** from ``HIGH_FROM`` with at least one connection; **low** under ``MEDIUM_FROM``
or below the :class:`Floor` (fewer than ``min_connections`` connections *and* fewer than
``min_minutes`` active minutes: one connection, or lookups only, for a moment); else
**medium**. Low incidents are kept and counted but stay out of the default review queue and the
weekly email.

Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.values import Attribution, Basis, Proto

SEVERAL_MINUTES = 3
"""Active minutes from which the use counts as sustained."""
ATTRIBUTION_PENALTY = {Attribution.NAME: 0.0, Attribution.CNAME: 0.1, Attribution.ADDRESS: 0.2}
"""Less sure when the platform's name was not itself seen."""
HIGH_FROM = 0.8
"""A score from which an incident with a connection is high."""
MEDIUM_FROM = 0.6
"""A score under which an incident is low."""
CONNECTION_PROTOS = frozenset({Proto.TLS, Proto.QUIC})


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


LEVELS = tuple(Level)
DEFAULT_LEVELS = (Level.HIGH, Level.MEDIUM)
"""What the review queue and the weekly email show unless asked for low ones too."""


@dataclass(frozen=True, slots=True)
class Floor:
    """Incidents under both figures are low (``[incidents]`` ``floor_*`` settings)."""

    min_connections: int = 2
    min_minutes: float = 2.0

    def __post_init__(self) -> None:
        if self.min_connections < 0 or self.min_minutes < 0:
            raise ValueError(f"floor figures must not be negative, got {self}")

    def holds_back(self, basis: Basis, active_minutes: float) -> bool:
        """Whether an incident with ``basis`` and ``active_minutes`` is below the floor."""
        return basis.connections < self.min_connections and active_minutes < self.min_minutes


DEFAULT_FLOOR = Floor()
"""One connection, or lookups only, under two minutes."""


def score(basis: Basis, active_minutes: float) -> float:
    """The score described in the module docstring."""
    value = 0.5 + 0.1 * max(min(basis.sightings - 1, 2), 0)
    if basis.connections:
        value += 0.15
    if active_minutes >= SEVERAL_MINUTES:
        value += 0.1
    value -= ATTRIBUTION_PENALTY[basis.attribution]
    return round(min(max(value, 0.0), 1.0), 2)


def level_of(basis: Basis, active_minutes: float, stored_score: float, floor: Floor) -> Level:
    """The level of a (stored) score: what the queue filters on."""
    if stored_score < MEDIUM_FROM or floor.holds_back(basis, active_minutes):
        return Level.LOW
    if stored_score >= HIGH_FROM and basis.connections > 0:
        return Level.HIGH
    return Level.MEDIUM


@dataclass(frozen=True, slots=True)
class Explanation:
    """An incident's confidence for a person: level, reasons, what was seen, what it doesn't show."""

    level: Level
    score: float
    reasons: tuple[str, ...]
    seen: str
    """One sentence: what was seen, when, from which device."""
    limits: str
    """What the evidence does not show."""
    held_back: bool
    """Below the floor: out of the default queue and the weekly email."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "reasons": list(self.reasons),
            "seen": self.seen,
            "limits": self.limits,
            "below_floor": self.held_back,
        }


def explain(
    basis: Basis,
    *,
    active_minutes: float,
    stored_score: float,
    floor: Floor,
    platform: str,
    device: str,
    start: datetime,
    end: datetime,
) -> Explanation:
    """The explanation of one incident; ``start`` and ``end`` in the school's time zone."""
    held_back = floor.holds_back(basis, active_minutes)
    return Explanation(
        level=level_of(basis, active_minutes, stored_score, floor),
        score=stored_score,
        reasons=_reasons(basis, active_minutes, floor, held_back),
        seen=_seen(basis, platform, device, start, end),
        limits=_limits(basis, platform),
        held_back=held_back,
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _seen(basis: Basis, platform: str, device: str, start: datetime, end: datetime) -> str:
    first, last = f"{start:%H:%M}", f"{end:%H:%M}"
    when = f"at {first}" if first == last else f"between {first} and {last}"
    if basis.connections:
        what = _count(basis.connections, "connection", "connections")
        what += f" to {platform}'s own servers"
        if basis.lookups:
            what += " and " + _count(basis.lookups, "lookup", "lookups") + " of its names"
    else:
        what = _count(basis.lookups, "lookup", "lookups")
        what += f" of {platform}'s names, and no connection to its servers,"
    return f"{what[0].upper()}{what[1:]} {when} from {device}."


def _limits(basis: Basis, platform: str) -> str:
    parts = [f"This shows that the device contacted {platform}, not who was using it nor what "
             "was looked at."]  # fmt: skip
    if basis.connections:
        parts.append(
            f"Apps on a phone can look names up in the background; a connection to {platform}'s "
            "servers is stronger evidence than a lookup."
        )
    else:
        parts.append(
            "Apps and web pages can look names up in the background: a lookup alone does not "
            f"show that anyone opened {platform}."
        )
    if basis.attribution is Attribution.ADDRESS:
        parts.append(
            f"No {platform} name was seen: the traffic went to an address that a {platform} "
            "name had resolved to, and shared servers can host other sites."
        )
    elif basis.attribution is Attribution.CNAME:
        parts.append(
            f"The name looked up was another site's, which pointed to {platform}'s servers."
        )
    return " ".join(parts)


def _reasons(basis: Basis, active_minutes: float, floor: Floor, held_back: bool) -> tuple[str, ...]:
    reasons: list[str] = []
    if basis.connections:
        reasons.append(
            _count(basis.connections, "connection", "connections")
            + " to the platform's servers, not only lookups (+0.15)"
        )
    else:
        reasons.append("Lookups only: no connection to the platform's servers was seen")
    if basis.sightings > 1:
        extra = min(basis.sightings - 1, 2) / 10
        reasons.append(f"{basis.sightings} distinct sightings (+{extra:.1f})")
    else:
        reasons.append("A single sighting")
    minutes = round(active_minutes)
    if active_minutes >= SEVERAL_MINUTES:
        reasons.append(f"Active in {minutes} minutes: sustained use (+0.1)")
    else:
        reasons.append(
            f"Active in only {_count(minutes, 'minute', 'minutes')} "
            f"(sustained from {SEVERAL_MINUTES})"
        )
    if basis.attribution is Attribution.CNAME:
        reasons.append("Tied to the platform only through a CNAME chain (-0.1)")
    elif basis.attribution is Attribution.ADDRESS:
        reasons.append("Tied to the platform only by address, no name seen (-0.2)")
    if held_back:
        reasons.append(
            f"Below the floor (fewer than {_count(floor.min_connections, 'connection', 'connections')}"
            f" and under {floor.min_minutes:g} minutes): kept as low, out of the default queue "
            "and the weekly email"
        )
    return tuple(reasons)


def basis_from_evidence(evidence: Iterable[Mapping[str, Any]]) -> Basis:
    """An estimate of the basis from an incident's stored evidence list (rows stored before it).

    The evidence holds the first hits only and does not say which were embedded, so this counts
    every listed TLS or QUIC hit as a connection and every DNS hit as a lookup.
    """
    connections = lookups = 0
    best = Attribution.ADDRESS
    for item in evidence:
        try:
            proto = Proto(str(item.get("proto")))
            via = Attribution(str(item.get("via")))
        except ValueError:
            continue
        if proto in CONNECTION_PROTOS:
            connections += 1
        else:
            lookups += 1
        if ATTRIBUTION_PENALTY[via] < ATTRIBUTION_PENALTY[best]:
            best = via
    if connections + lookups == 0:
        return Basis(lookups=1, attribution=Attribution.NAME)
    return Basis(connections=connections, lookups=lookups, attribution=best)
