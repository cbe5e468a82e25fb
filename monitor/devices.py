"""Put a device identity on an observation: its MAC address and the host name DHCP gave it.

An observation carries the client's IP address and, where the link layer had one, its MAC
address. Reports need more than an address that the DHCP server will hand to someone else
tomorrow: the MAC (stable for a device on a school LAN) and the host name the device announced
in its DHCP request ("STAFF-LAPTOP-12"). ``DeviceDirectory`` remembers both from the
observations it is shown, in bounded tables (least recently learned entries are forgotten
first), and builds the ``Device`` that an incident freezes.

Pure: no IO and no clock; the tables change only through ``learn``.
"""

from __future__ import annotations

from monitor.values import Device, Observation, Proto

UNSPECIFIED_ADDRESSES = frozenset({"0.0.0.0", "::"})
"""Addresses that name no device (a DHCP DISCOVER is sent from 0.0.0.0)."""


class DeviceDirectory:
    """What the engine knows about devices right now: DHCP host names by MAC, last MAC by IP."""

    __slots__ = ("_host_by_mac", "_mac_by_ip", "_max_devices")

    def __init__(self, *, max_devices: int = 65536) -> None:
        if max_devices < 1:
            raise ValueError(f"max_devices must be at least 1, got {max_devices}")
        self._max_devices = max_devices
        self._host_by_mac: dict[str, str] = {}
        self._mac_by_ip: dict[str, str] = {}

    def learn(self, observation: Observation) -> None:
        """Remember what ``observation`` says about its client.

        A DHCP observation (its ``name`` is the host name) teaches the MAC's host name; any
        observation with a client MAC teaches which MAC the client IP belongs to now.
        """
        mac = observation.client_mac
        if mac is None:
            return
        if observation.proto is Proto.DHCP and observation.name:
            _remember(self._host_by_mac, mac, observation.name, self._max_devices)
        if observation.client_ip not in UNSPECIFIED_ADDRESSES:
            _remember(self._mac_by_ip, observation.client_ip, mac, self._max_devices)

    def identify(self, observation: Observation, segment: str | None) -> Device:
        """The device behind ``observation``, as far as the directory knows it now."""
        ip = observation.client_ip
        mac = observation.client_mac or self._mac_by_ip.get(ip)
        host_name = self._host_by_mac.get(mac) if mac is not None else None
        return Device(ip=ip, mac=mac, host_name=host_name, segment=segment)

    def find_host_name(self, mac: str) -> str | None:
        """The DHCP host name last seen for ``mac``, if any."""
        return self._host_by_mac.get(mac)

    def find_mac(self, ip: str) -> str | None:
        """The MAC address last seen using ``ip``, if any."""
        return self._mac_by_ip.get(ip)

    def __len__(self) -> int:
        """How many IP-to-MAC entries the directory holds."""
        return len(self._mac_by_ip)


def _remember(table: dict[str, str], key: str, value: str, limit: int) -> None:
    """Set ``table[key]`` as the most recent entry, forgetting the oldest beyond ``limit``."""
    if table.get(key) == value and next(reversed(table)) == key:
        return  # the common case, a device seen again: nothing moves
    table.pop(key, None)
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]
