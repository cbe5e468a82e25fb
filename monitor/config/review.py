"""The ``[web]``, ``[mail]`` and ``[reports]`` groups: the review app, and the weekly summary
sent by email."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from monitor.config.fields import TRUST_EVERY_CLIENT, EnvList, Group, ProxyAddress, UrlPath, problem


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
    root_path: UrlPath = Field(
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
            raise problem(
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
