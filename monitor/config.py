"""Hall Monitor's settings: one TOML file, overridden by ``HALLMONITOR_<GROUP>__<KEY>`` variables.

The IT technician edits one file (``/etc/hallmonitor/config.toml``; every key is shown with its
default in ``deploy/config.example.toml``). Any key can be overridden from the environment, e.g.
``HALLMONITOR_DATABASE__URL`` or ``HALLMONITOR_CALENDAR__TIMEZONE``; the environment wins over
the file. Lists in the environment are JSON (``["eth0", "eth1"]``) or, for lists of plain
values, comma-separated (``eth0,eth1``). Relative paths in the file are taken from the file's
own directory.

A wrong value is reported with its key, the value and what is allowed, every problem at once
(``load_settings`` raises one ``ConfigError`` whose ``problems`` has one line each). Build
settings with ``load_settings``: constructing ``Settings(...)`` directly validates the values
given and reads nothing else.

This module is an IO edge (it reads the TOML file and the closure files named in it).
``build_policy`` turns settings into the pure ``monitor.policy.Policy``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, time, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.calendars import parse_govuk_bank_holidays, parse_ical_closures
from monitor.confidence import DEFAULT_FLOOR, Floor
from monitor.errors import ConfigError
from monitor.policy import DEFAULT_FLAGS, Policy, SchoolCalendar, Segment, Segments
from monitor.values import Category, SegmentRole

ENV_PREFIX = "HALLMONITOR_"
CONFIG_ENV = "HALLMONITOR_CONFIG"
"""Names the config file; ``/etc/hallmonitor/config.toml`` otherwise."""
SYSTEM_CONFIG_PATH = Path("/etc/hallmonitor/config.toml")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_DAY = ((time(8, 0), time(16, 30)),)
"""Monday to Friday by default: 08:00-16:30."""


# --- value types with their own messages ---------------------------------------------------


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is complete as written (shown after the key)."""
    return PydanticCustomError("config", "{message}", {"message": message})


def _env_list(value: object) -> object:
    """Lists from the environment: a JSON list, or comma-separated values."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise _problem(f"{value!r} is not a JSON list: {e.msg}") from e
    return [item.strip() for item in text.split(",") if item.strip()]


T = TypeVar("T")
EnvList = Annotated[list[T], NoDecode, BeforeValidator(_env_list)]
"""A list that the environment gives as JSON or comma-separated (pydantic-settings would only
take JSON)."""

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_RANGE_HINT = "use HH:MM-HH:MM"


def _parse_clock(text: str, whole: str, *, end: bool) -> time:
    found = _CLOCK.fullmatch(text.strip())
    if found is None:
        raise _problem(f"{whole!r} is not a time range; {_RANGE_HINT}")
    hour, minute = int(found[1]), int(found[2])
    if end and (hour, minute) == (24, 0):
        return time.max
    if hour > 23 or minute > 59:
        raise _problem(f"{whole!r}: {text.strip()} is not a time of day; {_RANGE_HINT}")
    return time(hour, minute)


def _parse_range(value: object) -> tuple[time, time]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(t, time) for t in value):
        return (value[0], value[1])
    if not isinstance(value, str) or value.count("-") != 1:
        raise _problem(f"{value!r} is not a time range; {_RANGE_HINT}")
    first, last = value.split("-")
    start, end = _parse_clock(first, value, end=False), _parse_clock(last, value, end=True)
    if not start < end:
        raise _problem(f"{value!r} ends before it starts; {_RANGE_HINT}")
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
        raise _problem(f"{value!r} is not a network; use ADDRESS/PREFIX, e.g. 10.20.0.0/16")
    try:
        return ip_network(value.strip(), strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(value.strip(), strict=False)
    except ValueError:
        raise _problem(
            f"{value!r} is not an IPv4 or IPv6 network; use ADDRESS/PREFIX, e.g. 10.20.0.0/16"
        ) from None
    raise _problem(f"{value!r} has host bits set; use {loose}")


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
        raise _problem(
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
        raise _problem(f'{value!r} does not start with "/"; {hint}')
    raise _problem(f"{value!r} is not a URL path; {hint}")


def _parse_suffix(value: object) -> str:
    if not isinstance(value, str):
        raise _problem(f"{value!r} is not a domain suffix; write e.g. example.org")
    text = value.strip().lower().rstrip(".")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise _problem(f"{value!r} is not a valid domain name") from None
    labels = text.split(".")
    if not text or not all(
        re.fullmatch(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", x) for x in labels
    ):
        raise _problem(
            f"{value!r} is not a domain suffix; write e.g. example.org "
            "(a suffix matches the name and every name under it, no wildcards)"
        )
    return text


DomainSuffix = Annotated[str, PlainValidator(_parse_suffix)]


# --- the groups ----------------------------------------------------------------------------


class Group(BaseModel):
    """A ``[group]`` of the config file: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SiteSettings(Group):
    name: str = Field(
        default="school",
        min_length=1,
        max_length=100,
        description="Short name of the school, stored on every incident (a trust's schools share "
        "one database).",
    )


