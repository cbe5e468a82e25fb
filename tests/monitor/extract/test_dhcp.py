"""Specification of the DHCPv4 client-message reader: identity facts, options, damage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from monitor.extract.dhcp import DhcpLease, parse_dhcp

MAC = "aa:bb:cc:dd:ee:ff"


def dhcp_request(
    *options: Any, op: int = 1, ciaddr: str = "0.0.0.0", hlen: int = 6, end: bool = True
) -> bytes:
    """A BOOTP message from MAC with the given DHCP options (scapy names or (code, bytes))."""
    packet = BOOTP(op=op, hlen=hlen, ciaddr=ciaddr, chaddr=bytes.fromhex("aabbccddeeff"))
    return bytes(packet / DHCP(options=[*options, "end"] if end else list(options)))


REQUEST = dhcp_request(
    ("message-type", "request"),
    ("requested_addr", "10.20.0.15"),
    ("hostname", b"Sams-iPhone"),
    ("param_req_list", [1, 3, 6, 15]),
)


def test_parse_dhcp_reads_request() -> None:
    assert parse_dhcp(REQUEST) == DhcpLease(
        client_mac=MAC, host_name="sams-iphone", requested_ip="10.20.0.15", message_type=3
    )


def test_parse_dhcp_reads_fixed_layout() -> None:
    # The same facts as REQUEST, by offset: op, htype, hlen at 0; chaddr at 28; cookie at 236.
    assert REQUEST[:3] == b"\x01\x01\x06"
    assert REQUEST[28:34] == bytes.fromhex("aabbccddeeff")
    assert REQUEST[236:240] == bytes.fromhex("63825363")


def test_parse_dhcp_reads_discover_without_name() -> None:
    lease = parse_dhcp(dhcp_request(("message-type", "discover")))
    assert lease == DhcpLease(client_mac=MAC, host_name=None, requested_ip=None, message_type=1)


def test_parse_dhcp_uses_ciaddr_when_no_requested_address() -> None:
    lease = parse_dhcp(dhcp_request(("message-type", "inform"), ciaddr="10.20.0.99"))
    assert lease is not None
    assert (lease.requested_ip, lease.message_type) == ("10.20.0.99", 8)


def test_parse_dhcp_prefers_option_50_to_ciaddr() -> None:
    data = dhcp_request(("requested_addr", "10.20.0.15"), ciaddr="10.20.0.99")
    lease = parse_dhcp(data)
    assert lease is not None
    assert lease.requested_ip == "10.20.0.15"


@pytest.mark.parametrize(
    ("fqdn", "expected"),
    [
        (b"\x05\x00\x00\x06laptop\x06school\x03lan\x00", "laptop.school.lan"),  # E flag: wire form
        (b"\x01\x00\x00Laptop.School.LAN", "laptop.school.lan"),  # ASCII form
        (b"\x05\x00\x00\x06laptop", "laptop"),  # wire form without the root label
        (b"\x05\x00\x00", None),  # no name
    ],
)
def test_parse_dhcp_reads_client_fqdn(fqdn: bytes, expected: str | None) -> None:
    lease = parse_dhcp(dhcp_request(("client_FQDN", fqdn)))
    assert lease is not None
    assert lease.host_name == expected


def test_parse_dhcp_prefers_host_name_option_to_fqdn() -> None:
    data = dhcp_request(("hostname", b"tablet"), ("client_FQDN", b"\x01\x00\x00other.lan"))
    lease = parse_dhcp(data)
    assert lease is not None
    assert lease.host_name == "tablet"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"  Sams-iPhone \x00", "sams-iphone"),  # trimmed, the C string's NUL dropped
        (b"LAPTOP.", "laptop"),  # one trailing dot dropped
        (b"Sam's MacBook Pro", "sam's macbook pro"),  # spaces and apostrophes are kept
        ("Jöhns-iPad".encode(), "xn--jhns-ipad-07a"),  # UTF-8 becomes IDNA
        (b"evil\nname", "evil\\012name"),  # a control byte is written in octal
        (b"a\x1b[31mred", "a\\033[31mred"),  # so is a terminal escape
        (b"caf\xe9", "caf\\351"),  # not UTF-8: bytes outside ASCII in octal
        (b"back\\slash", "back\\\\slash"),  # the escape character escaped
        ("Sam\u202eenohPi".encode(), "sam\\342\\200\\256enohpi"),  # a bidi override
        (("ü" * 70).encode(), "\\303\\274" * 70),  # Unicode that IDNA refuses, in octal
        (b"\x00\x00", None),
        (b"   ", None),
    ],
)
def test_parse_dhcp_host_name(raw: bytes, expected: str | None) -> None:
    lease = parse_dhcp(dhcp_request(("hostname", raw)))
    assert lease is not None
    assert lease.host_name == expected


def test_parse_dhcp_joins_split_host_name() -> None:
    """RFC 3396: an option given twice is one value in two pieces."""
    lease = parse_dhcp(dhcp_request((12, b"class-"), (12, b"laptop")))
    assert lease is not None
    assert lease.host_name == "class-laptop"


def test_parse_dhcp_skips_pad_and_unknown_options() -> None:
    lease = parse_dhcp(dhcp_request("pad", "pad", (224, b"vendor"), ("hostname", b"pc")))
    assert lease is not None
    assert lease.host_name == "pc"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        dhcp_request(("message-type", "offer"), op=2),  # BOOTREPLY: the server's answer
        bytes(REQUEST[:236]) + b"\x00\x00\x00\x00" + REQUEST[240:],  # plain BOOTP: no cookie
        b"\x02" * 300,
    ],
    ids=["empty", "bootreply", "no-cookie", "reply-sized-junk"],
)
def test_parse_dhcp_returns_none_when_not_a_dhcp_request(data: bytes) -> None:
    assert parse_dhcp(data) is None


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (REQUEST[:239], "BOOTP header: 239 bytes < 240"),
        (dhcp_request(("hostname", b"pc"), hlen=16), "hlen: 16"),
        (dhcp_request(("hostname", b"pc"), end=False), "no End option"),
        (REQUEST[:240] + b"\x0c", "option #1 \\(12\\) at offset 240: length byte missing"),
        (
            REQUEST[:240] + b"\x0c\x09abc",
            "option #1 \\(12\\) at offset 240: length 9 > remaining 3",
        ),
        (dhcp_request((50, b"\x0a\x00\x00")), "option 50: length 3 != 4"),
        (dhcp_request((53, b"")), "option 53: length 0 != 1"),
        (dhcp_request((81, b"\x05")), "option 81: length 1 < 3"),
        (dhcp_request((81, b"\x05\x00\x00\x09abc")), "option 81: label at offset 3"),
        (dhcp_request((81, b"\x05\x00\x00\xc0\x0c")), "option 81: label length 0xc0"),
    ],
)
def test_parse_dhcp_rejects(data: bytes, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        parse_dhcp(data)


def test_parse_dhcp_prefixes_give_none_or_value_error() -> None:
    for end in range(len(REQUEST)):
        try:
            lease = parse_dhcp(REQUEST[:end])
        except ValueError:
            continue
        assert lease is None, end


@given(st.binary(max_size=400))
def test_parse_dhcp_arbitrary_bytes(data: bytes) -> None:
    try:
        lease = parse_dhcp(data)
    except ValueError:
        return
    assert lease is None or isinstance(lease, DhcpLease)


@given(st.binary(max_size=120))
def test_parse_dhcp_arbitrary_options(options: bytes) -> None:
    try:
        lease = parse_dhcp(REQUEST[:240] + options)
    except ValueError:
        return
    assert lease is not None
    assert lease.client_mac == MAC


@given(st.binary(min_size=1, max_size=60))
def test_parse_dhcp_host_names_never_carry_control_characters(raw: bytes) -> None:
    lease = parse_dhcp(dhcp_request(("hostname", raw)))
    assert lease is not None
    assert lease.host_name is None or lease.host_name.isprintable()
