"""A device is named by its MAC (normalised) or its IP address (canonical)."""

from __future__ import annotations

import pytest

from monitor.store.queries.identity import DeviceRef, normalise_mac, parse_device_ref


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("aa:bb:cc:00:00:01", DeviceRef(mac="aa:bb:cc:00:00:01")),
        ("AA-BB-CC-00-00-01", DeviceRef(mac="aa:bb:cc:00:00:01")),
        (" aa:bb:cc:00:00:01 ", DeviceRef(mac="aa:bb:cc:00:00:01")),
        ("aabb.cc00.0001", DeviceRef(mac="aa:bb:cc:00:00:01")),
        ("AABBCC000001", DeviceRef(mac="aa:bb:cc:00:00:01")),
        ("10.1.4.23", DeviceRef(ip="10.1.4.23")),
        ("2001:DB8:0:0::1", DeviceRef(ip="2001:db8::1")),
    ],
)
def test_parse_device_ref(text: str, ref: DeviceRef) -> None:
    assert parse_device_ref(text) == ref


@pytest.mark.parametrize(
    "text",
    ["", "aa:bb:cc:00:00", "aa:bb-cc:00:00:01", "10.1.4.256", "staff-laptop", "aabbcc00000"],
)
def test_parse_device_ref_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="neither a MAC address nor an IP address"):
        parse_device_ref(text)


def test_device_ref_names_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="MAC address or by its IP"):
        DeviceRef()
    with pytest.raises(ValueError, match="MAC address or by its IP"):
        DeviceRef(mac="aa:bb:cc:00:00:01", ip="10.1.4.23")
    assert str(DeviceRef(ip="10.1.4.23")) == "10.1.4.23"


def test_normalise_mac_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="six hex octets"):
        normalise_mac("aa:bb")