class CaptureSettings(Group):
    interfaces: EnvList[str] = Field(
        default_factory=list,
        description='LAN-side interfaces to capture on, e.g. ["eth1"]; empty: every interface '
        "that is up, except loopback.",
    )
    dns_ports: EnvList[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=list,
        description="Extra UDP/TCP ports carrying DNS (53, 5353 and 5355 are always read).",
    )
    snaplen: int = Field(
        default=65535,
        ge=256,
        le=262144,
        description="Bytes kept of each captured frame (256 to 262144).",
    )
    buffer_mb: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Kernel capture buffer per interface, in MiB (1 to 4096).",
    )
    metrics_listen: str = Field(
        default="127.0.0.1:9464",
        description='Where `hallmonitor capture` serves Prometheus metrics, "host:port" '
        '("[::1]:9464" for IPv6); "" turns it off. `hallmonitor up` shows them on the web '
        "app's /metrics instead.",
    )

    @field_validator("metrics_listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        text = value.strip()
        if text:
            _split_listen(text)
        return text

    def metrics_address(self) -> tuple[str, int] | None:
        """``metrics_listen`` as (host, port), or None when it is off."""
        return _split_listen(self.metrics_listen) if self.metrics_listen else None


def _split_listen(text: str) -> tuple[str, int]:
    """Split "127.0.0.1:9464" or "[::1]:9464" into (host, port); a clear error otherwise."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    if not host or (":" in host and not text.startswith("[")) or not port.isdigit():
        raise _problem(f'{text!r} is not "host:port"; write e.g. "127.0.0.1:9464", or "" for off')
    if not 1 <= int(port) <= 65535:
        raise _problem(f"{text!r}: the port must be 1 to 65535")
    return host, int(port)


class ListsSettings(Group):
    shipped: bool = Field(
        default=True,
        description="Load the platform lists shipped with Hall Monitor first. false: only "
        "lists.directories and the review app's own (for a trust that keeps a whole set "
        "itself); either way, no platform list at all is an error.",
    )
    directories: EnvList[Path] = Field(
        default_factory=list,
        description="Extra directories of platform lists (*.txt), loaded after the shipped "
        "lists; a file replaces the file of the same name loaded before it.",
    )
    allow: EnvList[DomainSuffix] = Field(
        default_factory=list,
        description="Domain suffixes never matched, whatever the lists say (the allowlist), e.g. "
        '["education.example.org"].',
    )
    address_ttl_minutes: float = Field(
        default=60,
        gt=0,
        le=1440,
        description="How long an address a platform name resolved to still identifies that "
        "platform for connections without a name, in minutes (more than 0, at most 1440).",
    )


class SegmentSettings(Group):
    name: str = Field(min_length=1, max_length=100, description="Segment name, e.g. staff-wifi.")
    cidrs: EnvList[Cidr] = Field(
        default_factory=list,
        description='IPv4 and IPv6 networks of the segment, e.g. ["10.20.0.0/16", '
        '"2001:db8:20::/48"]. Overlaps: the most specific prefix wins.',
    )
    vlans: EnvList[Annotated[int, Field(ge=1, le=4094)]] = Field(
        default_factory=list,
        description="802.1Q VLAN ids (1 to 4094); a tagged frame's VLAN is looked at before its "
        "address.",
    )
    role: SegmentRole = Field(description="Who uses it: staff, pupil, guest or admin.")
    flag: Annotated[list[Category] | None, NoDecode, BeforeValidator(_env_list)] = Field(
        default=None,
        description="Categories flagged here: social, messaging, video. Default by role: staff "
        "and pupil flag all three, guest and admin none.",
    )

    @model_validator(mode="after")
    def _needs_an_address(self) -> SegmentSettings:
        if not self.cidrs and not self.vlans:
            raise _problem(f"segment {self.name!r} needs at least one of cidrs or vlans")
        return self

    def flags(self) -> frozenset[Category]:
        """The categories flagged: as configured, or the role's default."""
        return DEFAULT_FLAGS[self.role] if self.flag is None else frozenset(self.flag)


class HoursSettings(Group):
    """School hours per weekday; a day left out keeps its default, ``[]`` means no school."""

    monday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Monday's hours."
    )
    tuesday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Tuesday's hours."
    )
    wednesday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Wednesday's hours."
    )
    thursday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Thursday's hours."
    )
    friday: EnvList[TimeRange] = Field(
        default_factory=lambda: list(DEFAULT_DAY), description="Friday's hours."
    )
    saturday: EnvList[TimeRange] = Field(
        default_factory=list, description="Saturday's hours (none by default)."
    )
    sunday: EnvList[TimeRange] = Field(
        default_factory=list, description="Sunday's hours (none by default)."
    )

    def by_weekday(self) -> dict[int, list[tuple[time, time]]]:
        """Weekday number (0 = Monday) to its ranges."""
        return {number: getattr(self, day) for number, day in enumerate(WEEKDAYS)}


