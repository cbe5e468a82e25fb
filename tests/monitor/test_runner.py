"""Replays and the capture daemon, into real databases: incidents land once, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.config.loading import load_settings
from monitor.config.settings import Settings
from monitor.errors import SchemaNotCurrent
from monitor.runner import record_captures
from monitor.store.db import make_engine
from monitor.store.models import DailyCounterRecord, IncidentRecord, ObservationRecord

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"

SOCIAL_CAPTURES = {
    # capture: (platform, device address) the replay must find
    "ndpi-facebook.pcap": ("facebook", "192.168.43.18"),
    "ndpi-instagram.pcap": ("instagram", "192.168.0.103"),
    "ndpi-pinterest.pcap": ("pinterest", "2a01:cb01:2049:8b07:991d:ec85:28df:f629"),
    "ndpi-snapchat.pcap": ("snapchat", "10.8.0.1"),
    "ndpi-tumblr.pcap": ("tumblr", "2a01:cb01:2049:8b07:991d:ec85:28df:f629"),
    "ndpi-vk.pcapng": ("vk", "192.168.1.249"),
    "ndpi-discord.pcapng": ("discord", "10.0.2.15"),
}

EVERY_DAY_ALL_DAY = "\n".join(
    f'{day} = ["00:00-24:00"]'
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
)


def write_config(
    tmp_path: Path, url: str, *, hours: str = EVERY_DAY_ALL_DAY, extra: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[site]
name = "st-marys"

[[segments]]
name = "everyone"
cidrs = ["0.0.0.0/0", "::/0"]
role = "staff"

[calendar.hours]
{hours}

[database]
url = "{url}"
data_dir = "{tmp_path / "data"}"
flush_interval_s = 0.2
{extra}
"""
    )
    return path


def settings_for(tmp_path: Path, url: str, **kwargs: str) -> Settings:
    return load_settings(write_config(tmp_path, url, **kwargs), environ={})


def stored_incidents(url: str) -> list[IncidentRecord]:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return list(db.scalars(select(IncidentRecord)))
    finally:
        engine.dispose()


