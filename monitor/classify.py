"""Classification: which platform, if any, an observation belongs to.

Pure: takes a ``ListSet`` and ``Observation``s, keeps no clock of its own (address memory
expires by the observations' timestamps).

Names are matched on label boundaries by walking the name's suffixes from the longest down, one
hash lookup each, so the time per name depends on its number of labels, not on the list size.
The index stores no strings: a suffix is kept as its 64-bit string hash in an open-addressing
table (``array('q')``, at most a quarter full) beside a small platform index, which keeps a
million suffixes in about 40 MB. Two different suffixes with the same 64-bit hash would be
confused; with a million entries the chance per lookup is about 1 in 10^13.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.hostnames import normalise_hostname
from monitor.lists import ListSet
from monitor.values import Attribution, Category, Flag, Match, Observation, Presence, Proto

_MATCH_CACHE_SIZE = 4096
_NAMED_HELLOS = (Proto.TLS, Proto.QUIC)


class SuffixIndex:
    """A set of domain suffixes, each tagged with a small integer, in compact hash tables.

    ``longest(name)`` returns the longest suffix of ``name`` (on label boundaries) that is in
    the index, with its tag. Names must already be normalised.
    """

    __slots__ = ("_keys", "_mask", "_tags", "size")

    def __init__(self, items: Iterable[tuple[str, int]], *, expected: int = 0) -> None:
        """Index ``(suffix, tag)`` pairs; ``tag`` is 0..65534. A later duplicate replaces."""
        capacity = 8
        while capacity < 4 * expected:
            capacity *= 2
        self._keys = array("q", bytes(8 * capacity))
        self._tags = array("H", bytes(2 * capacity))
        self._mask = capacity - 1
        self.size = 0
        for suffix, tag in items:
            self.add(suffix, tag)

    def add(self, suffix: str, tag: int) -> None:
        """Add or retag one suffix (the table doubles when it is a quarter full)."""
        if 4 * (self.size + 1) > len(self._keys):
            self._grow()
        key = hash(suffix) or 1
        mask = self._mask
        keys = self._keys
        slot = key & mask
        while keys[slot] and keys[slot] != key:
            slot = (slot + 1) & mask
        if not keys[slot]:
            keys[slot] = key
            self.size += 1
        self._tags[slot] = tag + 1

    def _grow(self) -> None:
        old = [(key, tag) for key, tag in zip(self._keys, self._tags, strict=True) if key]
        capacity = 2 * len(self._keys)
        self._keys = array("q", bytes(8 * capacity))
        self._tags = array("H", bytes(2 * capacity))
        self._mask = mask = capacity - 1
        for key, tag in old:
            slot = key & mask
            while self._keys[slot]:
                slot = (slot + 1) & mask
            self._keys[slot] = key
            self._tags[slot] = tag

    def tables(self) -> tuple[array[int], array[int], int]:
        """The hash table, the tag table and the slot mask, for callers that inline ``longest``.

        A tag table entry is the tag plus one; empty slots hold key 0.
        """
        return self._keys, self._tags, self._mask

    def longest(self, name: str) -> tuple[str, int] | None:
        """The longest indexed suffix of ``name`` and its tag, or None."""
        keys = self._keys
        mask = self._mask
        start = 0
        while True:
            dot = name.find(".", start)
            if dot < 0:  # a single label is never an entry
                return None
            suffix = name[start:] if start else name
            key = hash(suffix) or 1
            slot = key & mask
            while True:
                found = keys[slot]
                if found == key:
                    return suffix, self._tags[slot] - 1
                if not found:
                    break
                slot = (slot + 1) & mask
            start = dot + 1

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True, slots=True)
class _Remembered:
    match: Match
    expires: float


class Classifier:
    """Tie observations to platforms by name, by CNAME chain, and by remembered addresses."""

    def __init__(
        self, lists: ListSet, *, address_ttl_s: float = 3600.0, max_addresses: int = 100_000
    ) -> None:
        self._rules: list[tuple[str, Category, Presence]] = []
        rule_tag: dict[tuple[str, Presence], int] = {}
        for entry in lists.entries:
            key = (entry.platform, entry.presence)
            if key not in rule_tag:
                rule_tag[key] = len(self._rules)
                self._rules.append((entry.platform, entry.category, entry.presence))
        self._index = SuffixIndex(
            ((entry.suffix, rule_tag[entry.platform, entry.presence]) for entry in lists.entries),
            expected=len(lists.entries),
        )
        self._keys, self._tags, self._mask = self._index.tables()
        self._allow = lists.allowlist
        self._matches: dict[str, Match] = {}
        self._addresses: OrderedDict[str, _Remembered] = OrderedDict()
        self.address_ttl_s = address_ttl_s
        self.max_addresses = max_addresses

    # --- names ---------------------------------------------------------------------------

    def match_name(self, name: str) -> Match | None:
        """The platform ``name`` belongs to (longest listed suffix), None if none or allowlisted."""
        if not (name.isascii() and name.islower()) or name[-1:] == ".":
            name = normalise_hostname(name)
        # The walk of SuffixIndex.longest, inlined: this is the per-observation hot path.
        keys = self._keys
        mask = self._mask
        start = 0
        while True:
            dot = name.find(".", start)
            if dot < 0:
                return None
            suffix = name[start:] if start else name
            key = hash(suffix) or 1
            slot = key & mask
            found = keys[slot]
            while found and found != key:
                slot = (slot + 1) & mask
                found = keys[slot]
            if found:
                break
            start = dot + 1
        if self._allow and self._allowed(name):
            return None
        match = self._matches.get(suffix)
        if match is None:
            platform, category, presence = self._rules[self._tags[slot] - 1]
            match = Match(platform, category, presence, suffix)
            if len(self._matches) >= _MATCH_CACHE_SIZE:
                self._matches.clear()
            self._matches[suffix] = match
        return match

    def _allowed(self, name: str) -> bool:
        allow = self._allow
        start = 0
        while True:
            if name[start:] in allow:
                return True
            start = name.find(".", start) + 1
            if not start:
                return False

    # --- observations --------------------------------------------------------------------

    def classify(self, observation: Observation) -> Match | None:
        """The platform of one observation, learning from DNS answers as it goes."""
        proto = observation.proto
        if proto is Proto.DHCP or Flag.LOCAL in observation.flags:
            return None
        name = observation.name
        match = self.match_name(name)
        if proto is Proto.DNS:
            if Flag.RESPONSE not in observation.flags or self._allow and self._allowed(name):
                return match
            if match is None:
                match = self._match_cnames(observation.cnames)
            if match is not None and observation.addresses:
                self._remember(observation, match)
            return match
        if match is not None or proto not in _NAMED_HELLOS:
            return match
        if Flag.ECH not in observation.flags and self._allow and self._allowed(name):
            return None  # an allowlisted server name is the site itself, not a front
        return self._recall(observation.server_ip, observation.ts)

    def _match_cnames(self, cnames: tuple[str, ...]) -> Match | None:
        for cname in cnames:
            match = self.match_name(cname)
            if match is not None:
                return Match(
                    match.platform, match.category, match.presence, match.rule, Attribution.CNAME
                )
        return None

    # --- addresses -----------------------------------------------------------------------

    def _remember(self, observation: Observation, match: Match) -> None:
        """Remember the answer's addresses for the match's platform, bounded and expiring.

        An address already remembered for the same platform keeps the weaker presence: an
        address that serves both a widget host and the site proves no visit by itself.
        """
        expires = observation.ts + self.address_ttl_s
        remembered = Match(
            match.platform, match.category, match.presence, match.rule, Attribution.ADDRESS
        )
        table = self._addresses
        for address in observation.addresses:
            old = table.pop(address, None)
            if (
                old is not None
                and old.expires >= observation.ts
                and old.match.platform == match.platform
                and old.match.presence is Presence.EMBEDDED
            ):
                entry = _Remembered(old.match, expires)
            else:
                entry = _Remembered(remembered, expires)
            table[address] = entry
        while len(table) > self.max_addresses:
            table.popitem(last=False)

    def _recall(self, address: str, ts: float) -> Match | None:
        remembered = self._addresses.get(address)
        if remembered is None:
            return None
        if ts > remembered.expires:
            del self._addresses[address]
            return None
        return remembered.match

    @property
    def remembered_addresses(self) -> int:
        """How many addresses are remembered now (for the health page)."""
        return len(self._addresses)
