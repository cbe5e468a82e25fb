"""Put a device identity on an observation: its MAC address and the host name DHCP gave it.

An observation carries the client's IP address and, where the link layer had one, its MAC
address. Reports need more than an address that the DHCP server will hand to someone else
tomorrow: the MAC (stable for a device on a school LAN) and the host name the device announced
in its DHCP request ("STAFF-LAPTOP-12"). ``DeviceDirectory`` remembers both from the
observations it is shown, in bounded tables (least recently learned entries are forgotten
first), and builds the ``Device`` that an incident freezes.

A MAC address seen with many IP addresses belongs to a router, not a device: when the sensor
sits above a routed (layer 3) switch, every client's frames carry the switch's MAC. Such a MAC
would merge every pupil into one "device", so once a MAC has been seen with more than
``ROUTER_MAC_MIN_ADDRESSES`` addresses it is ignored and devices are told apart by IP.

Erasure: a device erased in the review app (or with ``hallmonitor devices erase``) is named to
the running capture only by the one-way digest of its MAC and addresses (``identity_digest``),
as the database keeps it. ``ErasureSet`` holds those digests with the time of the erasure and
answers whether something seen of a device is dated before its erasure (then it is never
stored); ``DeviceDirectory.forget`` drops what the directory knew of it.

Pure: no IO and no clock; the tables change only through ``learn`` and ``forget``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.values import Device, Observation, Proto

UNSPECIFIED_ADDRESSES = frozenset({"0.0.0.0", "::"})
"""Addresses that name no device (a DHCP DISCOVER is sent from 0.0.0.0)."""

ROUTER_MAC_MIN_ADDRESSES = 16
"""A MAC seen with more IP addresses than this is a router's (a device has one or two per family,
plus a few IPv6 privacy addresses)."""


class DeviceDirectory:
    """What the engine knows about devices right now: DHCP host names by MAC, last MAC by IP."""

    __slots__ = ("_addresses_by_mac", "_host_by_mac", "_mac_by_ip", "_max_devices", "_routers")

    def __init__(self, *, max_devices: int = 65536) -> None:
        if max_devices < 1:
            raise ValueError(f"max_devices must be at least 1, got {max_devices}")
        self._max_devices = max_devices
        self._host_by_mac: dict[str, str] = {}
        self._mac_by_ip: dict[str, str] = {}
        self._addresses_by_mac: dict[str, set[str]] = {}
        self._routers: set[str] = set()

    def learn(self, observation: Observation) -> None:
        """Remember what ``observation`` says about its client.

        A DHCP observation (its ``name`` is the host name) teaches the MAC's host name; any
        observation with a client MAC teaches which MAC the client IP belongs to now.
        """
        mac = observation.client_mac
        if mac is None or mac in self._routers:
            return
        if observation.proto is Proto.DHCP and observation.name:
            _remember(self._host_by_mac, mac, observation.name, self._max_devices)
        ip = observation.client_ip
        if ip not in UNSPECIFIED_ADDRESSES:
            if self._mac_by_ip.get(ip) != mac:
                self._count_address(mac, ip)
                if mac in self._routers:
                    return
            _remember(self._mac_by_ip, ip, mac, self._max_devices)

    def _count_address(self, mac: str, ip: str) -> None:
        addresses = self._addresses_by_mac.get(mac)
        if addresses is None:
            if len(self._addresses_by_mac) >= self._max_devices:
                del self._addresses_by_mac[next(iter(self._addresses_by_mac))]
            addresses = self._addresses_by_mac[mac] = set()
        addresses.add(ip)
        if len(addresses) > ROUTER_MAC_MIN_ADDRESSES:
            self._routers.add(mac)
            del self._addresses_by_mac[mac]
            self._host_by_mac.pop(mac, None)
            for known_ip in [known for known, owner in self._mac_by_ip.items() if owner == mac]:
                del self._mac_by_ip[known_ip]

    def identify(self, observation: Observation, segment: str | None) -> Device:
        """The device behind ``observation``, as far as the directory knows it now."""
        ip = observation.client_ip
        mac = observation.client_mac or self._mac_by_ip.get(ip)
        if mac in self._routers:
            mac = None
        host_name = self._host_by_mac.get(mac) if mac is not None else None
        return Device(ip=ip, mac=mac, host_name=host_name, segment=segment)

    def find_host_name(self, mac: str) -> str | None:
        """The DHCP host name last seen for ``mac``, if any."""
        return self._host_by_mac.get(mac)

    def is_router(self, mac: str) -> bool:
        """Whether ``mac`` was seen with so many addresses that it must be a router's."""
        return mac in self._routers

    def find_mac(self, ip: str) -> str | None:
        """The MAC address last seen using ``ip``, if any."""
        return self._mac_by_ip.get(ip)

    def __len__(self) -> int:
        """How many IP-to-MAC entries the directory holds."""
        return len(self._mac_by_ip)

    def forget(self, erased: ErasureSet) -> int:
        """Drop every MAC and address that ``erased`` names; how many entries were dropped."""
        dropped = 0
        for mac in [mac for mac in self._host_by_mac if erased.names_mac(mac)]:
            del self._host_by_mac[mac]
            dropped += 1
        for mac in [mac for mac in self._addresses_by_mac if erased.names_mac(mac)]:
            del self._addresses_by_mac[mac]
            dropped += 1
        for ip, mac in list(self._mac_by_ip.items()):
            if erased.names_mac(mac) or erased.names_address(ip, mac):
                del self._mac_by_ip[ip]
                dropped += 1
        return dropped


