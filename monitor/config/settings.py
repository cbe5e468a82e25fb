"""The settings schema: one pydantic model per ``[group]`` of the config file, and ``Settings``.

Constructing ``Settings(...)`` directly validates the values given and reads nothing else;
``monitor.config.loading.load_settings`` layers the file and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.confidence import DEFAULT_FLOOR, Floor
from monitor.config.calendar import CalendarSettings
from monitor.config.fields import (
    Cidr,
    DomainSuffix,
    EnvList,
    Group,
    HostName,
    ResolverAddress,
    env_list,
    hide_password,
    problem,
)
from monitor.config.review import MailSettings, ReportSettings, WebSettings
from monitor.policy import DEFAULT_FLAGS
from monitor.values import Category, SegmentRole

ENV_PREFIX = "HALLMONITOR_"


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
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes that decode packets (1 to 64): above 1, the kernel shares each "
        "interface's packets among them by flow (PACKET_FANOUT), one core each; the daemon's "
        "main process classifies and writes. 1 decodes in the main process.",
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
        raise problem(f'{text!r} is not "host:port"; write e.g. "127.0.0.1:9464", or "" for off')
    if not 1 <= int(port) <= 65535:
        raise problem(f"{text!r}: the port must be 1 to 65535")
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
    flag: Annotated[list[Category] | None, NoDecode, BeforeValidator(env_list)] = Field(
        default=None,
        description="Categories flagged here: social, messaging, video. Default by role: staff "
        "and pupil flag all three, guest and admin none.",
    )

    @model_validator(mode="after")
    def _needs_an_address(self) -> SegmentSettings:
        if not self.cidrs and not self.vlans:
            raise problem(f"segment {self.name!r} needs at least one of cidrs or vlans")
        return self

    def flags(self) -> frozenset[Category]:
        """The categories flagged: as configured, or the role's default."""
        return DEFAULT_FLAGS[self.role] if self.flag is None else frozenset(self.flag)


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
            raise problem(f"{hide_password(text)!r} is not a database URL; {_URL_HINT}") from None
        if url.drivername not in _DRIVERS:
            raise problem(
                f"{hide_password(text)!r}: {url.drivername} is not supported; {_URL_HINT}"
            )
        if not url.database:
            raise problem(f"{hide_password(text)!r} names no database; {_URL_HINT}")
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


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class LoggingSettings(Group):
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")


class SelftestSettings(Group):
    """``hallmonitor selftest``: a DNS lookup the sensor must see and classify."""

    name: HostName = Field(
        default="www.facebook.com",
        description="The name looked up; it must be in the platform lists.",
    )
    platform: str = Field(
        default="facebook",
        description='The platform the name must be classified as (a list file\'s name); "": any.',
    )
    resolver: ResolverAddress = Field(
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