class TermSettings(Group):
    start: date = Field(description="First day of term (YYYY-MM-DD).")
    end: date = Field(description="Last day of term, included (YYYY-MM-DD).")
    name: str = Field(default="", description="Optional name, e.g. autumn 2026.")

    @model_validator(mode="after")
    def _in_order(self) -> TermSettings:
        if self.end < self.start:
            raise _problem(f"ends {self.end} before it starts {self.start}")
        return self


def _closure_table(value: object) -> object:
    """A bare date is a one-day closure."""
    if isinstance(value, date | str):
        return {"start": value}
    return value


class ClosureSettings(Group):
    start: date = Field(description="First day closed (YYYY-MM-DD).")
    end: date | None = Field(default=None, description="Last day closed, included; default: start.")
    reason: str = Field(default="", description="Why, e.g. INSET day.")

    @model_validator(mode="after")
    def _in_order(self) -> ClosureSettings:
        if self.end is not None and self.end < self.start:
            raise _problem(f"ends {self.end} before it starts {self.start}")
        return self

    def days(self) -> Iterator[date]:
        """Every closed day."""
        day, last = self.start, self.end or self.start
        while day <= last:
            yield day
            day += timedelta(days=1)


class CalendarSettings(Group):
    timezone: str = Field(
        default="Europe/London",
        description="IANA time zone of the school's clocks, e.g. Europe/London; hours are local "
        "wall-clock time, daylight saving included.",
    )
    hours: HoursSettings = Field(
        default_factory=lambda: HoursSettings(),
        description='School hours per weekday, several ranges a day: monday = ["08:00-12:15", '
        '"13:00-16:00"]. Default Monday to Friday 08:00-16:30, no weekends.',
    )
    terms: list[TermSettings] = Field(
        default_factory=list,
        description="Term dates, {start, end} both included; empty: every week counts.",
    )
    closures: list[Annotated[ClosureSettings, BeforeValidator(_closure_table)]] = Field(
        default_factory=list,
        description="Days without school inside terms: dates, or {start, end, reason} tables.",
    )
    ical_files: EnvList[Path] = Field(
        default_factory=list,
        description="iCalendar (.ics) files whose events are closures (INSET days); every event "
        "closes the days it covers.",
    )
    bank_holidays_file: Path | None = Field(
        default=None,
        description="A file in the gov.uk bank holidays JSON format; its holidays are closures.",
    )
    bank_holidays_division: Literal["england-and-wales", "scotland", "northern-ireland"] = Field(
        default="england-and-wales", description="Which division of the bank holidays file applies."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError):
            raise _problem(
                f"{value!r} is not a known time zone; use an IANA name such as Europe/London"
            ) from None
        return value

    def closure_days(self) -> dict[date, str]:
        """Every day closed by the ``closures`` key, with its reason."""
        return {day: closure.reason for closure in self.closures for day in closure.days()}


