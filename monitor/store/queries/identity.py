"""Which rows belong to one device: a MAC address where known, else an IP address.

A device on a school LAN is best named by its MAC: its address changes with DHCP leases. Where
the MAC is unknown (a routed segment, or a router's MAC that the engine ignores) the IP address
is all there is, and only rows without a MAC are taken to be the same device. Subject access
and erasure are asked for by either (:func:`parse_device_ref`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy.orm import InstrumentedAttribute

from monitor.store.models import UNKNOWN_MAC, IncidentRecord

MAC_PATTERN = re.compile(
    r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}"  # aa:bb:cc:dd:ee:ff, aa-bb-...
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"  # aabb.ccdd.eeff (Cisco)
    r"|[0-9a-f]{12}"  # aabbccddeeff
)
"""A MAC in a common notation (lowercased before matching): six hex octets separated by colons
or hyphens, three dotted groups of four, or twelve hex digits."""


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A device named by exactly one of its MAC address or its IP address (canonical text)."""

    mac: str | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        if (self.mac is None) == (self.ip is None):
            raise ValueError("name a device by its MAC address or by its IP address")

    def __str__(self) -> str:
        return self.mac if self.mac is not None else str(self.ip)


def normalise_mac(text: str) -> str:
    """``AA-BB-CC-00-00-01`` or ``aabb.cc00.0001`` -> ``aa:bb:cc:00:00:01``, as stored;
    ``ValueError`` otherwise."""
    lowered = text.strip().lower()
    if MAC_PATTERN.fullmatch(lowered) is None:
        raise ValueError(f"{text!r} is not a MAC address (expected six hex octets, aa:bb:...)")
    digits = re.sub("[^0-9a-f]", "", lowered)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalise_ip(text: str) -> str:
    """The canonical text of an IPv4 or IPv6 address, as stored; ``ValueError`` otherwise."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError as e:
        raise ValueError(f"{text!r} is not an IP address") from e


def parse_device_ref(mac_or_ip: str) -> DeviceRef:
    """A :class:`DeviceRef` from what an admin typed; ``ValueError`` when it is neither."""
    if MAC_PATTERN.fullmatch(mac_or_ip.strip().lower()):
        return DeviceRef(mac=normalise_mac(mac_or_ip))
    try:
        return DeviceRef(ip=normalise_ip(mac_or_ip))
    except ValueError:
        raise ValueError(f"{mac_or_ip!r} is neither a MAC address nor an IP address") from None


def no_mac(column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """The MAC column says "unknown" (NULL on incidents and observations, ``''`` in keys)."""
    return or_(column.is_(None), column == UNKNOWN_MAC)


def identity_column(table: type[IncidentRecord] = IncidentRecord) -> ColumnElement[str]:
    """SQL of ``DeviceIdentity.mac_or_ip``: the MAC where known, else the address (group by it
    together with the site: ``monitor.values.DeviceIdentity``)."""
    return func.coalesce(func.nullif(table.device_mac, UNKNOWN_MAC), table.device_ip)


def device_name(label: str | None, host_name: str | None, mac: str | None, ip: str) -> str:
    """What to call a device on a page or in an email: its admin label, else its DHCP host
    name, MAC or address."""
    return label or host_name or mac or ip


def same_device(site: str, mac: str | None, ip: str) -> ColumnElement[bool]:
    """Incidents of the device that had ``mac`` (if known, else ``ip`` without a MAC) at ``site``."""
    table = IncidentRecord
    if mac:
        return and_(table.site == site, table.device_mac == mac)
    return and_(table.site == site, table.device_ip == ip, no_mac(table.device_mac))
