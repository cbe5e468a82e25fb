"""A real SMTP server, a school's week in a real database, and headless Chromium for the reports.

``smtp`` starts an aiosmtpd ``Controller`` on 127.0.0.1 with a free port; its handler keeps every
envelope (``server.messages`` parses them with ``email``). STARTTLS and implicit TLS use a
``trustme`` certificate authority whose PEM file the client is given as ``mail.ca_file``.

``seed_school`` writes week 2026-W47 (Monday 16 to Sunday 22 November 2026, Europe/London is
UTC then) and the week before: incidents of two staff devices and a pupil's phone, matched
observations, device bindings, anonymous counters (Friday has none: the capture was down),
checks and list changes. ``device_identifiers`` reads back every identity the database holds,
so privacy tests check against the database rather than a fixed list.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from playwright.sync_api import Browser
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session as DbSession

from monitor.config.settings import Settings
from monitor.reports.command import run_report_weekly
from monitor.reports.governors import run_report_governors
from monitor.store.db import make_engine
from monitor.store.models import (
    CheckRecord,
    DailyCounterRecord,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ListChangeRecord,
    ObservationRecord,
    UserRecord,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
"""Screenshots land here (gitignored)."""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERNAME, PASSWORD = "hallmonitor", "correct horse battery staple"
PUBLIC_URL = "https://hm.hill-school.example"
SITE = "Hill School"
"""The school's site name: its settings' site.name and the site of its rows."""
WEEK_START = date(2026, 11, 16)
"""Monday of 2026-W47."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class KeepingHandler:
    """Keeps every envelope; ``reply`` lets a test make the server refuse (e.g. ``451 ...``)."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str | None] = field(default_factory=list)
    """The AUTH login of each accepted message's session (None: no AUTH)."""
    reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reply is not None:
            return self.reply
        with self.lock:
            self.envelopes.append(envelope)
            login = session.login_data
            self.logins.append(login.decode() if isinstance(login, bytes) else login)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A running aiosmtpd server and what it received."""

    def __init__(self, controller: Controller, handler: KeepingHandler, ca_file: Path) -> None:
        self.controller = controller
        self.handler = handler
        self.ca_file = ca_file
        self.port = controller.port

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            envelopes = list(self.handler.envelopes)
        parsed = []
        for envelope in envelopes:
            content = envelope.original_content or b""
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    @property
    def recipients(self) -> list[list[str]]:
        with self.handler.lock:
            return [list(e.rcpt_tos) for e in self.handler.envelopes]

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Certificates:
    ca: trustme.CA
    ca_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Certificates(ca, path)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USERNAME, PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


StartSmtp = Callable[..., SmtpServer]


@pytest.fixture
def start_smtp(certificates: Certificates) -> Iterator[StartSmtp]:
    """Starts servers: ``start_smtp(security="starttls", auth=True, port=None)``."""
    running: list[SmtpServer] = []

    def start(security: str = "none", *, auth: bool = False, port: int | None = None) -> SmtpServer:
        handler = KeepingHandler()
        kwargs: dict[str, Any] = {}
        if security == "starttls":
            kwargs.update(tls_context=certificates.server_context(), require_starttls=True)
        if security == "tls":
            kwargs["ssl_context"] = certificates.server_context()
        if auth and security == "tls":
            # aiosmtpd only counts STARTTLS as TLS for AUTH; here the whole connection is TLS.
            kwargs.update(authenticator=_authenticate, auth_required=False, auth_require_tls=False)
        elif auth:
            kwargs.update(authenticator=_authenticate, auth_required=True, auth_require_tls=True)
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
        controller.start()
        server = SmtpServer(controller, handler, certificates.ca_file)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def smtp(start_smtp: StartSmtp) -> SmtpServer:
    """A plain SMTP server (``mail.security = "none"``)."""
    return start_smtp()


def make_settings(
    engine_url: str,
    tmp_path: Path,
    port: int,
    *,
    mail: dict[str, Any] | None = None,
    **groups: Any,
) -> Settings:
    """Settings for a school using ``engine_url`` and the SMTP server on ``port``."""
    mail_settings: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "hallmonitor@hill-school.example",
        "reviewers": ["head@hill-school.example"],
        "governors": ["governor@hill-school.example"],
        "timeout_s": 5,
    }
    mail_settings.update(mail or {})
    return Settings.model_validate(
        {
            "site": {"name": SITE},
            "database": {"url": engine_url, "data_dir": tmp_path / "data"},
            "web": {"base_url": PUBLIC_URL},
            "mail": mail_settings,
            **groups,
        }
    )


# --- a school's week in the database -------------------------------------------------------


@dataclass(frozen=True)
class DeviceSeed:
    ip: str
    mac: str
    host_name: str | None
    label: str | None
    segment: str
    role: str


STAFF_LAPTOP = DeviceSeed(
    "10.20.4.23",
    "3c:22:fb:81:4e:a1",
    "rm4-lt-0731",
    "Room 4 laptop (Ms Okafor)",
    "staff-wifi",
    "staff",
)
OFFICE_PC = DeviceSeed(
    "10.20.9.141", "f4:8e:38:02:c7:5d", "office-pc-7", None, "staff-wifi", "staff"
)
PUPIL_PHONE = DeviceSeed(
    "10.30.17.77", "9a:41:0e:d2:63:b8", "jaydens-iphone", None, "pupil-wifi", "pupil"
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def incident(
    key: str,
    device: DeviceSeed,
    platform: str,
    start: datetime,
    *,
    minutes: float = 12,
    status: str = "new",
    outcome: str | None = None,
) -> IncidentRecord:
    return IncidentRecord(
        key=key,
        site=SITE,
        platform=platform,
        category="social",
        device_ip=device.ip,
        device_mac=device.mac,
        device_host_name=device.host_name,
        device_segment=device.segment,
        device_label=device.label,
        role=device.role,
        start_at=start,
        end_at=start + timedelta(minutes=minutes),
        active_minutes=minutes,
        confidence=0.9,
        hit_count=20,
        state="closed",
        evidence=[{"ts": start.timestamp(), "proto": "tls", "name": f"www.{platform}.com"}],
        status=status,
        outcome=outcome,
        created_at=start,
        updated_at=start,
    )


def seed_school(engine: Engine) -> None:
    """Week 2026-W47 and the week before, as described in the module docstring."""
    mon = WEEK_START
    tue, wed, thu, fri = (mon + timedelta(days=n) for n in range(1, 5))
    prev_mon = mon - timedelta(days=7)
    rows: list[Any] = [
        # this week: 5 incidents, 3 waiting for review
        incident("w47-1", STAFF_LAPTOP, "instagram", at(mon, 10, 5)),
        incident("w47-2", STAFF_LAPTOP, "instagram", at(tue, 13, 40), minutes=25),
        incident("w47-3", PUPIL_PHONE, "tiktok", at(wed, 11, 0), status="in_review"),
        incident(
            "w47-4", OFFICE_PC, "facebook", at(thu, 9, 30), status="closed", outcome="no_action"
        ),
        incident(
            "w47-5",
            PUPIL_PHONE,
            "instagram",
            at(thu, 14, 15),
            status="closed",
            outcome="false_positive",
        ),
        # the week before: 2 incidents, both reviewed
        incident(
            "w46-1",
            STAFF_LAPTOP,
            "instagram",
            at(prev_mon, 10),
            status="closed",
            outcome="informal_conversation",
        ),
        incident(
            "w46-2",
            OFFICE_PC,
            "x",
            at(prev_mon + timedelta(days=2), 15),
            status="closed",
            outcome="no_action",
        ),
    ]
    for device in (STAFF_LAPTOP, OFFICE_PC, PUPIL_PHONE):
        rows.append(
            DeviceRecord(
                site=SITE,
                mac=device.mac,
                ip=device.ip,
                host_name=device.host_name,
                label=device.label,
                first_seen=at(prev_mon, 8),
                last_seen=at(thu, 16),
            )
        )
        rows.append(
            ObservationRecord(
                site=SITE,
                ts=at(mon, 10, 5),
                proto="tls",
                name="www.instagram.com",
                client_ip=device.ip,
                client_mac=device.mac,
                server_ip="157.240.221.174",
                server_port=443,
                flags="",
                platform="instagram",
                presence="primary",
                via="name",
                incident_key="w47-1",
            )
        )
        rows.append(
            EmbeddedCountRecord(
                site=SITE,
                day=tue,
                device_ip=device.ip,
                device_mac=device.mac,
                platform="facebook",
                count=4,
            )
        )
    for day in (mon, tue, wed, thu):  # Friday: nothing (the capture was down)
        rows += [
            DailyCounterRecord(site=SITE, day=day, name="observations.dns", count=41_000),
            DailyCounterRecord(site=SITE, day=day, name="observations.tls", count=23_500),
            DailyCounterRecord(site=SITE, day=day, name="observations.quic", count=6_100),
            DailyCounterRecord(site=SITE, day=day, name="matches.outside_school_time", count=35),
            DailyCounterRecord(site=SITE, day=day, name="matches.unsegmented", count=3),
            DailyCounterRecord(site=SITE, day=day, name="flags.ech", count=120),
        ]
    rows += [
        CheckRecord(
            at=at(tue, 7), kind="selftest", ok=True, detail="5/5", username=None, site=SITE
        ),
        CheckRecord(
            at=at(wed, 7),
            kind="selftest",
            ok=False,
            detail="tiktok missed",
            username=None,
            site=SITE,
        ),
        CheckRecord(
            at=at(thu, 12), kind="doctor", ok=True, detail="ok", username="it-admin", site=SITE
        ),
        ListChangeRecord(
            at=at(wed, 15),
            username="it-admin",
            action="add",
            list_name="allowlist",
            suffix="education.instagram-partner.example",
            presence=None,
            reason="Art department uses it for the exhibition; agreed by the head",
            approved_by="head",
        ),
        UserRecord(
            username="deputy",
            display_name="Deputy Head",
            email="deputy@hill-school.example",
            password_hash="x",
            role="reviewer",
            created_at=at(prev_mon, 8),
        ),
        UserRecord(
            username="old-governor",
            display_name="Former Governor",
            email="former@hill-school.example",
            password_hash="x",
            role="governor",
            disabled=True,
            created_at=at(prev_mon, 8),
        ),
    ]
    with DbSession(engine) as db, db.begin():
        db.add_all(rows)


def device_identifiers(engine: Engine) -> set[str]:
    """Every device address, MAC, host name and label the database holds."""
    columns = [
        IncidentRecord.device_ip,
        IncidentRecord.device_mac,
        IncidentRecord.device_host_name,
        IncidentRecord.device_label,
        DeviceRecord.ip,
        DeviceRecord.mac,
        DeviceRecord.host_name,
        DeviceRecord.label,
        ObservationRecord.client_ip,
        ObservationRecord.client_mac,
        EmbeddedCountRecord.device_ip,
        EmbeddedCountRecord.device_mac,
    ]
    found: set[str] = set()
    with DbSession(engine) as db:
        for column in columns:
            found |= {value for value in db.scalars(select(column)) if value}
    return found


@pytest.fixture
def school(engine_url: str) -> Iterator[Engine]:
    """An engine on a fresh database holding ``seed_school``'s records."""
    engine = make_engine(engine_url)
    seed_school(engine)
    yield engine
    engine.dispose()


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def take_screenshot(browser: Browser, html_file: Path, name: str, width: int) -> Path:
    """A full-page PNG of ``html_file`` under tests/artifacts/, ``width`` pixels wide."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html_file.as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    page.close()
    # Nothing but the file itself was loaded: no remote images, fonts or scripts.
    assert requests == [html_file.as_uri()]
    return path


# --- reports as a person reads them (test_coverage, test_labels) ---------------------------

OTHER_SCHOOL = "Brook School"
"""A second school of the trust, in the same database, whose sensor sent nothing."""
MONDAY_0705 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)
"""The weekly summary of 16 to 22 November (2026-W47) is due."""
THURSDAY_NOON = datetime(2026, 11, 19, 12, tzinfo=UTC)
"""Thursday of 2026-W47: Friday 20 November has not happened yet."""
TERM = (date(2026, 9, 3), date(2026, 12, 18))
ISO_WEEK_CODE = re.compile(r"\bW\d{1,2}\b|\bweek \d{1,2}\b", re.IGNORECASE)
"""``2026-W47``, ``W47`` or ``week 47``: how a week must never be named to a person."""
INTERNAL_NAME = re.compile(r"\b(?:capture|matches|flags|observations)\.[a-z_-]+")


def settings_of(site: str, engine_url: str, tmp_path: Path, port: int) -> Settings:
    return make_settings(engine_url, tmp_path, port, site={"name": site})


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def preview_text(settings: Settings, week: str, now: datetime) -> str:
    status, lines = run_report_weekly(
        settings, week=week, preview=True, send=False, resend=False, out_dir=None, now=now
    )
    assert status == 0, lines
    return "\n".join(lines)


def governors_html(settings: Settings, tmp_path: Path, now: datetime) -> str:
    out = tmp_path / "governors.html"
    run_report_governors(settings, start=TERM[0], end=TERM[1], out=out, now=now)
    return out.read_text(encoding="utf-8")


@pytest.fixture
def settings_for(tmp_path: Path, engine_url: str) -> Callable[..., Settings]:
    def build(port: int, **mail: object) -> Settings:
        return make_settings(engine_url, tmp_path, port, mail=dict(mail))

    return build
