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
