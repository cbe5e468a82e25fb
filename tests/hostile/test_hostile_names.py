# mypy: disallow-untyped-calls=False
# (scapy layer classes are untyped)
"""Names chosen by whoever sends the packet stay inert on every path they take.

A TLS or QUIC server name, a DHCP host name and a DNS question are bytes from the network: a
hostile client can put NUL, CR/LF, a terminal escape, a bidi control or HTML in them. Each
reaches the scan's JSON and table, the SQLite and PostgreSQL stores, the incident page, the CSV
export and the weekly email escaped as DNS names are (``monitor.hostnames.ESCAPED_BYTES``:
``\\ooo`` for every byte outside printable ASCII), and HTML stays text. One capture holds them
all; every test replays it through the real code."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from sqlalchemy import select
from sqlalchemy.orm import Session

from hallmonitor.cli.root import main
from monitor.config.settings import Settings
from monitor.fastscan import can_fast_scan, scan_capture
from monitor.pipeline import Pipeline
from monitor.reports.command import run_report_weekly
from monitor.runner import record_captures
from monitor.scan import render_jsonl, write_observations
from monitor.sources.pcap import read_capture
from monitor.store.db import make_engine
from monitor.store.models import IncidentRecord, ObservationRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import AppFactory, api_sqlite_template, app_client  # noqa: F401
from tests.compiled import compiled_or_skip
from tests.data.traffic import (
    CLIENT_IP,
    CLIENT_MAC,
    RESOLVER_IP,
    SERVER_IP,
    ether,
    tls_flow,
    write_pcap,
)
from tests.monitor.conftest import (  # noqa: F401
    backend,
    engine_url,
    postgres_server,
    postgres_test_url,
    sqlite_template,
)
from tests.monitor.test_pipeline import real_quic_initial

SERVER_NAMES = {
    # what the client sends (UTF-8 on the wire) -> what every output shows
    "evil\x00x.tiktok.com": "evil\\000x.tiktok.com",
    "a\x1b[31mred\x1b]0;pwned\x07.tiktok.com": "a\\033[31mred\\033]0;pwned\\007.tiktok.com",
    "cr\r\nx-injected: 1.tiktok.com": "cr\\015\\012x-injected: 1.tiktok.com",
    "\u202egnp.tiktok.com": "\\342\\200\\256gnp.tiktok.com",  # right-to-left override
    "\u2066iso\u2069.tiktok.com": "\\342\\201\\246iso\\342\\201\\251.tiktok.com",  # isolates
    "del\x7f\\.tiktok.com": "del\\177\\\\.tiktok.com",  # DEL, and the escape character itself
    "<script>alert(1)</script>.tiktok.com": "<script>alert(1)</script>.tiktok.com",  # text
}
DHCP_HOST_NAME = b'=HYPERLINK("http://evil")\x1b[2J\r\n<b>bold</b>'
DHCP_SHOWN = '=hyperlink("http://evil")\\033[2j\\015\\012<b>bold</b>'
DNS_QUESTION = b"q\x1b[2J\x00.tiktok.com"
DNS_SHOWN = "q\\033[2j\\000.tiktok.com"
EXPECTED = (
    {("tls", shown) for shown in SERVER_NAMES.values()}
    | {("quic", shown) for shown in SERVER_NAMES.values()}
    | {("dhcp", DHCP_SHOWN), ("dns", DNS_SHOWN)}
)
WEEK = "2023-W46"  # the capture's frames are on Tuesday 14 November 2023
EVERY_DAY_ALL_DAY = {
    day: ["00:00-24:00"]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def dhcp_request(host_name: bytes) -> object:
    chaddr = bytes.fromhex(CLIENT_MAC.replace(":", ""))
    return (
        ether()
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, chaddr=chaddr)
        / DHCP(
            options=[("message-type", "request"), ("requested_addr", CLIENT_IP),
                     ("hostname", host_name), "end"]
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DHCP request naming the device, then each hostile name over TLS and QUIC, and a DNS
    question, all from one device."""
    packets = [dhcp_request(DHCP_HOST_NAME)]
    for index, name in enumerate(SERVER_NAMES):
        packets += tls_flow(name, client_port=50000 + index)
        packets.append(
            ether()
            / IP(src=CLIENT_IP, dst=SERVER_IP)
            / UDP(sport=51000 + index, dport=443)
            / real_quic_initial(name)
        )
    packets.append(
        ether()
        / IP(src=CLIENT_IP, dst=RESOLVER_IP)
        / UDP(sport=40000, dport=53)
        / DNS(rd=1, qd=DNSQR(qname=DNS_QUESTION))
    )
    return write_pcap(tmp_path_factory.mktemp("hostile") / "hostile.pcap", packets)  # type: ignore[arg-type]


def inert(text: str) -> bool:
    """No NUL, escape, bell, DEL, CR, bidi or other control or format character."""
    return all(char in "\n\t" or char.isprintable() for char in text)


def printable_ascii(text: str) -> bool:
    return all(" " <= char <= "~" for char in text)


