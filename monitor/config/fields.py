"""Building blocks of the settings: value types, each with its own messages, and ``Group``.

A wrong value raises ``problem(...)``: a pydantic error whose message is complete as written
and is shown after the key (``monitor.config.messages``)."""

from __future__ import annotations

import json
import re
from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode


def problem(message: str) -> PydanticCustomError:
    """A validation error whose message is complete as written (shown after the key)."""
    return PydanticCustomError("config", "{message}", {"message": message})


def env_list(value: object) -> object:
    """Lists from the environment: a JSON list, or comma-separated values."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise problem(f"{value!r} is not a JSON list: {e.msg}") from e
    return [item.strip() for item in text.split(",") if item.strip()]


T = TypeVar("T")
EnvList = Annotated[list[T], NoDecode, BeforeValidator(env_list)]
"""A list that the environment gives as JSON or comma-separated (pydantic-settings would only
take JSON)."""

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_RANGE_HINT = "use HH:MM-HH:MM"


def _parse_clock(text: str, whole: str, *, end: bool) -> time:
    found = _CLOCK.fullmatch(text.strip())
    if found is None:
        raise problem(f"{whole!r} is not a time range; {_RANGE_HINT}")
    hour, minute = int(found[1]), int(found[2])
    if end and (hour, minute) == (24, 0):
        return time.max
    if hour > 23 or minute > 59:
        raise problem(f"{whole!r}: {text.strip()} is not a time of day; {_RANGE_HINT}")
    return time(hour, minute)


def _parse_range(value: object) -> tuple[time, time]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(t, time) for t in value):
        return (value[0], value[1])
    if not isinstance(value, str) or value.count("-") != 1:
        raise problem(f"{value!r} is not a time range; {_RANGE_HINT}")
    first, last = value.split("-")
    start, end = _parse_clock(first, value, end=False), _parse_clock(last, value, end=True)
    if not start < end:
        raise problem(f"{value!r} ends before it starts; {_RANGE_HINT}")
    return (start, end)


def _format_range(value: tuple[time, time]) -> str:
    end = "24:00" if value[1] == time.max else value[1].strftime("%H:%M")
    return f"{value[0].strftime('%H:%M')}-{end}"


TimeRange = Annotated[
    tuple[time, time], PlainValidator(_parse_range), PlainSerializer(_format_range)
]
"""``"08:00-12:15"``: local wall-clock time, half-open (12:15 itself is outside); ``24:00`` ends
a day."""


def _parse_network(value: object) -> IPv4Network | IPv6Network:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if not isinstance(value, str):
        raise problem(f"{value!r} is not a network; use ADDRESS/PREFIX, e.g. 10.20.0.0/16")
    try:
        return ip_network(value.strip(), strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(value.strip(), strict=False)
    except ValueError:
        raise problem(
            f"{value!r} is not an IPv4 or IPv6 network; use ADDRESS/PREFIX, e.g. 10.20.0.0/16"
        ) from None
    raise problem(f"{value!r} has host bits set; use {loose}")


Cidr = Annotated[IPv4Network | IPv6Network, PlainValidator(_parse_network), PlainSerializer(str)]

TRUST_EVERY_CLIENT = "*"
"""The one ``web.forwarded_allow_ips`` entry that trusts the headers of every client."""


def _parse_proxy(value: object) -> str:
    """One ``web.forwarded_allow_ips`` entry: an IP address, a network, or ``"*"``."""
    text = value.strip() if isinstance(value, str) else ""
    if text == TRUST_EVERY_CLIENT:
        return text
    if "/" in text:
        return str(_parse_network(text))
    try:
        return str(ip_address(text))
    except ValueError:
        raise problem(
            f"{value!r} is not an IP address or network; list the reverse proxy's address as "
            'it connects to the app, e.g. ["127.0.0.1", "::1"] for nginx on this host, or [] '
            "to trust no proxy"
        ) from None


ProxyAddress = Annotated[str, PlainValidator(_parse_proxy)]


def _parse_root_path(value: object) -> str:
    """``web.root_path``: "" at the root, else a URL path starting with "/", kept without its
    trailing slash ("/monitor/" is "/monitor")."""
    text = value.strip() if isinstance(value, str) else None
    if text is not None and re.fullmatch(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?", text):
        return text.rstrip("/")
    hint = (
        'write the path the reverse proxy serves the app below, starting with "/", e.g. '
        '"/monitor", or "" when the app is at the root of its name'
    )
    if text and not text.startswith("/"):
        raise problem(f'{value!r} does not start with "/"; {hint}')
    raise problem(f"{value!r} is not a URL path; {hint}")


def _parse_suffix(value: object) -> str:
    if not isinstance(value, str):
        raise problem(f"{value!r} is not a domain suffix; write e.g. example.org")
    text = value.strip().lower().rstrip(".")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise problem(f"{value!r} is not a valid domain name") from None
    labels = text.split(".")
    if not text or not all(
        re.fullmatch(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", x) for x in labels
    ):
        raise problem(
            f"{value!r} is not a domain suffix; write e.g. example.org "
            "(a suffix matches the name and every name under it, no wildcards)"
        )
    return text


DomainSuffix = Annotated[str, PlainValidator(_parse_suffix)]


class Group(BaseModel):
    """A ``[group]`` of the config file: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _parse_test_name(value: object) -> str:
    try:
        return _parse_suffix(value)
    except PydanticCustomError:
        raise problem(f"{value!r} is not a host name; write e.g. www.facebook.com") from None


def _parse_resolver(value: object) -> str:
    text = value.strip() if isinstance(value, str) else value
    if text == "":
        return ""
    try:
        return str(ip_address(str(text)))
    except ValueError:
        raise problem(
            f"{value!r} is not an IP address; name the DNS server by address, e.g. 10.20.0.1, "
            'or "" for the system resolver'
        ) from None


UrlPath = Annotated[str, PlainValidator(_parse_root_path)]
"""``web.root_path``: "" or a URL path starting with "/", without its trailing slash."""
HostName = Annotated[str, PlainValidator(_parse_test_name)]
ResolverAddress = Annotated[str, PlainValidator(_parse_resolver)]
"""An IP address, or "" for the system resolver."""