class IncidentSettings(Group):
    idle_gap_minutes: float = Field(
        default=10,
        gt=0,
        le=1440,
        description="An incident closes after this many minutes without a hit (more than 0).",
    )
    max_evidence: int = Field(
        default=50, ge=1, le=10000, description="Evidence items kept per incident (1 to 10000)."
    )
    floor_connections: int = Field(
        default=DEFAULT_FLOOR.min_connections,
        ge=0,
        le=1000,
        description="An incident with fewer connections to the platform's servers than this "
        "(0 to 1000) and under floor_minutes active minutes is low: kept and counted, but out "
        "of the default review queue and the weekly email.",
    )
    floor_minutes: float = Field(
        default=DEFAULT_FLOOR.min_minutes,
        ge=0,
        le=1440,
        description="Active minutes (0 to 1440) from which an incident is above the floor "
        "whatever its connections; 0 turns the floor off.",
    )

    def floor(self) -> Floor:
        """The confidence floor these settings describe."""
        return Floor(self.floor_connections, self.floor_minutes)


_DRIVERS = {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}
_URL_HINT = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


class DatabaseSettings(Group):
    url: SecretStr = Field(
        default=SecretStr("sqlite:////var/lib/hallmonitor/hallmonitor.db"),
        description="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
        "(postgresql:// means psycopg 3). Default: sqlite:///<data_dir>/hallmonitor.db. Its "
        "password is never printed.",
    )
    data_dir: Path = Field(
        default=Path("/var/lib/hallmonitor"), description="Where the daemon keeps its state."
    )
    spool_dir: Path = Field(
        default=Path("/var/lib/hallmonitor/spool"),
        description="Where writes wait while the database is unreachable. Default: "
        "<data_dir>/spool.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=100000, description="Rows per insert batch (1 to 100000)."
    )
    flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Longest wait before a partial batch is written, seconds.",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_from_data_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("data_dir", ""), str | Path):
            data_dir = Path(data.get("data_dir", "/var/lib/hallmonitor"))
            data = dict(data)
            data.setdefault("url", f"sqlite:///{data_dir}/hallmonitor.db")
            data.setdefault("spool_dir", data_dir / "spool")
        return data

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        for alias in ("postgresql://", "postgres://"):
            if text.startswith(alias):
                text = "postgresql+psycopg://" + text[len(alias) :]
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise _problem(f"{_hide_password(text)!r} is not a database URL; {_URL_HINT}") from None
        if url.drivername not in _DRIVERS:
            raise _problem(
                f"{_hide_password(text)!r}: {url.drivername} is not supported; {_URL_HINT}"
            )
        if not url.database:
            raise _problem(f"{_hide_password(text)!r} names no database; {_URL_HINT}")
        return SecretStr(text)

    def display_url(self) -> str:
        """The URL with its password replaced by ``***``, for logs and ``config check``."""
        return make_url(self.url.get_secret_value()).render_as_string(hide_password=True)


class RetentionSettings(Group):
    observations_days: int = Field(
        default=30, ge=1, le=36500, description="Days matched observations are kept."
    )
    incidents_days: int = Field(default=365, ge=1, le=36500, description="Days incidents are kept.")
    false_positive_days: int = Field(
        default=30, ge=1, le=36500, description="Days incidents marked false positive are kept."
    )