# --- scan ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [False, True], ids=["python", "compiled"])
def test_scan_writes_every_hostile_name_escaped_in_json(capture: Path, compiled: bool) -> None:
    """The general path with the Python readers, and the compiled loop with the compiled
    readers, give the same escaped names."""
    pipeline = Pipeline(compiled=compiled)
    reader = read_capture(capture)
    written: list[str] = []
    if compiled:
        for twin in ("monitor.compiled.scanloop", "monitor.compiled.tls", "monitor.compiled.quic"):
            compiled_or_skip(twin)
        assert can_fast_scan(reader, pipeline)
        scan_capture(reader, pipeline, written.append, Counter())
    else:
        write_observations(reader, pipeline, written.append, render_jsonl, Counter())
    lines = "".join(written).splitlines()
    assert {(row["proto"], row["name"]) for row in map(json.loads, lines)} == EXPECTED
    assert all(printable_ascii(line) for line in lines)


def test_scan_table_prints_no_terminal_control_character(capture: Path) -> None:
    result = CliRunner().invoke(main, ["scan", "--format", "table", str(capture)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(printable_ascii(line) for line in lines), [
        s for s in lines if not printable_ascii(s)
    ]
    for _, shown in EXPECTED:
        assert shown in result.stdout


# --- the stores ------------------------------------------------------------------------------


def recording_settings(url: str, data_dir: Path) -> Settings:
    """Every address is staff and every hour a school hour: each tiktok name is a hit."""
    return Settings.model_validate(
        {
            "segments": [{"name": "everyone", "cidrs": ["0.0.0.0/0"], "role": "staff"}],
            "calendar": {"hours": EVERY_DAY_ALL_DAY},
            "database": {"url": url, "data_dir": str(data_dir), "flush_interval_s": 0.2},
        }
    )


def record(capture: Path, url: str, data_dir: Path) -> Settings:
    settings = recording_settings(url, data_dir)
    summary = record_captures(settings, [str(capture)])
    assert summary.writer.rejected == 0, summary.describe()
    assert summary.writer.written > 0 and summary.writer.spooled == 0
    assert not (settings.database.spool_dir / "rejected.jsonl").exists()
    return settings


def test_the_stores_keep_every_hostile_name_escaped_and_reject_none(
    capture: Path,
    engine_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """PostgreSQL refuses NUL in text: a raw name landed in rejected.jsonl and was lost."""
    record(capture, engine_url, tmp_path / "data")
    engine = make_engine(engine_url)
    try:
        with Session(engine) as db:
            observed = set(db.execute(select(ObservationRecord.proto, ObservationRecord.name)))
            incidents = list(db.scalars(select(IncidentRecord)))
    finally:
        engine.dispose()
    hits = {pair for pair in EXPECTED if pair[0] in ("tls", "quic", "dns")}
    assert observed == hits
    assert [(i.platform, i.device_host_name) for i in incidents] == [("tiktok", DHCP_SHOWN)]
    assert {(e["proto"], e["name"]) for e in incidents[0].evidence} == hits


# --- pages, CSV and email ------------------------------------------------------------------


@pytest.fixture
def db_url(api_sqlite_template: Path, capture: Path, tmp_path: Path) -> str:  # noqa: F811
    """The review app's database, holding the hostile capture's incident."""
    path = tmp_path / "app.sqlite3"
    path.write_bytes(api_sqlite_template.read_bytes())
    url = f"sqlite:///{path}"
    record(capture, url, tmp_path / "data")
    return url


def incident_id(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return db.scalars(select(IncidentRecord.id)).one()
    finally:
        engine.dispose()


def test_the_incident_page_shows_hostile_names_as_inert_text(
    app_client: AppFactory,  # noqa: F811
    db_url: str,
) -> None:
    harness = app_client()
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get(f"/incidents/{incident_id(db_url)}")
    assert response.status_code == 200
    assert inert(response.text)
    page = BeautifulSoup(response.text, "html.parser")
    assert page.find("b", string="bold") is None  # the DHCP name's HTML is text
    assert not [s for s in page.find_all("script") if "alert" in s.get_text()]
    text = page.get_text()
    for proto, shown in EXPECTED:
        if proto != "dhcp":
            assert shown in text
    assert DHCP_SHOWN in text


def test_the_csv_export_keeps_hostile_names_inert(
    app_client: AppFactory,  # noqa: F811
    db_url: str,
) -> None:
    harness = app_client()
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/incidents.csv")
    assert response.status_code == 200
    (row,) = csv.DictReader(io.StringIO(response.text, newline=""))
    assert all(inert(cell) for cell in row.values())
    assert row["device_host_name"] == "'" + DHCP_SHOWN  # a spreadsheet keeps it as text


def test_the_weekly_email_keeps_hostile_names_inert(db_url: str, tmp_path: Path) -> None:
    settings = recording_settings(db_url, tmp_path / "data")
    status, lines = run_report_weekly(
        settings, week=WEEK, preview=True, send=False, resend=False, out_dir=tmp_path
    )
    assert status == 0, lines
    html = (tmp_path / f"weekly-{WEEK}-reviewer.html").read_text()
    text = (tmp_path / f"weekly-{WEEK}-reviewer.txt").read_text()
    assert inert(html) and inert(text)
    assert DHCP_SHOWN in text
    page = BeautifulSoup(html, "html.parser")
    assert page.find("b", string="bold") is None
    assert DHCP_SHOWN in page.get_text()
