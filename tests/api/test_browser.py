"""The review app in a real browser: Debian's Chromium driven by Playwright against
``hallmonitor serve`` running as a subprocess on a free port.

A reviewer signs in, filters the queue, opens an incident, closes it with an outcome and a note
and sees it in the history; a governor then walks every page they can reach and finds no device
identity from the database anywhere; both sign out. Screenshots of the main pages are kept in
``tests/artifacts/`` (gitignored) for people to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.db import make_engine, upgrade_schema
from monitor.store.models import DeviceRecord, IncidentRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.monitor.store.queries.factories import (
    PUPIL_TABLET,
    ROUTED_PC,
    add_device,
    add_incident,
    add_observation,
)

pytestmark = pytest.mark.browser

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
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HALLMONITOR = Path(sys.executable).parent / "hallmonitor"
READY_TIMEOUT_S = 20.0

CONFIG = """\
[site]
name = "Browser Test School"

[database]
url = "{url}"

[web]
host = "127.0.0.1"
port = {port}

[[segments]]
name = "staff-wifi"
cidrs = ["10.1.0.0/16"]
role = "staff"

[[segments]]
name = "pupil-wifi"
cidrs = ["10.2.0.0/16"]
role = "pupil"
"""


@dataclass(frozen=True)
class Server:
    base_url: str
    db_url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(url: str) -> None:
    """A few incidents of this week, a labelled device, and the two users."""
    engine = make_engine(url)
    now = datetime.now(UTC).replace(microsecond=0)
    with Session(engine) as db:
        add_incident(db, start=now - timedelta(days=8), platform="tiktok", status="closed",
                     outcome="no_action")  # fmt: skip
        laptop = add_incident(db, start=now - timedelta(hours=3), platform="instagram")
        for n in range(3):
            add_observation(db, laptop, ts=laptop.start_at + timedelta(seconds=20 * n))
        add_incident(db, start=now - timedelta(hours=2), platform="snapchat", device=PUPIL_TABLET,
                     host_name="PUPIL-TAB-3", segment="pupil-wifi", role="pupil",
                     label="Year 9 tablet")  # fmt: skip
        add_incident(db, start=now - timedelta(hours=1), platform="instagram", device=ROUTED_PC,
                     host_name=None, segment=None, role=None)  # fmt: skip
        add_device(db, label="Room 4 teacher laptop")
        create_user(db, "head", "Head Teacher", UserRole.REVIEWER, PASSWORD, hasher=FAST_HASHER)
        create_user(db, "chair", "Chair of Governors", UserRole.GOVERNOR, PASSWORD,
                    hasher=FAST_HASHER)  # fmt: skip
        db.commit()
    engine.dispose()


def identities(url: str) -> set[str]:
    """Every device identity the database holds: addresses, MACs, host names, labels."""
    engine = make_engine(url)
    with Session(engine) as db:
        incident = IncidentRecord
        rows = db.execute(
            select(incident.device_ip, incident.device_mac, incident.device_host_name,
                   incident.device_label)
        ).all()  # fmt: skip
        devices = db.execute(
            select(DeviceRecord.ip, DeviceRecord.mac, DeviceRecord.host_name, DeviceRecord.label)
        ).all()
    engine.dispose()
    return {value for row in [*rows, *devices] for value in row if value}


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hallmonitor serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/login", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    process.terminate()
    pytest.fail(f"hallmonitor serve not ready after {READY_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``hallmonitor serve`` on a free port, with a migrated, seeded SQLite database."""
    directory = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{directory / 'hallmonitor.sqlite3'}"
    upgrade_schema(url)
    seed(url)
    port = free_port()
    config = directory / "config.toml"
    config.write_text(CONFIG.format(url=url, port=port))
    log = directory / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(HALLMONITOR), "--log-level", "INFO", "--config", str(config), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, base_url, log)
        yield Server(base_url, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-system-packages installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def sign_out(page: Page, base_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base_url + "/login?signed_out=1")
    assert "You are signed out." in page.content()


def test_reviewer_filters_opens_and_closes_an_incident(server: Server, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, server.base_url, "head")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(server.base_url + "/dashboard")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    assert page.locator("svg.chart").count() >= 3
    shot(page, "reviewer-dashboard")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
    page.get_by_label("New").check()
    page.get_by_label("Platform").fill("instagram")
    page.get_by_role("button", name="Show incidents").click()
    page.wait_for_url("**/incidents?status=new&platform=instagram*")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 2
    assert "2 incidents" in page.locator("#queue-count").inner_text()
    shot(page, "reviewer-queue")

    rows.last.get_by_role("link").click()  # the older one: the staff laptop
    page.wait_for_url("**/incidents/*")
    assert page.locator(".timeline li").count() == 3
    shot(page, "reviewer-incident")
    page.get_by_role("button", name="Start the review").click()
    page.get_by_label("Informal conversation").check()
    page.get_by_label("Note (required: what was decided and why)").fill(
        "Spoke to the teacher: personal use at lunch."
    )
    page.get_by_role("button", name="Close the incident").click()
    history = page.locator(".history")
    assert "Spoke to the teacher: personal use at lunch." in history.inner_text()
    assert "with the outcome Informal conversation" in history.inner_text()
    assert "Closed" in page.locator(".facts .status").inner_text()
    shot(page, "reviewer-incident-closed")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(server.base_url + "/incidents")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390  # the table scrolls inside its wrapper, not the page
    shot(page, "reviewer-queue-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    sign_out(page, server.base_url)
    context.close()


def test_governor_finds_no_device_identity_on_any_page(server: Server, browser: Browser) -> None:
    secrets = identities(server.db_url)
    assert {"10.1.4.23", "aa:bb:cc:00:00:02", "PUPIL-TAB-3", "Year 9 tablet"} <= secrets
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server.base_url, "chair")
    seen: set[str] = set()
    queue = ["/", "/dashboard", "/incidents", "/incidents/1"]  # and two it may not open
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        page.goto(server.base_url + path)
        html = page.content()
        found = sorted(value for value in secrets if value in html)
        assert not found, f"{path} shows {found}"
        for href in page.locator("a[href]").evaluate_all("links => links.map(a => a.href)"):
            parts = urlsplit(urljoin(server.base_url + path, href))
            if parts.netloc == urlsplit(server.base_url).netloc and not parts.path.startswith(
                "/static/"
            ):
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert {"/", "/dashboard"} <= seen
    page.goto(server.base_url + "/dashboard")
    shot(page, "governor-dashboard")
    sign_out(page, server.base_url)
    context.close()
