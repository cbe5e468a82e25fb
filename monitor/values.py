"""Value types that cross the stages of the pipeline.

source -> ``Frame`` -> decode -> ``Packet`` -> extract -> ``Observation``

``Frame`` and ``Packet`` are named tuples because one of each is built for every captured
packet and a tuple is the cheapest immutable value Python has; ``Observation`` is rarer and is
a frozen dataclass with attribute docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

IPPROTO_TCP = 6
IPPROTO_UDP = 17

FlowKey = tuple[str, int, str, int]
"""A directed transport flow: (source IP, source port, destination IP, destination port)."""


class Frame(NamedTuple):
    """One captured link-layer frame, exactly as the source read it."""

    ts: float
    """Capture time, seconds since the Unix epoch (UTC)."""
    linktype: int
    """The pcap LINKTYPE_* value of the interface that captured the frame."""
    data: bytes
    """The captured bytes (possibly cut short by the snap length)."""


class Packet(NamedTuple):
    """A decoded UDP datagram or TCP segment, tunnels and link layers removed."""

    ts: float
    src_ip: str
    dst_ip: str
    protocol: int
    """``IPPROTO_TCP`` or ``IPPROTO_UDP``."""
    src_port: int
    dst_port: int
    payload: bytes
    """The transport payload (UDP data or TCP segment data), cut to the IP/UDP lengths."""
    src_mac: str | None = None
    """The sender's MAC address as ``aa:bb:cc:dd:ee:ff``, where the link has one."""
    vlan: int | None = None
    """The innermost 802.1Q VLAN id, where the frame carried one."""
    tcp_seq: int = 0
    tcp_flags: int = 0
    """TCP flag bits (FIN=0x01, SYN=0x02, RST=0x04, PSH=0x08, ACK=0x10); 0 for UDP."""

    def flow(self) -> FlowKey:
        """The directed flow this packet belongs to."""
        return (self.src_ip, self.src_port, self.dst_ip, self.dst_port)


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10


class Proto(StrEnum):
    """Where an observed name came from."""

    DNS = "dns"
    TLS = "tls"
    QUIC = "quic"
    DHCP = "dhcp"


class Flag(StrEnum):
    """Facts about an observation that matter to classification and reports."""

    RESPONSE = "response"
    """A DNS answer rather than a question (its addresses and CNAMEs are evidence)."""
    LOCAL = "local"
    """Multicast DNS or LLMNR: a name on the local network, not an Internet lookup."""
    ECH = "ech"
    """Encrypted Client Hello: the visible name is the provider's, not the site's."""
    ENCRYPTED_DNS = "encrypted-dns"
    """DNS over TLS, QUIC or HTTPS: later lookups from this device are invisible."""
    TCP = "tcp"
    """A DNS message carried over TCP."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One name seen on the network: the unit everything after extraction works on."""

    ts: float
    """Capture time, seconds since the Unix epoch (UTC)."""
    proto: Proto
    name: str
    """Normalised host name (lowercase, no trailing dot, the root as ``.``)."""
    client_ip: str
    """The device that asked: the DNS client, the TLS/QUIC client, the DHCP client."""
    client_mac: str | None
    server_ip: str
    server_port: int
    flags: frozenset[Flag] = frozenset()
    cnames: tuple[str, ...] = ()
    """For DNS answers: the CNAME chain from the question name, in order."""
    addresses: tuple[str, ...] = ()
    """For DNS answers: the A and AAAA addresses of the answer."""
    vlan: int | None = None

    def as_json_dict(self) -> dict[str, object]:
        """The JSON shape printed by ``hallmonitor scan --format jsonl``."""
        return {
            "ts": self.ts,
            "proto": self.proto.value,
            "name": self.name,
            "client_ip": self.client_ip,
            "client_mac": self.client_mac,
            "server_ip": self.server_ip,
            "server_port": self.server_port,
            "flags": sorted(flag.value for flag in self.flags),
            "cnames": list(self.cnames),
            "addresses": list(self.addresses),
            "vlan": self.vlan,
        }


@dataclass(slots=True)
class StageCounters:
    """What the pipeline saw, for the scan summary and the health page. No identities."""

    frames: int = 0
    packets: int = 0
    observations: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    """ValueErrors per stage (``decode``, ``dns``, ``tls``, ``quic``, ``dhcp``)."""
    errors: dict[str, int] = field(default_factory=dict)
    """Unexpected exceptions per stage: bugs, counted so that capture goes on."""
    unsupported_linktypes: dict[int, int] = field(default_factory=dict)
    """Frames per link type that the decoder does not read."""


# --- Engine II: classification, policy and incidents ---------------------------------------


