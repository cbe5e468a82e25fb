"""An incident's life through the real parts: capture daemon -> writer -> database -> API/page.

A decision stays a decision: once an incident is in review or closed, later activity of the
device on the platform goes to a new incident linked to it. A daemon killed with ``kill -9``
leaves nothing open for ever and splits no activity: the next start carries its incidents on.
A device erased while it is busy is forgotten by the running capture: nothing of it dated
before the erasure comes back.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from monitor.config.settings import Settings
from monitor.store.api_tokens import create_api_token
from monitor.store.db import make_engine
from monitor.store.models import AuditEventRecord, IncidentRecord, ObservationRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.monitor.test_runner import Daemon, stored_incidents, wait_for, write_config

pytestmark = pytest.mark.live_capture


@pytest.fixture
def veth() -> Iterator[object]:
    from tests.monitor.sources.netns import veth_namespace

    with veth_namespace() as pair:
        yield pair


def daemon_config(tmp_path: Path, url: str, veth: object, idle_gap_minutes: float) -> Path:
    interface = veth.host_iface  # type: ignore[attr-defined]
    return write_config(
        tmp_path,
        url,
        extra=f'\n[capture]\ninterfaces = ["{interface}"]\n'
        f"\n[incidents]\nidle_gap_minutes = {idle_gap_minutes}\n",
    )


def start(config: Path) -> Daemon:
    daemon = Daemon(config)
    wait_for(
        lambda: daemon.logged("capturing on") or daemon.process.poll() is not None,
        60,
        "the daemon to start",
    )
    assert daemon.process.poll() is None, "".join(daemon.lines)
    return daemon


def visit(veth: object, name: str, count: int, *, every_s: float = 0.2) -> None:
    """``count`` DNS lookups of ``name`` from the device in the namespace."""
    from tests.monitor.sources.netns import run_in_namespace
    from tests.monitor.sources.test_live import dns_query

    host_ip = veth.host_ip  # type: ignore[attr-defined]
    run_in_namespace(
        veth.ns_name,  # type: ignore[attr-defined]
        f"""
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range({count}):
    udp.sendto(bytes.fromhex({dns_query(name).hex()!r}), ({host_ip!r}, 53))
    time.sleep({every_s})
""",
    )


def rows_by_id(url: str) -> list[IncidentRecord]:
    return sorted(stored_incidents(url), key=lambda row: row.id)


def facts(row: IncidentRecord) -> tuple[object, ...]:
    return (row.start_at, row.end_at, row.active_minutes, row.hit_count, row.status, row.outcome)


class ReviewApi:
    """The review app on the daemon's database, with a reviewer's API token."""

    def __init__(self, url: str) -> None:
        settings = Settings.model_validate({"database": {"url": url}})
        self.client = TestClient(create_app(settings, password_hasher=FAST_HASHER))
        self.client.__enter__()
        engine = make_engine(url)
        with Session(engine) as db:
            user = create_user(db, "head", "Head", UserRole.REVIEWER, PASSWORD, hasher=FAST_HASHER)
            token = create_api_token(db, user.id, "tests")
            db.commit()
        engine.dispose()
        self.headers = {"Authorization": f"Bearer {token}"}

    def review(self, incident_id: int, **body: object) -> dict[str, object]:
        response = self.client.post(
            f"/api/v1/incidents/{incident_id}/review", json=body, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def incident(self, incident_id: int) -> dict[str, object]:
        response = self.client.get(f"/api/v1/incidents/{incident_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def test_a_closed_incident_stays_as_decided_and_later_visits_open_a_linked_incident(
    veth: object, engine_url: str, tmp_path: Path
) -> None:
    daemon = start(daemon_config(tmp_path, engine_url, veth, idle_gap_minutes=10))
    api = ReviewApi(engine_url)
    try:
        visit(veth, "www.instagram.com", 5)
        wait_for(lambda: len(stored_incidents(engine_url)) == 1, 30, "the incident row")
        (incident,) = rows_by_id(engine_url)
        api.review(incident.id, to_status="in_review")
        refused = api.client.post(
            f"/api/v1/incidents/{incident.id}/review",
            json={"to_status": "closed", "outcome": "informal_conversation", "note": "Spoke."},
            headers=api.headers,
        )
        assert refused.status_code == 409
        assert "still growing" in refused.json()["detail"]
        api.review(
            incident.id,
            to_status="closed",
            outcome="informal_conversation",
            note="Spoke to them; agreed it stops.",
            confirm_growing=True,
        )
        (decided,) = rows_by_id(engine_url)
        before = facts(decided)
        visit(veth, "www.instagram.com", 5)
        time.sleep(1.0)
    finally:
        status = daemon.stop()
    assert status == 0, "".join(daemon.lines)
    first, later = rows_by_id(engine_url)
    assert first.id == decided.id
    assert facts(first) == before
    assert first.state == "closed"
    assert (later.continues_id, later.status, later.state) == (first.id, "new", "closed")
    assert first.hit_count + later.hit_count == 10
    assert later.start_at > first.end_at
    continued_by = api.incident(first.id)["continued_by"]
    assert isinstance(continued_by, list)
    assert [item["id"] for item in continued_by] == [later.id]
    continues = api.incident(later.id)["continues"]
    assert isinstance(continues, dict)
    assert continues["id"] == first.id
    api.close()


@pytest.mark.slow
def test_a_capture_killed_under_traffic_continues_the_activity_and_closes_it_after_restart(
    veth: object, engine_url: str, tmp_path: Path
) -> None:
    from tests.monitor.sources.netns import namespace_command
    from tests.monitor.sources.test_live import dns_query

    idle_gap_minutes = 0.5
    config = daemon_config(tmp_path, engine_url, veth, idle_gap_minutes)
    host_ip = veth.host_ip  # type: ignore[attr-defined]
    flood = f"""
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = bytes.fromhex({dns_query("www.tiktok.com").hex()!r})
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    udp.sendto(query, ({host_ip!r}, 53))
    time.sleep(0.02)