class WebSettings(Group):
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the review app listens on: loopback behind a reverse proxy, or the "
        "admin VLAN's address.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port of the review app.")
    base_url: str = Field(
        default="",
        description="The address people open, used for links in emails, e.g. "
        '"https://hallmonitor.school.example". Default: http://<host>:<port>.',
    )
    root_path: Annotated[str, PlainValidator(_parse_root_path)] = Field(
        default="",
        description='Path prefix when a reverse proxy serves the app below a path, e.g. "/monitor" '
        '(it starts with "/"; a trailing "/" is dropped); "": the app is at the root.',
    )
    forwarded_allow_ips: EnvList[ProxyAddress] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxies whose X-Forwarded-For and "
        'X-Forwarded-Proto headers are believed, e.g. ["127.0.0.1", "::1"] for nginx on this '
        'host; [] (the default): no proxy, every client is who it connects as; ["*"]: every '
        "client (only when nothing but the proxy can reach the app).",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=1440, description="Sign out after this many idle minutes (1 to 1440)."
    )
    session_max_hours: int = Field(
        default=12,
        ge=1,
        le=168,
        description="Sign out after this many hours in any case (1 to 168).",
    )
    secure_cookies: Literal["auto", "always", "never"] = Field(
        default="auto",
        description='Mark cookies Secure: "auto" when the request came over HTTPS (directly or '
        'through a trusted proxy), "always" or "never".',
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed logins in a row before the account is locked for a while (1 to 100).",
    )
    login_lockout_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="How long a locked account waits (1 to 1440 minutes).",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description='Bearer token that /metrics requires ("Authorization: Bearer ..."); "": '
        "/metrics is open like /healthz (it carries counts only, never a person).",
    )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _every_client_alone(cls, value: list[str]) -> list[str]:
        if TRUST_EVERY_CLIENT in value and len(value) > 1:
            raise _problem(
                f'"{TRUST_EVERY_CLIENT}" already trusts every client: give it alone, '
                f'["{TRUST_EVERY_CLIENT}"], or list only the proxies\' addresses'
            )
        return value

    def public_url(self) -> str:
        """The address to put in links: ``base_url``, else built from host and port."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.root_path}"


EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class MailSettings(Group):
    enabled: bool = Field(
        default=False, description="Send the weekly summary by email (needs host and recipients)."
    )
    host: str = Field(default="localhost", min_length=1, description="SMTP server.")
    port: int = Field(
        default=587, ge=1, le=65535, description="SMTP port: 587 with starttls, 465 with tls, 25."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description='"starttls" (upgrade a plain connection), "tls" (implicit TLS, port 465) or '
        '"none" (only for a relay on the same host).',
    )
    username: str = Field(default="", description="SMTP AUTH user; empty: no AUTH.")
    password: SecretStr = Field(
        default=SecretStr(""),
        description="SMTP AUTH password. Prefer HALLMONITOR_MAIL__PASSWORD or password_file to "
        "keeping it in this file.",
    )
    password_file: Path | None = Field(
        default=None, description="A file holding the SMTP password (e.g. a systemd credential)."
    )
    from_address: EmailAddress = Field(
        default="hallmonitor@localhost", description="The From: address of reports."
    )
    reviewers: EnvList[EmailAddress] = Field(
        default_factory=list,
        description="Who gets the reviewer version of the weekly summary (headteacher, deputy).",
    )
    governors: EnvList[EmailAddress] = Field(
        default_factory=list,
        description="Who gets the governor version: aggregate figures only, never a device.",
    )
    timeout_s: float = Field(
        default=30, gt=0, le=300, description="Seconds to wait for the SMTP server (up to 300)."
    )
    ca_file: Path | None = Field(
        default=None,
        description="A PEM file of the certificate authorities trusted for the SMTP server's "
        "certificate (a private CA); default: the system's.",
    )

    def smtp_password(self) -> str:
        """The password from ``password_file`` if set, else ``password``."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return self.password.get_secret_value()


class ReportSettings(Group):
    weekly_day: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = Field(default="monday", description="Day the weekly summary is sent (school time zone).")
    weekly_time: str = Field(
        default="07:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Time of day (HH:MM, school time zone) the weekly summary is sent.",
    )
    retry_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="After a failed send, try again after this many minutes (1 to 1440).",
    )
    all_sites: bool = Field(
        default=False,
        description="false: the reports cover this sensor's school (site.name) only; true: "
        "every school writing to the database, for a trust's office.",
    )


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class LoggingSettings(Group):
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")


def _parse_test_name(value: object) -> str:
    try:
        return _parse_suffix(value)
    except PydanticCustomError:
        raise _problem(f"{value!r} is not a host name; write e.g. www.facebook.com") from None


def _parse_resolver(value: object) -> str:
    text = value.strip() if isinstance(value, str) else value
    if text == "":
        return ""
    try:
        return str(ip_address(str(text)))
    except ValueError:
        raise _problem(
            f"{value!r} is not an IP address; name the DNS server by address, e.g. 10.20.0.1, "
            'or "" for the system resolver'
        ) from None


class SelftestSettings(Group):
    """``hallmonitor selftest``: a DNS lookup the sensor must see and classify."""

    name: Annotated[str, PlainValidator(_parse_test_name)] = Field(
        default="www.facebook.com",
        description="The name looked up; it must be in the platform lists.",
    )
    platform: str = Field(
        default="facebook",
        description='The platform the name must be classified as (a list file\'s name); "": any.',
    )
    resolver: Annotated[str, PlainValidator(_parse_resolver)] = Field(
        default="",
        description='The DNS server asked, by IP address; "": the system resolver '
        "(/etc/resolv.conf). The query must cross a captured interface.",
    )
    timeout_s: float = Field(
        default=3,
        gt=0,
        le=60,
        description="Seconds to wait for the lookup (more than 0, up to 60); no answer is needed.",
    )


