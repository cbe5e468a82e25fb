"""Read who a device says it is from its DHCPv4 client messages.

A DHCP DISCOVER or REQUEST carries the device's MAC address, often the host name its owner gave
it ("Sams-iPhone"), and the address it wants. The monitor uses these facts to put a name on a
client address in reports; it never answers DHCP. Only client messages (BOOTREQUEST) are read:
server replies say nothing about the device that the request did not.

RFC 2131 (message format), RFC 2132 (options 12, 50, 53), RFC 4702 (option 81, client FQDN),
RFC 3396 (an option split into several pieces is concatenated).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from monitor.hostnames import hostname_from_wire

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68

BOOTREQUEST = 1
MAGIC_COOKIE = b"\x63\x82\x53\x63"
OPTIONS_OFFSET = 240
"""The fixed BOOTP header (236 bytes) and the magic cookie."""

_HEADER = struct.Struct("!BBB9x4s12x16s")  # op, htype, hlen, (hops..secs, flags), ciaddr, chaddr
_ETHERNET_ADDRESS_LENGTH = 6

_OPTION_PAD = 0
_OPTION_END = 255
_OPTION_HOST_NAME = 12
_OPTION_REQUESTED_IP = 50
_OPTION_MESSAGE_TYPE = 53
_OPTION_CLIENT_FQDN = 81
_WANTED_OPTIONS = frozenset(
    {_OPTION_HOST_NAME, _OPTION_REQUESTED_IP, _OPTION_MESSAGE_TYPE, _OPTION_CLIENT_FQDN}
)
_FQDN_ENCODED = 0x04
"""Option 81 flag E: the name is in DNS wire format, not ASCII."""


@dataclass(frozen=True, slots=True)
class DhcpLease:
    """The identity facts of one DHCPv4 client message."""

    client_mac: str
    """chaddr as ``aa:bb:cc:dd:ee:ff``."""
    host_name: str | None
    """Option 12, else the option 81 FQDN, normalised; ``None`` when absent or empty."""
    requested_ip: str | None
    """Option 50, else ciaddr when it is not 0.0.0.0."""
    message_type: int | None
    """Option 53 (1 DISCOVER, 3 REQUEST, 4 DECLINE, 7 RELEASE, 8 INFORM)."""


def parse_dhcp(data: bytes) -> DhcpLease | None:
    """Parse a DHCPv4 client message (a UDP payload to port 67).

    Returns ``None`` for a BOOTREPLY, or for plain BOOTP without the DHCP magic cookie; raises
    ``ValueError`` when a request is cut short or its options are malformed.
    """
    if not data or data[0] != BOOTREQUEST:
        return None
    if len(data) < OPTIONS_OFFSET:
        raise ValueError(f"BOOTP header: {len(data)} bytes < {OPTIONS_OFFSET}")
    if data[236:OPTIONS_OFFSET] != MAGIC_COOKIE:
        return None
    _op, _htype, hlen, ciaddr, chaddr = _HEADER.unpack_from(data)
    if hlen != _ETHERNET_ADDRESS_LENGTH:
        raise ValueError(f"hlen: {hlen}, not a {_ETHERNET_ADDRESS_LENGTH}-byte MAC address")
    options = _read_options(data)

    host_name = None
    if _OPTION_HOST_NAME in options:
        host_name = _host_name(options[_OPTION_HOST_NAME])
    if host_name is None and _OPTION_CLIENT_FQDN in options:
        host_name = _fqdn_host_name(options[_OPTION_CLIENT_FQDN])

    requested_ip = None
    if _OPTION_REQUESTED_IP in options:
        requested = options[_OPTION_REQUESTED_IP]
        if len(requested) != 4:
            raise ValueError(f"option {_OPTION_REQUESTED_IP}: length {len(requested)} != 4")
        requested_ip = _ipv4_text(requested)
    elif ciaddr != b"\0\0\0\0":
        requested_ip = _ipv4_text(ciaddr)

    message_type = None
    if _OPTION_MESSAGE_TYPE in options:
        value = options[_OPTION_MESSAGE_TYPE]
        if len(value) != 1:
            raise ValueError(f"option {_OPTION_MESSAGE_TYPE}: length {len(value)} != 1")
        message_type = value[0]

    return DhcpLease(
        client_mac=chaddr[:_ETHERNET_ADDRESS_LENGTH].hex(":"),
        host_name=host_name,
        requested_ip=requested_ip,
        message_type=message_type,
    )


def _read_options(data: bytes) -> dict[int, bytes]:
    """The wanted options up to End, each option's pieces joined (RFC 3396)."""
    options: dict[int, bytes] = {}
    pos = OPTIONS_OFFSET
    size = len(data)
    index = 0
    while True:
        if pos >= size:
            # RFC 2131 ends the options with End; without it the datagram was cut short.
            raise ValueError(f"options: no End option before the data ends at {size}")
        code = data[pos]
        if code == _OPTION_END:
            return options
        if code == _OPTION_PAD:
            pos += 1
            continue
        index += 1
        if pos + 1 >= size:
            raise ValueError(f"option #{index} ({code}) at offset {pos}: length byte missing")
        length = data[pos + 1]
        end = pos + 2 + length
        if end > size:
            raise ValueError(
                f"option #{index} ({code}) at offset {pos}: length {length} > remaining "
                f"{size - pos - 2}"
            )
        if code in _WANTED_OPTIONS:
            options[code] = options.get(code, b"") + data[pos + 2 : end]
        pos = end


def _host_name(raw: bytes) -> str | None:
    """A host name option as text: trimmed, then ``hostname_from_wire`` (control bytes in
    octal, as in DNS names, so that a name never carries one into a report or a log)."""
    raw = raw.strip(b"\0 \t\r\n")
    if not raw:
        return None
    text = hostname_from_wire(raw)
    return None if text == "." else text


def _fqdn_host_name(value: bytes) -> str | None:
    """The name of a client FQDN option: flags, two RCODE bytes, then the name (RFC 4702)."""
    if len(value) < 3:
        raise ValueError(f"option {_OPTION_CLIENT_FQDN}: length {len(value)} < 3")
    name = value[3:]
    if not value[0] & _FQDN_ENCODED:
        return _host_name(name)
    labels: list[bytes] = []
    pos = 0
    while pos < len(name) and (length := name[pos]):
        if length >= 0x40:
            raise ValueError(
                f"option {_OPTION_CLIENT_FQDN}: label length 0x{length:02x} at offset {pos + 3}"
            )
        end = pos + 1 + length
        if end > len(name):
            raise ValueError(
                f"option {_OPTION_CLIENT_FQDN}: label at offset {pos + 3}: length {length} > "
                f"remaining {len(name) - pos - 1}"
            )
        labels.append(name[pos + 1 : end])
        pos = end
    return _host_name(b".".join(labels))


def _ipv4_text(packed: bytes) -> str:
    return f"{packed[0]}.{packed[1]}.{packed[2]}.{packed[3]}"