def identity_digest(identity: str) -> str:
    """The one-way digest that names an erased MAC or address (``identity`` as stored).

    Deterministic, so that the capture can recognise the device it still holds; a MAC has few
    enough values that a determined reader could try them all, so the digest hides the device
    from a casual reader of the audit log, not from one who already suspects which it was.
    """
    return hashlib.blake2b(
        identity.encode(), digest_size=16, person=b"hallmonitor-eras"
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Erasure:
    """One erased identity: the digest of a MAC or an address, and when it was erased."""

    digest: str
    at: float
    """When the erasure was made (seconds since the epoch): nothing dated up to it is kept."""
    every_device: bool
    """For an address: True when every device's rows at it were erased (erasure by address),
    False when only rows with no MAC known were (an address of an erased MAC)."""


class ErasureSet:
    """The erasures of one site, by digest; answers "is this dated before its device's erasure"."""

    __slots__ = ("_by_digest", "_digests", "latest")

    def __init__(self, erasures: Iterable[Erasure] = ()) -> None:
        self._by_digest: dict[str, Erasure] = {}
        self._digests: dict[str, str] = {}
        self.latest = float("-inf")
        """The time of the latest erasure: anything later is never erased (the fast check)."""
        self.add(erasures)

    def add(self, erasures: Iterable[Erasure]) -> None:
        """Take more erasures (an identity erased twice keeps the later time)."""
        for erasure in erasures:
            known = self._by_digest.get(erasure.digest)
            if known is not None:
                erasure = Erasure(
                    erasure.digest,
                    max(known.at, erasure.at),
                    known.every_device or erasure.every_device,
                )
            self._by_digest[erasure.digest] = erasure
            self.latest = max(self.latest, erasure.at)

    def __len__(self) -> int:
        return len(self._by_digest)

    def _find(self, identity: str) -> Erasure | None:
        digest = self._digests.get(identity)
        if digest is None:
            digest = identity_digest(identity)
            if len(self._digests) < 65536:
                self._digests[identity] = digest
        return self._by_digest.get(digest)

    def names_mac(self, mac: str | None) -> bool:
        """Whether ``mac`` was erased."""
        return mac is not None and mac != "" and self._find(mac) is not None

    def names_address(self, ip: str, mac: str | None) -> bool:
        """Whether rows at ``ip`` of the device with ``mac`` (None: unknown) were erased."""
        erasure = self._find(ip)
        return erasure is not None and (erasure.every_device or not mac)

    def erases(self, mac: str | None, ip: str, ts: float) -> bool:
        """Whether something seen at ``ts`` of the device (``mac`` where known, ``ip``) is
        dated at or before the erasure of that device."""
        if ts > self.latest:
            return False
        by_mac = self._find(mac) if mac else None
        if by_mac is not None and ts <= by_mac.at:
            return True
        by_ip = self._find(ip)
        return by_ip is not None and ts <= by_ip.at and (by_ip.every_device or not mac)


def _remember(table: dict[str, str], key: str, value: str, limit: int) -> None:
    """Set ``table[key]`` as the most recent entry, forgetting the oldest beyond ``limit``."""
    if table.get(key) == value and next(reversed(table)) == key:
        return  # the common case, a device seen again: nothing moves
    table.pop(key, None)
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]