def test_replaying_social_captures_gives_incidents_with_platform_device_and_times(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    paths = [str(PCAPS / name) for name in SOCIAL_CAPTURES]
    summary = record_captures(settings, paths)
    assert summary.writer.dropped == summary.writer.spooled == 0
    rows = stored_incidents(engine_url)
    found = {(row.platform, row.device_ip) for row in rows}
    assert set(SOCIAL_CAPTURES.values()) <= found
    assert all(row.state == "closed" and row.start_at <= row.end_at for row in rows)
    assert all(row.site == "st-marys" for row in rows)
    assert daily_counter(engine_url, "capture.frames") == summary.frames
    instagram = next(row for row in rows if row.device_ip == "192.168.0.103")
    assert instagram.start_at.isoformat().startswith("2015-07-12T17:08")
    assert instagram.device_mac == "40:f3:08:c3:8e:e1"


def test_replaying_outside_the_school_day_gives_no_incident(
    engine_url: str, tmp_path: Path
) -> None:
    no_school = "\n".join(
        f"{day} = []"
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
    settings = settings_for(tmp_path, engine_url, hours=no_school)
    summary = record_captures(settings, [str(PCAPS / name) for name in SOCIAL_CAPTURES])
    assert summary.matches > 0
    assert stored_incidents(engine_url) == []


def test_replaying_the_same_capture_twice_stores_each_incident_once(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    capture = str(PCAPS / "ndpi-instagram.pcap")
    record_captures(settings, [capture])
    first = sorted(row.key for row in stored_incidents(engine_url))
    record_captures(settings, [capture])
    assert sorted(row.key for row in stored_incidents(engine_url)) == first
    assert first


def test_replay_into_an_unreachable_database_keeps_everything_in_the_spool(tmp_path: Path) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = settings_for(tmp_path, f"postgresql://nobody@127.0.0.1:{port}/nothing")
    summary = record_captures(settings, [str(PCAPS / "ndpi-instagram.pcap")])
    assert summary.incidents > 0
    assert summary.writer.written == 0 and summary.writer.dropped == 0
    assert summary.writer.spool_bytes > 0
    assert "waiting in the spool" in summary.describe()


def test_replay_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(SchemaNotCurrent, match="hallmonitor db upgrade"):
        record_captures(settings, [str(PCAPS / "ndpi-instagram.pcap")])


# -- the capture daemon, as a real process on interfaces the test creates --------------------


@pytest.fixture
def veth() -> Iterator[object]:
    from tests.monitor.sources.netns import veth_namespace

    with veth_namespace() as pair:
        yield pair


def hallmonitor(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("hallmonitor")), *args]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """``hallmonitor capture`` in a subprocess, its stderr collected line by line."""

    def __init__(self, config: Path) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
        self.process = subprocess.Popen(
            hallmonitor("--log-level", "INFO", "--config", str(config), "capture"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.reader.join(timeout=10)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return status


@pytest.mark.live_capture
def test_capture_daemon_records_incidents_and_drains_on_sigterm(
    veth, engine_url: str, tmp_path: Path
) -> None:
    from tests.monitor.sources.netns import run_in_namespace
    from tests.monitor.sources.test_live import dns_query

    config = write_config(
        tmp_path, engine_url, extra=f'\n[capture]\ninterfaces = ["{veth.host_iface}"]\n'
    )
    daemon = Daemon(config)
    try:
        wait_for(
            lambda: daemon.logged("capturing on") or daemon.process.poll() is not None,
            30,
            "the daemon to start",
        )
        assert daemon.process.poll() is None, "".join(daemon.lines)
        send = f"""
import socket
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for index in range(200):
    udp.sendto(bytes.fromhex({dns_query("www.instagram.com").hex()!r}), ({veth.host_ip!r}, 53))
    udp.sendto(bytes.fromhex({dns_query("www.bbc.co.uk").hex()!r}), ({veth.host_ip!r}, 53))
"""
        run_in_namespace(veth.ns_name, send)
        wait_for(lambda: len(stored_incidents(engine_url)) == 1, 30, "the incident row")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.logged("reloaded"), 30, "the reload")
    finally:
        status = daemon.stop()
    stderr = "".join(daemon.lines)
    assert status == 0, stderr
    (row,) = stored_incidents(engine_url)
    assert (row.platform, row.device_ip, row.state) == ("instagram", veth.ns_ip, "closed")
    assert row.hit_count == 200
    assert "stopped:" in stderr and "DROPPED" not in stderr


@pytest.mark.live_capture
def test_capture_daemon_stopped_under_load_exits_0_with_everything_stored(
    veth, tmp_path: Path
) -> None:
    """SIGTERM while queries stream in: every hit the daemon counted is in the database."""
    from tests.monitor.sources.netns import namespace_command
    from tests.monitor.sources.test_live import dns_query

    url = f"sqlite:///{tmp_path / 'load.sqlite3'}"
    config = write_config(tmp_path, url, extra=f'\n[capture]\ninterfaces = ["{veth.host_iface}"]\n')
    subprocess.run(hallmonitor("--config", str(config), "db", "upgrade"), check=True, timeout=60)
    daemon = Daemon(config)
    flood = f"""
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = bytes.fromhex({dns_query("www.tiktok.com").hex()!r})
deadline = time.monotonic() + 6
while time.monotonic() < deadline:
    for _ in range(100):
        udp.sendto(query, ({veth.host_ip!r}, 53))
    time.sleep(0.01)
"""
    sender = None
    try:
        wait_for(lambda: daemon.logged("capturing on"), 30, "the daemon to start")
        sender = subprocess.Popen(namespace_command(veth.ns_name, flood))
        wait_for(lambda: len(stored_incidents(url)) == 1, 30, "the first incident row")
        time.sleep(1.0)
    finally:
        status = daemon.stop()
        if sender is not None:
            sender.kill()
            sender.wait()
    stderr = "".join(daemon.lines)
    assert status == 0, stderr
    (row,) = stored_incidents(url)
    assert row.state == "closed"
    assert row.hit_count > 100
    assert stored_observation_count(url) == row.hit_count
    assert "DROPPED" not in stderr and "waiting in the spool" not in stderr


def daily_counter(url: str, name: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            total = db.scalar(
                select(func.sum(DailyCounterRecord.count)).where(DailyCounterRecord.name == name)
            )
            return int(total or 0)
    finally:
        engine.dispose()


def stored_observation_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            return int(db.scalar(select(func.count()).select_from(ObservationRecord)) or 0)
    finally:
        engine.dispose()


def test_capture_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("HALLMONITOR_")
    }
    result = subprocess.run(
        hallmonitor("--config", str(config), "capture"),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert result.returncode == 1
    assert "run `hallmonitor db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
