"""A trust: two schools' sensors write to one PostgreSQL database at the same time.

Two real ``hallmonitor capture`` daemons, each on its own veth pair with its own site name, share
one database. Both schools use the same private addresses and the devices even share MACs, and
both send the same social traffic at the same time: nothing may merge across sites. Each device
and platform is used in bursts further apart than the (shortened) idle gap, so every burst is one
incident, known in advance from what was sent; incidents open and close on both sites while the
other sensor writes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.api_tokens import create_api_token
from monitor.store.db import make_engine
from monitor.store.models import (
    DailyCounterRecord,
    DeviceRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.data.traffic import GATEWAY_MAC, RESOLVER_IP, SERVER_IP, client_hello_bytes
from tests.monitor.conftest import PostgresServer
from tests.monitor.sources.netns import VethNamespace, namespace_command, veth_namespace
from tests.monitor.test_runner import (
    EVERY_DAY_ALL_DAY,
    Daemon,
    stored_observation_count,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.live_capture]

SITES = ("north", "south")
CLIENTS = tuple((f"10.0.0.{10 + n}", f"02:00:00:00:01:{n:02x}") for n in range(4))
"""The same addresses and MACs at both schools."""
NAMES = {
    "instagram": "www.instagram.com",
    "tiktok": "www.tiktok.com",
    "facebook": "www.facebook.com",
}
NOISE = "www.bbc.co.uk"
BURSTS = 5
BURST_PERIOD_S = 7.5
"""Bursts start this far apart: the last starts at 30 s, so traffic flows for over 30 s."""
ROUNDS = 3
ROUND_SPACING_S = 0.5
"""Each burst: per device and platform, one DNS lookup and one TLS connection every 0.5 s."""
IDLE_GAP_MINUTES = 0.05
"""3 s: the 6 s of silence between bursts closes each incident; 0.5 s within one does not."""
HITS_PER_INCIDENT = 2 * ROUNDS
HITS_PER_SITE = len(CLIENTS) * len(NAMES) * BURSTS * HITS_PER_INCIDENT


@dataclass(frozen=True)
class Sensor:
    site: str
    veth: VethNamespace
    config: Path
    schedule: Path


def host_name(site: str, client: int) -> str:
    return f"{site}-laptop-{client}"


def schedule_for(site: str) -> list[tuple[float, str]]:
    """(seconds from the start, frame as hex): DHCP first, then the bursts, with noise."""
    frames: list[tuple[float, bytes]] = []
    for number, (ip, mac) in enumerate(CLIENTS):
        dhcp = (
            Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
            / IP(src=ip, dst="255.255.255.255")
            / UDP(sport=68, dport=67)
            / BOOTP(op=1, chaddr=bytes.fromhex(mac.replace(":", "")), ciaddr=ip, xid=number + 1)
            / DHCP(
                options=[
                    ("message-type", "request"),
                    ("requested_addr", ip),
                    ("hostname", host_name(site, number)),
                    "end",
                ]
            )
        )
        frames.append((0.0, bytes(dhcp)))
    port = 40000
    for burst in range(BURSTS):
        for round_ in range(ROUNDS):
            at = 1.0 + burst * BURST_PERIOD_S + round_ * ROUND_SPACING_S
            for ip, mac in CLIENTS:
                ether = Ether(src=mac, dst=GATEWAY_MAC)
                for name in [*NAMES.values(), NOISE]:
                    port += 1
                    query = DNS(id=port & 0xFFFF, rd=1, qd=DNSQR(qname=name))
                    dns = ether / IP(src=ip, dst=RESOLVER_IP) / UDP(sport=port, dport=53) / query
                    frames.append((at, bytes(dns)))
                    if name == NOISE:
                        continue
                    tcp = IP(src=ip, dst=SERVER_IP)
                    syn = ether / tcp / TCP(sport=port, dport=443, flags="S", seq=1000)
                    hello = TCP(sport=port, dport=443, flags="PA", seq=1001)
                    frames.append((at, bytes(syn)))
                    frames.append((at, bytes(ether / tcp / hello / client_hello_bytes(name))))
    return [(at, frame.hex()) for at, frame in frames]


SENDER = """
import json, socket, sys, time
schedule = json.load(open(sys.argv[1]))
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[2], 0))
previous = 0.0
for at, frame in schedule:
    if at > previous:
        time.sleep(at - previous)
        previous = at
    sock.send(bytes.fromhex(frame))
"""
"""Sends the frames of ``schedule.json`` on an interface, sleeping the gaps between their times:
a stalled sender can only make the silences between bursts longer, never merge two bursts."""


def write_sensor_config(tmp_path: Path, site: str, url: str, iface: str) -> Path:
    directory = tmp_path / site
    directory.mkdir()
    path = directory / "config.toml"
    path.write_text(
        f"""
[site]
name = "{site}"

[capture]
interfaces = ["{iface}"]

[[segments]]
name = "staff-lan"
cidrs = ["10.0.0.0/8"]
role = "staff"

[calendar.hours]
{EVERY_DAY_ALL_DAY}

[incidents]
idle_gap_minutes = {IDLE_GAP_MINUTES}

[database]
url = "{url}"
data_dir = "{directory / "data"}"
flush_interval_s = 0.2
"""
    )
    return path


@pytest.fixture
def trust_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database at the schema head on the PostgreSQL test server (no SQLite here)."""
    url = postgres_server.create_database(template=postgres_server.template)
    yield url.render_as_string(hide_password=False)
    postgres_server.drop_database(url)