class Presence(StrEnum):
    """Whether a list entry means a person is on the platform, or a page merely embeds it."""

    PRIMARY = "primary"
    """The site or app itself: ``www.instagram.com``, ``i.instagram.com`` app traffic."""
    EMBEDDED = "embedded"
    """Widgets, pixels, SDK beacons and shared CDNs that any page may pull in."""


class Category(StrEnum):
    """What kind of platform, so that a school chooses what it flags."""

    SOCIAL = "social"
    MESSAGING = "messaging"
    VIDEO = "video"


class SegmentRole(StrEnum):
    """Who uses a network segment (not to be confused with the web app's user roles)."""

    STAFF = "staff"
    PUPIL = "pupil"
    GUEST = "guest"
    ADMIN = "admin"


class Attribution(StrEnum):
    """How an observation was tied to a platform."""

    NAME = "name"
    """The observed name itself is on the list."""
    CNAME = "cname"
    """A DNS answer's CNAME chain led into the platform's domains."""
    ADDRESS = "address"
    """A TLS/QUIC connection without a usable name went to an address a platform name resolved to."""


@dataclass(frozen=True, slots=True)
class Match:
    """The classifier's verdict on one observation."""

    platform: str
    """Platform id, e.g. ``instagram`` (the list file's name)."""
    category: Category
    presence: Presence
    rule: str
    """The list suffix that matched, e.g. ``instagram.com``."""
    via: Attribution = Attribution.NAME


@dataclass(frozen=True, slots=True)
class Device:
    """A device's identity at one moment, frozen into incidents because addresses move."""

    ip: str
    mac: str | None = None
    host_name: str | None = None
    """The DHCP host name last seen for this MAC or address."""
    segment: str | None = None
    """The configured segment name the address or VLAN falls in."""
    label: str | None = None
    """An admin's label (owner, room); filled in by the store, not the engine."""


@dataclass(frozen=True, slots=True, order=True)
class DeviceIdentity:
    """Which device, across a trust: its school (site) and its MAC address, else its IP address.

    The one rule for "the same device" (incidents, devices, reports, emails): two schools'
    devices that share an address (both on 10.0.0.5) are two devices; at one school, rows with
    a MAC are that MAC's, rows without one are the address's. ``identity_column`` in
    ``monitor.store.queries.identity`` is the same rule in SQL.
    """

    site: str
    mac_or_ip: str

    @classmethod
    def of(cls, site: str, mac: str | None, ip: str) -> DeviceIdentity:
        """The identity of a device seen at ``site`` with ``mac`` (None or ``''``: unknown)."""
        return cls(site, mac_or_ip(mac, ip))


def mac_or_ip(mac: str | None, ip: str) -> str:
    """A device at one school (``DeviceIdentity`` without the site): its MAC address when known
    (None or ``''``: unknown), else its IP address."""
    return mac or ip


@dataclass(frozen=True, slots=True)
class Hit:
    """An observation that matched a platform, with the policy's view of it."""

    observation: Observation
    match: Match
    device: Device
    role: SegmentRole | None
    """The segment's role; None when the address is in no configured segment."""
    flagged: bool
    """The segment flags this category, and the time is inside the school day."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation that an incident rests on (no payload: time, protocol, name, how)."""

    ts: float
    proto: Proto
    name: str
    via: Attribution


@dataclass(frozen=True, slots=True)
class Basis:
    """What an incident's confidence rests on: its distinct sightings of the platform's own names.

    Repeats of one name over one protocol within a second (the A and AAAA queries of one lookup)
    are one sighting. Embedded hits (widgets, pixels) grow an incident but are never a sighting.
    """

    connections: int = 0
    """TLS or QUIC connections to the platform's own servers."""
    lookups: int = 0
    """DNS lookups of the platform's own names (apps look names up in the background)."""
    attribution: Attribution = Attribution.NAME
    """The best way a sighting was tied to the platform (name, CNAME chain, or only an address)."""

    @property
    def sightings(self) -> int:
        return self.connections + self.lookups


class IncidentState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Incident:
    """A snapshot of one device's use of one platform; the store upserts it by ``key``."""

    key: str
    """Stable id: the same observations always give the same key (replays are idempotent)."""
    site: str
    platform: str
    category: Category
    device: Device
    role: SegmentRole | None
    start: float
    end: float
    """Time of the last hit so far (UTC seconds)."""
    active_minutes: float
    """Estimated minutes of use: minutes holding a hit, bridging gaps under two minutes."""
    confidence: float
    """0..1: higher with more primary hits and several protocols; lower when only via address."""
    evidence: tuple[Evidence, ...]
    """Capped list of the hits it rests on, oldest first."""
    hit_count: int
    state: IncidentState
    basis: Basis = Basis()
    """The sightings ``confidence`` was computed from (``monitor.confidence`` explains them)."""