"""
    ns_name = veth.ns_name  # type: ignore[attr-defined]
    daemon = start(config)
    sender = subprocess.Popen(namespace_command(ns_name, flood))
    try:
        wait_for(lambda: len(stored_incidents(engine_url)) == 1, 30, "the first incident row")
        time.sleep(1.0)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=30)
        daemon.reader.join(timeout=10)
        assert daemon.process.stderr is not None
        daemon.process.stderr.close()
    finally:
        sender.wait(timeout=30)
    (left,) = stored_incidents(engine_url)
    assert left.state == "open"

    restarted = start(config)
    try:
        assert restarted.logged("carrying on 1 incidents")
        sender = subprocess.Popen(namespace_command(ns_name, flood))
        sender.wait(timeout=30)
        wait_for(
            lambda: all(row.state == "closed" for row in stored_incidents(engine_url)),
            idle_gap_minutes * 60 + 30,
            "the idle incident to close",
        )
    finally:
        status = restarted.stop()
    assert status == 0, "".join(restarted.lines)
    (row,) = stored_incidents(engine_url)
    assert (row.key, row.state, row.platform) == (left.key, "closed", "tiktok")
    assert row.hit_count > left.hit_count
    assert row.start_at == left.start_at


@pytest.mark.slow
def test_a_device_erased_under_traffic_stays_erased_and_only_later_traffic_is_stored(
    veth: object, engine_url: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from hallmonitor.cli.root import main
    from tests.monitor.sources.netns import namespace_command
    from tests.monitor.sources.test_live import dns_query
    from tests.monitor.store.queries.factories import rows_naming

    config = daemon_config(tmp_path, engine_url, veth, idle_gap_minutes=10)
    host_ip, device_ip = veth.host_ip, veth.ns_ip  # type: ignore[attr-defined]
    flood = f"""
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = bytes.fromhex({dns_query("www.instagram.com").hex()!r})
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    udp.sendto(query, ({host_ip!r}, 53))
    time.sleep(0.05)
"""
    daemon = start(config)
    sender = subprocess.Popen(namespace_command(veth.ns_name, flood))  # type: ignore[attr-defined]
    try:
        wait_for(lambda: len(stored_incidents(engine_url)) == 1, 30, "the incident row")
        (incident,) = stored_incidents(engine_url)
        mac = incident.device_mac
        assert mac is not None
        time.sleep(1.0)
        erased = CliRunner().invoke(
            main,
            ["--config", str(config), "devices", "erase", mac.upper().replace(":", "-"),
             "--reason", "the owner asked", "--by", "it"],
        )  # fmt: skip
        assert erased.exit_code == 0, erased.stderr
        wait_for(lambda: daemon.logged("forgot"), 15, "the capture to forget the device")
        assert sender.poll() is None, "the traffic must go on after the capture forgot the device"
        sender.wait(timeout=40)
        time.sleep(1.0)
    finally:
        sender.wait(timeout=40)
        status = daemon.stop()
    assert status == 0, "".join(daemon.lines)
    engine = make_engine(engine_url)
    try:
        with engine.connect() as connection:
            (erased_at,) = connection.execute(
                select(AuditEventRecord.at).where(AuditEventRecord.action == "erase_device")
            ).one()
            naming = rows_naming(connection, mac, device_ip)
            later = connection.execute(
                select(IncidentRecord.start_at).where(IncidentRecord.device_mac == mac)
            ).all()
            observed = connection.execute(
                select(func.min(ObservationRecord.ts), func.count()).where(ObservationRecord.client_mac == mac)
            ).one()  # fmt: skip
    finally:
        engine.dispose()
    # only the traffic after the erasure is held, as a new incident and its observations
    assert {table for table, _ in naming} == {"incidents", "observations"}
    assert [start > erased_at for (start,) in later] == [True]
    assert observed[1] > 0 and observed[0] > erased_at