class Settings(BaseSettings):
    """Every setting of Hall Monitor, grouped as in the config file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    site: SiteSettings = Field(default_factory=lambda: SiteSettings(), description="The school.")
    capture: CaptureSettings = Field(
        default_factory=lambda: CaptureSettings(), description="Live capture."
    )
    lists: ListsSettings = Field(
        default_factory=lambda: ListsSettings(), description="Platform lists."
    )
    segments: list[SegmentSettings] = Field(
        default_factory=list,
        description="Network segments ([[segments]] tables); addresses in none are never flagged.",
    )
    calendar: CalendarSettings = Field(
        default_factory=lambda: CalendarSettings(), description="The school day."
    )
    incidents: IncidentSettings = Field(
        default_factory=lambda: IncidentSettings(), description="Grouping hits into incidents."
    )
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings(), description="Where incidents are stored."
    )
    retention: RetentionSettings = Field(
        default_factory=lambda: RetentionSettings(), description="How long records are kept."
    )
    logging: LoggingSettings = Field(
        default_factory=lambda: LoggingSettings(), description="Logging."
    )
    web: WebSettings = Field(default_factory=lambda: WebSettings(), description="The review app.")
    mail: MailSettings = Field(
        default_factory=lambda: MailSettings(), description="Sending reports by email."
    )
    reports: ReportSettings = Field(
        default_factory=lambda: ReportSettings(), description="When reports are sent."
    )
    selftest: SelftestSettings = Field(
        default_factory=lambda: SelftestSettings(),
        description="The self-test lookup (hallmonitor selftest).",
    )

    def report_site(self) -> str | None:
        """The school the reports cover: this one's site, or None for every site."""
        return None if self.reports.all_sites else self.site.name

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: ``load_settings`` layers the file and the environment."""
        del settings_cls, env_settings, dotenv_settings, file_secret_settings
        return (init_settings,)


# --- loading -------------------------------------------------------------------------------


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items()}


_PATH_KEYS = (
    ("lists", "directories"),
    ("calendar", "ical_files"),
    ("calendar", "bank_holidays_file"),
    ("database", "data_dir"),
    ("database", "spool_dir"),
    ("mail", "ca_file"),
)


def default_config_path(
    *, environ: Mapping[str, str] | None = None, system_path: Path = SYSTEM_CONFIG_PATH
) -> Path | None:
    """``$HALLMONITOR_CONFIG`` if set, else ``/etc/hallmonitor/config.toml`` if it exists."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    return system_path if system_path.is_file() else None