@pytest.fixture
def sensors(tmp_path: Path, trust_url: str) -> Iterator[list[Sensor]]:
    with veth_namespace() as north, veth_namespace() as south:
        found = []
        for site, veth in zip(SITES, (north, south), strict=True):
            config = write_sensor_config(tmp_path, site, trust_url, veth.host_iface)
            schedule = config.with_name("schedule.json")
            schedule.write_text(json.dumps(schedule_for(site)))
            found.append(Sensor(site, veth, config, schedule))
        yield found


def read_incidents(url: str) -> list[IncidentRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(IncidentRecord).order_by(IncidentRecord.id)))
    finally:
        engine.dispose()


def opened_incidents(log: str) -> int:
    """The incidents a daemon opened, from its ``stopped:`` summary line."""
    found = re.search(r"stopped: .*?([\d,]+) incidents;", log)
    assert found is not None, log
    return int(found.group(1).replace(",", ""))


def test_two_sensors_share_one_database_without_merging_their_sites(
    sensors: list[Sensor], trust_url: str
) -> None:
    daemons = {sensor.site: Daemon(sensor.config) for sensor in sensors}
    senders: list[subprocess.Popen[bytes]] = []
    try:
        for daemon in daemons.values():
            wait_for(
                lambda d=daemon: d.logged("capturing on") or d.process.poll() is not None,
                30,
                "the daemons to start",
            )
            assert daemon.process.poll() is None, "".join(daemon.lines)
        senders = [
            subprocess.Popen(
                [
                    *namespace_command(sensor.veth.ns_name, SENDER),
                    str(sensor.schedule),
                    sensor.veth.ns_iface,
                ]
            )
            for sensor in sensors
        ]
        for sender in senders:
            assert sender.wait(timeout=90) == 0
        # Stop once every hit sent is stored: SIGTERM ends capture at once, unread frames unread.
        wait_for(
            lambda: stored_observation_count(trust_url) == len(SITES) * HITS_PER_SITE,
            30,
            "every hit to be stored",
        )
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        statuses = {site: daemon.stop() for site, daemon in daemons.items()}
    logs = {site: "".join(daemon.lines) for site, daemon in daemons.items()}
    assert statuses == dict.fromkeys(SITES, 0), logs
    for log in logs.values():
        assert "DROPPED" not in log and "waiting in the spool" not in log, log

    rows = read_incidents(trust_url)
    # Every burst of every device and platform at every site is one incident, stored once.
    expected = Counter(
        (site, mac, ip, platform)
        for site in SITES
        for ip, mac in CLIENTS
        for platform in NAMES
        for _ in range(BURSTS)
    )
    assert Counter((r.site, r.device_mac, r.device_ip, r.platform) for r in rows) == expected
    assert len({row.key for row in rows}) == len(rows)
    for site in SITES:
        assert opened_incidents(logs[site]) == sum(row.site == site for row in rows)
    for row in rows:
        assert row.state == "closed"
        assert row.hit_count == HITS_PER_INCIDENT, (row.site, row.device_ip, row.platform)
        # The host name each school's DHCP gave: nothing of the other school's leaked in.
        number = [mac for _, mac in CLIENTS].index(row.device_mac or "")
        assert row.device_host_name == host_name(row.site, number)

    engine = make_engine(trust_url)
    try:
        with Session(engine) as db:
            observations = dict(
                db.execute(
                    select(ObservationRecord.site, func.count()).group_by(ObservationRecord.site)
                ).all()
            )
            devices = sorted(
                (site, mac, name)
                for site, mac, name in db.execute(
                    select(DeviceRecord.site, DeviceRecord.mac, DeviceRecord.host_name)
                )
            )
            dns_counted = dict(
                db.execute(
                    select(DailyCounterRecord.site, func.sum(DailyCounterRecord.count))
                    .where(DailyCounterRecord.name == "observations.dns")
                    .group_by(DailyCounterRecord.site)
                ).all()
            )
    finally:
        engine.dispose()
    assert observations == dict.fromkeys(SITES, HITS_PER_SITE)
    assert devices == sorted(
        (site, mac, host_name(site, number))
        for site in SITES
        for number, (_, mac) in enumerate(CLIENTS)
    )
    lookups = len(CLIENTS) * (len(NAMES) + 1) * BURSTS * ROUNDS
    assert dns_counted == dict.fromkeys(SITES, lookups)

    assert_a_site_limited_reviewer_sees_only_their_site(trust_url, rows)


def assert_a_site_limited_reviewer_sees_only_their_site(
    url: str, rows: list[IncidentRecord]
) -> None:
    """Through the JSON API with a bearer token: the north reviewer sees north's, all of them."""
    from api.app import create_app
    from monitor.config.settings import Settings
    from tests.api.conftest import FAST_HASHER, PASSWORD

    app = create_app(
        Settings.model_validate({"database": {"url": url}}), password_hasher=FAST_HASHER
    )
    with TestClient(app) as client:
        with Session(app.state.engine) as db:
            user = create_user(
                db, "northhead", "North Head", UserRole.REVIEWER, PASSWORD,
                site="north", hasher=FAST_HASHER,
            )  # fmt: skip
            token = create_api_token(db, user.id, "trust test")
            db.commit()
        headers = {"Authorization": f"Bearer {token}"}
        seen: list[dict[str, Any]] = []
        page = 1
        while True:
            response = client.get(
                "/api/v1/incidents", params={"per_page": 50, "page": page}, headers=headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            seen.extend(body["items"])
            if page >= body["pages"]:
                break
            page += 1
        asked_for_south = client.get("/api/v1/incidents?site=south", headers=headers).json()
        south_id = next(row.id for row in rows if row.site == "south")
        south_incident = client.get(f"/api/v1/incidents/{south_id}", headers=headers)
    assert sorted(item["id"] for item in seen) == sorted(r.id for r in rows if r.site == "north")
    assert {item["site"] for item in seen} == {"north"}
    assert asked_for_south["items"] == []
    assert south_incident.status_code == 404
