"""Classification: which platform, if any, an observation belongs to.

Pure: takes a ``ListSet`` and ``Observation``s, keeps no clock of its own (address memory
expires by the observations' timestamps).

Names are matched on label boundaries with a few hash lookups each (see ``SuffixIndex``), so the
time per name depends on its number of labels, not on the list size. The index stores no
strings: a suffix is kept as its 64-bit string hash in an open-addressing table (``array('q')``,
at most half full) beside a 16-bit value, which keeps a million suffixes in about 40 MB where a
``set`` of the strings takes about 105 MB. Two different suffixes with the same 64-bit hash
would be confused; with a million entries the chance per lookup is about 1 in 10^13."""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.hostnames import normalise_hostname
from monitor.lists.files import ListSet
from monitor.values import Attribution, Category, Flag, Match, Observation, Presence, Proto

_MATCH_CACHE_SIZE = 16_384
_NAMED_HELLOS = (Proto.TLS, Proto.QUIC)


LONGER = 0x8000
"""Value bit: some listed suffix is longer than this one (keep walking left)."""
TAG_BITS = 0x7FFF
"""Value bits: the entry's tag plus one; 0 for a suffix that is only an ancestor of entries."""


class SuffixIndex:
    """A set of domain suffixes, each tagged with a small integer, in compact hash tables.

    ``longest(name)`` returns the longest suffix of ``name`` (on label boundaries) that is in
    the index, with its tag. Names must already be normalised.

    The walk goes from the name's last two labels leftwards, so most names cost one lookup:
    each suffix also marks its ancestors (down to two labels) with ``LONGER``, and the walk
    stops at the first suffix that is neither listed nor marked. A slot holds the suffix's
    64-bit string hash (``array('q')``) and a 16-bit value (``array('H')``, 0 when empty).
    """

    __slots__ = ("_keys", "_mask", "_values", "entries", "used")

    def __init__(self, items: Iterable[tuple[str, int]], *, expected: int = 0) -> None:
        """Index ``(suffix, tag)`` pairs; ``tag`` is 0..32765. A later duplicate retags."""
        capacity = 8
        while capacity < 2 * expected:
            capacity *= 2
        self._keys = array("q", bytes(8 * capacity))
        self._values = array("H", bytes(2 * capacity))
        self._mask = capacity - 1
        self.entries = 0
        """Suffixes with a tag."""
        self.used = 0
        """Occupied slots: entries and their ancestors."""
        for suffix, tag in items:
            self.add(suffix, tag)

    def add(self, suffix: str, tag: int) -> None:
        """Add or retag one suffix, and mark its ancestors."""
        if not 0 <= tag < TAG_BITS:
            raise ValueError(f"tag {tag} is out of range 0..{TAG_BITS - 1}")
        if self._put(hash(suffix), tag + 1, TAG_BITS) & TAG_BITS == 0:
            self.entries += 1
        dot = suffix.find(".")
        while suffix.find(".", dot + 1) > 0:  # ancestors with two labels or more
            self._put(hash(suffix[dot + 1 :]), LONGER, 0)
            dot = suffix.find(".", dot + 1)

    def _put(self, key: int, bits: int, clear: int) -> int:
        """Set ``bits`` (after clearing ``clear``) in the slot of ``key``; return the old value."""
        if 2 * (self.used + 1) > len(self._keys):
            self._grow()
        keys, values, mask = self._keys, self._values, self._mask
        slot = key & mask
        while values[slot] and keys[slot] != key:
            slot = (slot + 1) & mask
        old = values[slot]
        if not old:
            keys[slot] = key
            self.used += 1
        values[slot] = (old & ~clear) | bits
        return old

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        capacity = 2 * len(old_keys)
        keys = self._keys = array("q", bytes(8 * capacity))
        values = self._values = array("H", bytes(2 * capacity))
        self._mask = mask = capacity - 1
        for old_slot, value in enumerate(old_values):
            if value:
                key = old_keys[old_slot]
                slot = key & mask
                while values[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value

    def tables(self) -> tuple[array[int], array[int], int]:
        """The key table, the value table and the slot mask, for callers that inline ``longest``."""
        return self._keys, self._values, self._mask

    def longest(self, name: str) -> tuple[str, int] | None:
        """The longest indexed suffix of ``name`` and its tag, or None."""
        keys, values, mask = self._keys, self._values, self._mask
        last = name.rfind(".")
        if last <= 0:  # a single label is never an entry
            return None
        start = name.rfind(".", 0, last)
        found = None
        while True:
            suffix = name[start + 1 :] if start >= 0 else name
            key = hash(suffix)
            slot = key & mask
            value = values[slot]
            while value and keys[slot] != key:
                slot = (slot + 1) & mask
                value = values[slot]
            if value & TAG_BITS:
                found = (suffix, (value & TAG_BITS) - 1)
            if value < LONGER or start < 0:
                return found
            start = name.rfind(".", 0, start)

    def __len__(self) -> int:
        return self.entries


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
        self._keys, self._values, self._mask = self._index.tables()
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
        # SuffixIndex.longest, inlined: this is the per-observation hot path.
        keys = self._keys
        values = self._values
        mask = self._mask
        last = name.rfind(".")
        if last <= 0:
            return None
        start = name.rfind(".", 0, last)
        rule = None
        tag = 0
        while True:
            suffix = name[start + 1 :] if start >= 0 else name
            key = hash(suffix)
            slot = key & mask
            value = values[slot]
            while value and keys[slot] != key:
                slot = (slot + 1) & mask
                value = values[slot]
            if value & TAG_BITS:
                rule = suffix
                tag = value & TAG_BITS
            if value < LONGER or start < 0:
                break
            start = name.rfind(".", 0, start)
        if rule is None or self._allow and self._allowed(name):
            return None
        match = self._matches.get(rule)
        if match is None:
            platform, category, presence = self._rules[tag - 1]
            match = Match(platform, category, presence, rule)
            if len(self._matches) >= _MATCH_CACHE_SIZE:
                self._matches.clear()
            self._matches[rule] = match
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
