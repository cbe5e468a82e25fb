"""DeviceDirectory: host names from DHCP by MAC, the last MAC of each IP, bounded tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.devices import DeviceDirectory
from monitor.values import Device, Observation, Proto

LAPTOP_MAC = "aa:bb:cc:00:00:01"
PHONE_MAC = "aa:bb:cc:00:00:02"


def dhcp(host_name: str, mac: str, ip: str = "10.1.0.10", ts: float = 1.0) -> Observation:
    """A DHCP request as the extractor reports it: the name is the host name."""
    return Observation(ts, Proto.DHCP, host_name, ip, mac, "255.255.255.255", 67)


def dns(ip: str, mac: str | None, name: str = "www.instagram.com", ts: float = 2.0) -> Observation:
    return Observation(ts, Proto.DNS, name, ip, mac, "10.1.0.1", 53)


def test_identify_unknown_device_has_only_what_the_observation_says() -> None:
    directory = DeviceDirectory()
    assert directory.identify(dns("10.1.0.10", None), "staff") == Device(
        ip="10.1.0.10", segment="staff"
    )
    assert directory.identify(dns("10.1.0.10", LAPTOP_MAC), None) == Device(
        ip="10.1.0.10", mac=LAPTOP_MAC
    )


def test_identify_names_the_device_from_its_dhcp_host_name() -> None:
    directory = DeviceDirectory()
    directory.learn(dhcp("staff-laptop-12", LAPTOP_MAC))
    assert directory.identify(dns("10.1.0.10", LAPTOP_MAC), "staff") == Device(
        ip="10.1.0.10", mac=LAPTOP_MAC, host_name="staff-laptop-12", segment="staff"
    )


def test_identify_fills_in_the_mac_last_seen_on_the_address() -> None:
    directory = DeviceDirectory()
    directory.learn(dhcp("staff-laptop-12", LAPTOP_MAC, ip="10.1.0.10"))
    # A routed or tunnelled observation without a link layer: the MAC comes from the table.
    assert directory.identify(dns("10.1.0.10", None), None) == Device(
        ip="10.1.0.10", mac=LAPTOP_MAC, host_name="staff-laptop-12"
    )


def test_learn_any_observation_with_a_mac_teaches_the_address() -> None:
    directory = DeviceDirectory()
    directory.learn(dns("10.1.0.20", PHONE_MAC))
    assert directory.find_mac("10.1.0.20") == PHONE_MAC
    assert directory.identify(dns("10.1.0.20", None), None).mac == PHONE_MAC


def test_learn_only_dhcp_teaches_host_names() -> None:
    directory = DeviceDirectory()
    directory.learn(dns("10.1.0.10", LAPTOP_MAC, name="staff-laptop-12.local"))
    assert directory.find_host_name(LAPTOP_MAC) is None


def test_learn_the_newest_host_name_and_mac_win() -> None:
    directory = DeviceDirectory()
    directory.learn(dhcp("old-name", LAPTOP_MAC, ip="10.1.0.10"))
    directory.learn(dhcp("new-name", LAPTOP_MAC, ip="10.1.0.10"))
    directory.learn(dns("10.1.0.10", PHONE_MAC))  # the lease moved to the phone
    assert directory.find_host_name(LAPTOP_MAC) == "new-name"
    assert directory.identify(dns("10.1.0.10", None), None) == Device(ip="10.1.0.10", mac=PHONE_MAC)


def test_learn_ignores_observations_without_mac_and_unspecified_addresses() -> None:
    directory = DeviceDirectory()
    directory.learn(dns("10.1.0.10", None))
    directory.learn(dhcp("staff-laptop-12", LAPTOP_MAC, ip="0.0.0.0"))  # a DISCOVER
    assert len(directory) == 0
    assert directory.find_mac("0.0.0.0") is None
    assert directory.find_host_name(LAPTOP_MAC) == "staff-laptop-12"


def test_learn_forgets_the_least_recently_learned_beyond_the_limit() -> None:
    directory = DeviceDirectory(max_devices=2)
    directory.learn(dhcp("a", "00:00:00:00:00:0a", ip="10.0.0.1"))
    directory.learn(dhcp("b", "00:00:00:00:00:0b", ip="10.0.0.2"))
    directory.learn(dhcp("a", "00:00:00:00:00:0a", ip="10.0.0.1"))  # a is recent again
    directory.learn(dhcp("c", "00:00:00:00:00:0c", ip="10.0.0.3"))
    assert len(directory) == 2
    assert directory.find_mac("10.0.0.2") is None
    assert directory.find_host_name("00:00:00:00:00:0b") is None
    assert directory.find_mac("10.0.0.1") == "00:00:00:00:00:0a"
    assert directory.find_host_name("00:00:00:00:00:0c") == "c"


def test_directory_rejects_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="max_devices"):
        DeviceDirectory(max_devices=0)


macs = st.sampled_from([None, LAPTOP_MAC, PHONE_MAC, "aa:bb:cc:00:00:03", "aa:bb:cc:00:00:04"])
ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "0.0.0.0", "2001:db8::1"])
observations = st.builds(
    Observation,
    ts=st.floats(0, 1e9),
    proto=st.sampled_from(Proto),
    name=st.sampled_from(["host-a", "host-b", "www.tiktok.com"]),
    client_ip=ips,
    client_mac=macs,
    server_ip=st.just("10.0.0.254"),
    server_port=st.sampled_from([53, 67, 443]),
)


@given(st.lists(observations, max_size=40), observations)
def test_directory_stays_bounded_and_keeps_what_the_observation_says(
    seen: list[Observation], observation: Observation
) -> None:
    directory = DeviceDirectory(max_devices=3)
    for each in seen:
        directory.learn(each)
    assert len(directory) <= 3
    device = directory.identify(observation, "pupil")
    assert device.ip == observation.client_ip
    assert device.segment == "pupil"
    if observation.client_mac is not None:
        assert device.mac == observation.client_mac
    if device.mac is None:
        assert device.host_name is None


def test_a_mac_seen_with_many_addresses_is_a_router_and_devices_are_told_apart_by_ip() -> None:
    from monitor.devices import ROUTER_MAC_MIN_ADDRESSES

    router = "00:1b:63:aa:bb:cc"
    directory = DeviceDirectory()
    addresses = [f"10.30.0.{host}" for host in range(1, ROUTER_MAC_MIN_ADDRESSES + 3)]
    for address in addresses:
        directory.learn(
            Observation(0.0, Proto.DNS, "example.com", address, router, "10.30.0.254", 53)
        )
    assert directory.is_router(router)
    seen = Observation(1.0, Proto.DNS, "www.tiktok.com", addresses[0], router, "10.30.0.254", 53)
    device = directory.identify(seen, "pupils")
    assert (device.ip, device.mac) == (addresses[0], None)
    assert directory.find_mac(addresses[0]) is None


def test_a_device_with_a_few_addresses_keeps_its_mac() -> None:
    laptop = "02:00:00:00:00:15"
    directory = DeviceDirectory()
    for address in ("10.20.0.15", "2001:db8:20::15", "2001:db8:20::a1b2", "fe80::15"):
        directory.learn(
            Observation(0.0, Proto.DNS, "example.com", address, laptop, "10.20.0.1", 53)
        )
    assert not directory.is_router(laptop)
    seen = Observation(1.0, Proto.DNS, "example.com", "10.20.0.15", None, "10.20.0.1", 53)
    assert directory.identify(seen, None).mac == laptop


def test_an_erased_device_is_forgotten_and_only_what_came_before_is_erased() -> None:
    from monitor.devices import Erasure, ErasureSet, identity_digest

    directory = DeviceDirectory()
    directory.learn(dhcp("staff-laptop-12", LAPTOP_MAC, "10.1.0.10"))
    directory.learn(dns("10.1.0.11", PHONE_MAC))
    erased = ErasureSet([Erasure(identity_digest(LAPTOP_MAC), 10.0, every_device=False),
                         Erasure(identity_digest("10.1.0.10"), 10.0, every_device=False)])  # fmt: skip
    assert directory.forget(erased) == 3  # its host name, its addresses, its address
    assert (directory.find_host_name(LAPTOP_MAC), directory.find_mac("10.1.0.10")) == (None, None)
    assert directory.find_mac("10.1.0.11") == PHONE_MAC
    assert erased.erases(LAPTOP_MAC, "10.1.0.99", 10.0)
    assert not erased.erases(LAPTOP_MAC, "10.1.0.10", 10.5)  # after the erasure
    assert erased.erases(None, "10.1.0.10", 9.0)  # its address, no MAC known
    assert not erased.erases(PHONE_MAC, "10.1.0.10", 9.0)  # another device at that address later
    by_address = ErasureSet([Erasure(identity_digest("10.1.0.10"), 10.0, every_device=True)])
    assert by_address.erases(PHONE_MAC, "10.1.0.10", 9.0)


def test_identity_digest_is_one_way_and_stable() -> None:
    from monitor.devices import identity_digest

    digest = identity_digest(LAPTOP_MAC)
    assert digest == identity_digest(LAPTOP_MAC) != identity_digest(PHONE_MAC)
    assert LAPTOP_MAC not in digest and len(digest) == 32