def load_settings(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from the TOML file at ``path`` (none: defaults) overridden by ``environ``
    (default ``os.environ``). ``base`` (``up --demo``'s built-in settings) sits under the file.
    Raises ``ConfigError`` listing every problem."""
    environ = os.environ if environ is None else environ
    file_data = _read_toml(path) if path is not None else {}
    if path is not None:
        _resolve_paths(file_data, path.parent)
    file_data = _merge(dict(base or {}), file_data)
    problems = _unknown_env_groups(environ)
    try:
        env_data = _MappingEnvSource(Settings, environ)()
    except SettingsError as e:
        problems.append(_describe_env_error(str(e), environ))
        env_data = {}
    source = str(path) if path is not None else "settings"
    env_keys = {".".join(key): name for key, name in _env_origins(environ)}
    try:
        settings = Settings(**_merge(file_data, env_data))
    except ValidationError as e:
        problems += [_describe(error, env_keys) for error in e.errors()]
        raise _collected(source, problems) from None
    problems += _cross_check(settings)
    if problems:
        raise _collected(source, problems)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    where = f"config file {path}"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            where, "not found; copy deploy/config.example.toml there, or name another file"
        ) from None
    except OSError as e:
        raise ConfigError(where, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(where, f"line {line}: not UTF-8 text (TOML)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        line = int(found[1]) if found else text.count("\n") + 1
        message = message[: found.start()] if found else message.split(" (at ")[0]
        raise ConfigError(
            where, f"line {line}: {message[:1].lower()}{message[1:]} (TOML)"
        ) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are taken from the file's directory."""

    def resolve(value: object) -> object:
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(base / value)
        return value

    for group, key in _PATH_KEYS:
        table = data.get(group)
        if not isinstance(table, dict) or key not in table:
            continue
        value = table[key]
        table[key] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)


def _unknown_env_groups(environ: Mapping[str, str]) -> list[str]:
    """``HALLMONITOR_CAPTUR__SNAPLEN`` would be silently ignored: name it instead."""
    problems = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper:
            continue
        group = upper[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if group not in Settings.model_fields:
            problems.append(
                f"{name}: {group!r} is not a settings group; use one of "
                + ", ".join(Settings.model_fields)
            )
    return problems


def _describe_env_error(message: str, environ: Mapping[str, str]) -> str:
    """pydantic-settings says which field's JSON failed; name the variables instead."""
    found = re.search(r'field "([^"]+)"', message)
    group = found[1] if found else ""
    names = [name for key, name in _env_origins(environ) if key[0] == group] or [ENV_PREFIX + "*"]
    return f"{', '.join(sorted(names))}: not valid JSON; give a JSON list [...] or table {{...}}"


def _env_origins(environ: Mapping[str, str]) -> Iterator[tuple[tuple[str, ...], str]]:
    for name in environ:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper != CONFIG_ENV:
            yield tuple(upper[len(ENV_PREFIX) :].lower().split("__")), name


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` wins; tables merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _collected(source: str, problems: Sequence[str]) -> ConfigError:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return ConfigError(source, count + "".join(f"\n  {p}" for p in problems), tuple(problems))


# --- turning pydantic's errors into one line each ------------------------------------------


def _key(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _show(value: object, key: str) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if key.endswith("database.url") and isinstance(value, str):
        value = _hide_password(value)
    text = repr(value) if not isinstance(value, date) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys of the table at ``loc`` (for 'unknown key' messages)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_in(get_args(annotation)[0])
    if origin in (list, Union) or (origin is not None and str(origin) == "types.UnionType"):
        for argument in get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_PHRASES: dict[str, str] = {
    # pydantic error type: what follows the value; {name} is filled from the error's context
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "bool_parsing": "is not true or false",
    "string_type": "is not a string; use quotes",
    "list_type": "is not a list; use [...]",
    "model_type": "is not a table; use [group] or {{key = value}}",
    "model_attributes_type": "is not a table; use [group] or {{key = value}}",
    "dict_type": "is not a table; use {{key = value}}",
    "date_parsing": "is not a date; use YYYY-MM-DD",
    "date_from_datetime_parsing": "is not a date; use YYYY-MM-DD",
    "date_from_datetime_inexact": "is not a date; use YYYY-MM-DD",
    "date_type": "is not a date; use YYYY-MM-DD",
    "path_type": "is not a path",
    "string_too_short": "is empty; give a name",
    "string_too_long": "is too long; use at most {max_length} characters",
    "greater_than_equal": "is too small; use {ge} or more",
    "greater_than": "is too small; use more than {gt}",
    "less_than_equal": "is too large; use {le} or less",
    "less_than": "is too large; use less than {lt}",
    "enum": "is not allowed; use one of {choices}",
    "literal_error": "is not allowed; use one of {choices}",
}


def _describe(error: ErrorDetails, env_keys: Mapping[str, str]) -> str:
    """One line: key, value, what is allowed (and the variable, if it came from the environment)."""
    loc = error["loc"]
    key = _key(loc) or "settings"
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        line = f"{key}: unknown key; allowed keys: {', '.join(allowed)}"
    elif kind == "missing":
        line = f"{key}: missing; this key is required"
    elif kind == "config":
        line = f"{key}: {ctx['message']}"
    else:
        phrase = _PHRASES.get(kind)
        if phrase is None:
            said = f"is not valid: {error['msg']}"
        else:
            limits = {
                name: int(value) if isinstance(value, float) and value.is_integer() else value
                for name, value in ctx.items()
            }
            said = phrase.format(**limits, choices=_choices(str(ctx.get("expected", ""))))
        line = f"{key}: {_show(error['input'], key)} {said}"
    names = _origins(tuple(str(part) for part in loc), env_keys)
    return f"{line} (from {', '.join(names)})" if names else line


def _origins(loc: tuple[str, ...], env_keys: Mapping[str, str]) -> list[str]:
    """The variables that set this key, a table holding it, or keys inside it."""
    for length in range(len(loc), 0, -1):
        name = env_keys.get(".".join(loc[:length]))
        if name is not None:
            return [name]
    prefix = ".".join(loc) + "."
    return sorted(name for key, name in env_keys.items() if key.startswith(prefix))


def _cross_check(settings: Settings) -> list[str]:
    """What no single key can see: names, VLANs and networks used twice."""
    problems = []
    names: dict[str, int] = {}
    vlans: dict[int, int] = {}
    networks: dict[IPv4Network | IPv6Network, int] = {}
    for index, segment in enumerate(settings.segments):
        first = names.setdefault(segment.name, index)
        if first != index:
            problems.append(
                f"segments[{index}].name: {segment.name!r} is already segments[{first}]'s name; "
                "use a different name"
            )
        for vlan in segment.vlans:
            first = vlans.setdefault(vlan, index)
            if first != index:
                problems.append(
                    f"segments[{index}].vlans: VLAN {vlan} is already in segments[{first}]; a "
                    "VLAN belongs to one segment"
                )
        for network in segment.cidrs:
            first = networks.setdefault(network, index)
            if first != index:
                problems.append(
                    f"segments[{index}].cidrs: {network} is already in segments[{first}]; a "
                    "network belongs to one segment (a smaller one inside it may differ)"
                )
    return problems


# --- from settings to the engine's values --------------------------------------------------


def load_closures(
    ical_files: Sequence[Path],
    bank_holidays_file: Path | None,
    division: str,
    tz: str | None = None,
) -> dict[date, str]:
    """Closed days from the iCalendar files and the gov.uk bank holidays file, with reasons.
    Raises ``ConfigError`` naming the key and the file."""
    days: dict[date, str] = {}
    for index, path in enumerate(ical_files):
        text = _read_text(f"calendar.ical_files[{index}]", path)
        try:
            closures = parse_ical_closures(text, tz)
        except ValueError as e:
            raise ConfigError(f"calendar.ical_files[{index}]", f"{path}: {e}") from None
        for first, last, reason in closures:
            day = first
            while day <= last:
                days.setdefault(day, reason)
                day += timedelta(days=1)
    if bank_holidays_file is not None:
        text = _read_text("calendar.bank_holidays_file", bank_holidays_file)
        try:
            holidays = parse_govuk_bank_holidays(text, division)
        except ValueError as e:
            raise ConfigError("calendar.bank_holidays_file", f"{bank_holidays_file}: {e}") from None
        for day, title in holidays:
            days.setdefault(day, title)
    return days


def _read_text(key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(key, f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path}: not UTF-8 text") from None


def build_segments(settings: Settings) -> Segments:
    """The configured segments, ready for lookups."""
    return Segments(
        [
            Segment(
                name=segment.name,
                role=segment.role,
                networks=tuple(segment.cidrs),
                vlans=frozenset(segment.vlans),
                flags=segment.flags(),
            )
            for segment in settings.segments
        ]
    )


def build_calendar(settings: Settings) -> SchoolCalendar:
    """The school calendar, closures from the file and the imported calendars (reads files)."""
    calendar = settings.calendar
    imported = load_closures(
        calendar.ical_files,
        calendar.bank_holidays_file,
        calendar.bank_holidays_division,
        calendar.timezone,
    )
    return SchoolCalendar(
        calendar.timezone,
        calendar.hours.by_weekday(),
        [(term.start, term.end) for term in calendar.terms],
        {**imported, **calendar.closure_days()},
    )


def build_policy(settings: Settings) -> Policy:
    """Segments and calendar from settings (reads the closure files named in them)."""
    return Policy(build_segments(settings), build_calendar(settings))


def run_config_check(
    path: Path | None, *, environ: Mapping[str, str] | None = None
) -> tuple[int, list[str]]:
    """``hallmonitor config check``: exit status and lines to print (``ok: ...`` or errors)."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = default_config_path(environ=environ)
    where = str(path) if path is not None else "no config file (defaults and environment)"
    try:
        settings = load_settings(path, environ=environ)
        calendar = build_calendar(settings)
    except ConfigError as e:
        return 1, [
            f"error: {p}" if p.startswith("config file") else f"error: {where}: {p}"
            for p in e.problems
        ]
    lines = [
        f"ok: {where}: {len(settings.segments)} segments, timezone {calendar.tz}, "
        f"{len(calendar.terms)} terms, {len(calendar.closures)} closures",
        f"database: {settings.database.display_url()}",
    ]
    if not settings.segments:
        lines.append("warning: no segments: every address is unsegmented and nothing is flagged")
    if not calendar.terms:
        lines.append("warning: no terms: every week of the year counts as school time")
    web = settings.web
    if web.base_url.startswith("https://") and not web.forwarded_allow_ips:
        lines.append(
            "warning: web.base_url is https but web.forwarded_allow_ips is empty: behind a "
            'reverse proxy, list its address (["127.0.0.1", "::1"] for nginx on this host), '
            "or the audit log records the proxy's address for everyone"
        )
    return 0, lines
