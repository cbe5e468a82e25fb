"""Evidence a fair person can weigh, through the real parts: packets -> engine -> writer ->
SQLite or PostgreSQL -> queue, incident page, API, CSV export and weekly email.

A laptop makes 20 connections to Instagram over 19 minutes: high, with a sentence saying so. A
tablet makes one TLS connection to a TikTok CDN name: an incident, but low (below the floor):
out of the default queue and the weekly email, still counted and shown with the filter.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket
from scapy.utils import wrpcap
from sqlalchemy.orm import Session

from api.app import create_app
from monitor.config.rules import build_calendar
from monitor.reports.render import render_weekly_html, render_weekly_text
from monitor.reports.weekly import (
    ReportRole,
    ReviewerWeeklySummary,
    build_weekly_summary,
    week_containing,
)
from monitor.runner import record_captures
from monitor.store.db import make_engine
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, AppHarness
from tests.data.traffic import client_hello_bytes
from tests.monitor import conftest as databases
from tests.monitor.test_runner import settings_for

backend = databases.backend
engine_url = databases.engine_url
sqlite_template = databases.sqlite_template
postgres_server = databases.postgres_server
postgres_test_url = databases.postgres_test_url

START = datetime(2026, 11, 24, 10, 12, tzinfo=UTC).timestamp()
"""A Tuesday morning (the test's school day is every day, all day)."""
LAPTOP = ("02:00:00:00:00:01", "10.20.0.15")
TABLET = ("02:00:00:00:00:02", "10.20.0.16")
GATEWAY = "02:00:00:00:00:fe"


def connection(device: tuple[str, str], name: str, ts: float, port: int) -> list[ScapyPacket]:
    mac, ip = device
    link = Ether(src=mac, dst=GATEWAY) / IP(src=ip, dst="157.240.221.174")
    packets: list[ScapyPacket] = [
        link / TCP(sport=port, dport=443, flags="S", seq=1000),
        link / TCP(sport=port, dport=443, flags="PA", seq=1001) / client_hello_bytes(name),
    ]
    for packet in packets:
        packet.time = ts
    return packets


def lookup(device: tuple[str, str], name: str, ts: float) -> ScapyPacket:
    mac, ip = device
    packet = (
        Ether(src=mac, dst=GATEWAY)
        / IP(src=ip, dst="10.20.0.1")
        / UDP(sport=40000, dport=53)
        / DNS(id=7, rd=1, qd=DNSQR(qname=name))
    )
    packet.time = ts
    return packet


def school_morning(path: Path) -> Path:
    """19 minutes of Instagram on the laptop; one TikTok CDN connection from the tablet."""
    packets = [lookup(LAPTOP, "i.instagram.com", START)]
    for minute in range(20):
        packets += connection(LAPTOP, "i.instagram.com", START + 1 + minute * 60, 50000 + minute)
    packets += connection(TABLET, "v16m.tiktokcdn.com", START + 300, 51000)
    wrpcap(str(path), sorted(packets, key=lambda packet: float(packet.time)))
    return path


@pytest.fixture
def recorded(engine_url: str, tmp_path: Path) -> Iterator[AppHarness]:
    """The morning's capture recorded by the real engine, and the review app on that store."""
    settings = settings_for(tmp_path, engine_url)
    summary = record_captures(settings, [str(school_morning(tmp_path / "morning.pcap"))])
    assert summary.writer.dropped == summary.writer.spooled == 0
    app = create_app(settings, password_hasher=FAST_HASHER)
    with TestClient(app) as client:
        harness = AppHarness(client, app, settings)
        harness.sign_in(UserRole.REVIEWER)
        yield harness


def incidents(harness: AppHarness, query: str = "") -> dict[str, object]:
    response = harness.client.get(f"/api/v1/incidents{query}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def by_platform(body: dict[str, object]) -> dict[str, dict[str, object]]:
    items = body["items"]
    assert isinstance(items, list)
    return {item["platform"]: item for item in items}


def test_sustained_connections_are_high_and_say_what_was_seen(recorded: AppHarness) -> None:
    instagram = by_platform(incidents(recorded))["instagram"]
    assert instagram["level"] == "high"
    assert instagram["connections"] == 20
    explanation = instagram["explanation"]
    assert isinstance(explanation, dict)
    assert explanation["seen"].startswith("20 connections to Instagram's own servers and 1 lookup")
    assert "from 02:00:00:00:00:01." in explanation["seen"]
    assert "a connection to Instagram's servers is stronger evidence" in explanation["limits"]
    assert explanation["below_floor"] is False
    detail = recorded.client.get(f"/api/v1/incidents/{instagram['id']}").json()
    assert detail["incident"]["explanation"] == explanation
    page = BeautifulSoup(recorded.client.get(f"/incidents/{instagram['id']}").text, "html.parser")
    assert page.select_one("#confidence-level").get_text() == "High"  # type: ignore[union-attr]
    assert page.select_one("#evidence-seen").get_text() == explanation["seen"]  # type: ignore[union-attr]
    reasons = [li.get_text() for li in page.select("#confidence-reasons li")]
    assert reasons == explanation["reasons"]


def test_one_cdn_connection_is_low_and_left_out_of_the_default_queue(
    recorded: AppHarness,
) -> None:
    default = incidents(recorded)
    assert set(by_platform(default)) == {"instagram"}
    assert default["total"] == 1 and default["low_hidden"] == 1
    low = by_platform(incidents(recorded, "?confidence=low"))
    read = [row for row in recorded.audit_rows() if row.action == "view_list"][-1]
    assert read.detail["filters"]["confidence"] == ["low"]
    tiktok = low["tiktok"]
    assert tiktok["level"] == "low" and tiktok["connections"] == 1
    explanation = tiktok["explanation"]
    assert isinstance(explanation, dict)
    assert explanation["below_floor"] is True
    assert explanation["seen"].startswith("1 connection to TikTok's own servers at ")
    assert any(reason.startswith("Below the floor") for reason in explanation["reasons"])
    every = incidents(recorded, "?confidence=high&confidence=medium&confidence=low")
    assert every["total"] == 2 and every["low_hidden"] == 0

    queue = BeautifulSoup(recorded.client.get("/incidents").text, "html.parser")
    assert "1 low-confidence incident not shown" in queue.select_one("#low-hidden").get_text()  # type: ignore[union-attr]
    assert [cell.get_text() for cell in queue.select("td:nth-of-type(3)")] == ["instagram"]
    everything = recorded.client.get("/incidents?confidence=all").text
    assert "tiktok" in everything and "2 incidents." in everything
    page = recorded.client.get(f"/incidents/{tiktok['id']}").text
    assert "below the floor" in page and explanation["seen"].replace("'", "&#39;") in page


def test_the_csv_export_carries_the_level_and_the_sentence(recorded: AppHarness) -> None:
    text = recorded.client.get("/incidents.csv?confidence=all").text
    rows = {row["platform"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["tiktok"]["level"] == "low" and rows["instagram"]["level"] == "high"
    assert rows["tiktok"]["seen"].startswith("1 connection to TikTok's own servers")
    assert "Below the floor" in rows["tiktok"]["reasons"]


def test_the_weekly_email_leaves_low_incidents_out_and_says_how_many(
    recorded: AppHarness,
) -> None:
    settings = recorded.settings
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        with Session(engine) as db:
            summary = build_weekly_summary(
                db,
                ReportRole.REVIEWER,
                week_containing(datetime.fromtimestamp(START, UTC).date()),
                school=settings.site.name,
                site=None,
                calendar=build_calendar(settings),
                public_url="https://monitor.example",
                today=datetime.fromtimestamp(START, UTC).date(),
                floor=settings.incidents.floor(),
            )
    finally:
        engine.dispose()
    assert isinstance(summary, ReviewerWeeklySummary)
    assert summary.data.incidents == 1 and summary.data.low_confidence == 1
    assert [item.platform for item in summary.data.waiting_review] == ["instagram"]
    text = render_weekly_text(summary)
    assert "1 low-confidence incident is not counted in this email" in text
    assert "TikTok" not in text
    assert "low-confidence" in render_weekly_html(summary)
