"""The school's policy applied to one classified observation: which segment, and is it school time.

A match becomes a flagged ``Hit`` only when all three hold: the entry is ``primary`` (a person
is on the platform, not a page embedding it), the device's segment flags the platform's
category, and the observation's time falls in the school day of the ``SchoolCalendar``.
Everything else is still returned as a ``Hit`` with ``flagged=False``: it is counted, never an
incident.

Segments. A segment is a set of VLAN ids and a set of networks (IPv4 and IPv6). ``find`` looks at
the VLAN first: an observation tagged with a configured VLAN belongs to that VLAN's segment
whatever its address. Otherwise the address decides, and where networks overlap the most
specific prefix wins (``10.20.5.0/24`` beats ``10.20.0.0/16`` beats ``10.0.0.0/8``), so a small
staff range can sit inside a large pupil range. IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``)
are looked up as IPv4.

Unsegmented addresses (in no configured segment) get ``role=None`` and are never flagged: the
school says which networks it monitors, and a monitor that flagged an unknown guest network
would be watching people the policy does not cover. Their matches are still counted.

The calendar reads local wall-clock time in its zone, so "08:00-16:30" means 08:00 on the
school's clocks on both sides of a daylight-saving change. Hours are half-open ranges
``[start, end)``. A day is a school day when its weekday has hours, it lies in a term (or no
terms are configured: then every week counts) and it is not a closure.

Pure: no files, no clock. ``monitor.config.rules.build_policy`` builds a ``Policy`` from settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Network, IPv6Network
from zoneinfo import ZoneInfo

from monitor.values import Category, Device, Hit, Match, Observation, SegmentRole

DEFAULT_FLAGS: Mapping[SegmentRole, frozenset[Category]] = {
    SegmentRole.STAFF: frozenset(Category),
    SegmentRole.PUPIL: frozenset(Category),
    SegmentRole.GUEST: frozenset(),
    SegmentRole.ADMIN: frozenset(),
}
"""The categories a role flags when its segment does not say."""

Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class Segment:
    """A named part of the school network and what the policy flags on it."""

    name: str
    role: SegmentRole
    networks: tuple[Network, ...] = ()
    vlans: frozenset[int] = frozenset()
    flags: frozenset[Category] = frozenset()
    """The categories flagged on this segment."""


class Segments:
    """Finds the segment of an address or VLAN; caches per address (called per matched hit)."""

    CACHE_LIMIT = 65_536
    """Addresses remembered before the cache starts again (a school has a few thousand)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments = tuple(segments)
        self._by_vlan: dict[int, Segment] = {}
        self._v4: list[tuple[int, int, int, Segment]] = []
        self._v6: list[tuple[int, int, int, Segment]] = []
        seen: dict[Network, Segment] = {}
        for segment in self._segments:
            for vlan in segment.vlans:
                other = self._by_vlan.setdefault(vlan, segment)
                if other is not segment:
                    raise ValueError(f"VLAN {vlan} is in both {other.name!r} and {segment.name!r}")
            for network in segment.networks:
                other = seen.setdefault(network, segment)
                if other is not segment:
                    raise ValueError(f"{network} is in both {other.name!r} and {segment.name!r}")
                table = self._v4 if network.version == 4 else self._v6
                table.append(
                    (
                        network.prefixlen,
                        int(network.netmask),
                        int(network.network_address),
                        segment,
                    )
                )
        # Most specific first: the first network that holds an address is the answer.
        self._v4.sort(key=lambda entry: -entry[0])
        self._v6.sort(key=lambda entry: -entry[0])
        self._cache: dict[str, Segment | None] = {}

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    def find(self, ip: str, vlan: int | None) -> Segment | None:
        """The segment of a VLAN id if configured, else of the address's most specific network."""
        if vlan is not None:
            segment = self._by_vlan.get(vlan)
            if segment is not None:
                return segment
        try:
            return self._cache[ip]
        except KeyError:
            pass
        segment = self._lookup(ip)
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[ip] = segment
        return segment

    def _lookup(self, ip: str) -> Segment | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        value = int(address)
        for _, mask, network, segment in self._v4 if address.version == 4 else self._v6:
            if value & mask == network:
                return segment
        return None


class SchoolCalendar:
    """Says whether an instant is inside the school day, in the school's own time zone."""

    def __init__(
        self,
        tz: str,
        hours: Mapping[int, Sequence[tuple[time, time]]],
        terms: Sequence[tuple[date, date]] = (),
        closures: Collection[date] = (),
    ) -> None:
        """``hours`` maps weekday (0 = Monday) to half-open ``[start, end)`` local time ranges;
        ``terms`` are inclusive ``(first day, last day)``; empty terms mean every week counts."""
        try:
            self.zone = ZoneInfo(tz)
        except (ValueError, KeyError) as e:
            raise ValueError(f"unknown time zone {tz!r}") from e
        self.tz = tz
        week: list[tuple[tuple[time, time], ...]] = [() for _ in range(7)]
        for weekday, ranges in hours.items():
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday} is not 0 (Monday) to 6 (Sunday)")
            for start, end in ranges:
                if not start < end:
                    raise ValueError(f"weekday {weekday}: {start}-{end} ends before it starts")
            week[weekday] = tuple(sorted(ranges))
        self.hours: tuple[tuple[tuple[time, time], ...], ...] = tuple(week)
        for first, last in terms:
            if last < first:
                raise ValueError(f"term {first} to {last} ends before it starts")
        self.terms = tuple(sorted(terms))
        self.closures = frozenset(closures)
        self._days: dict[date, bool] = {}

    def is_school_day(self, day: date) -> bool:
        """The weekday has hours, the day is in a term (if any are set) and is not closed."""
        known = self._days.get(day)
        if known is None:
            known = (
                bool(self.hours[day.weekday()])
                and day not in self.closures
                and (not self.terms or any(first <= day <= last for first, last in self.terms))
            )
            if len(self._days) >= 4096:
                self._days.clear()
            self._days[day] = known
        return known

    def is_school_time(self, ts: float) -> bool:
        """Whether the instant ``ts`` (UTC epoch seconds) is in school hours on a school day."""
        local = datetime.fromtimestamp(ts, self.zone)
        if not self.is_school_day(local.date()):
            return False
        wall = local.time()  # naive wall-clock time on the school's clocks
        return any(start <= wall < end for start, end in self.hours[local.weekday()])

    def school_days(self, start: date, end: date) -> list[date]:
        """The school days from ``start`` to ``end``, both included."""
        days = []
        day = start
        while day <= end:
            if self.is_school_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days


class Policy:
    """Segments and calendar together: turns a classified observation into a ``Hit``."""

    def __init__(self, segments: Segments, calendar: SchoolCalendar) -> None:
        self.segments = segments
        self.calendar = calendar

    def decide(self, observation: Observation, match: Match, device: Device) -> Hit:
        """Role from the segment; flagged when the segment flags the category and it is school
        time. Embedded hits are flagged too: the sessionizer counts them, and lets them grow an
        incident a primary hit opened, but never opens one on them. The device gets the
        segment's name if it did not carry it."""
        segment = self.segments.find(observation.client_ip, observation.vlan)
        if segment is None:
            return Hit(observation, match, device, None, False)
        if device.segment != segment.name:
            device = replace(device, segment=segment.name)
        flagged = match.category in segment.flags and self.calendar.is_school_time(observation.ts)
        return Hit(observation, match, device, segment.role, flagged)
