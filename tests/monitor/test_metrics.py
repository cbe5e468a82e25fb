"""The daemon's Prometheus metrics: scraped over HTTP from a daemon fed real frames, labelled
with the site only, and an exporter port that cannot be opened never stops capture."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor.config.settings import Settings
from monitor.metrics import (
    COUNTERS,
    DaemonCollector,
    daemon_metrics,
    register_daemon_metrics,
    serve_metrics,
)
from monitor.runner import CaptureDaemon, RunSummary
from monitor.sources.pcap import read_capture
from monitor.store.db import make_engine
from monitor.values import Frame
from tests.monitor.reports.conftest import device_identifiers
from tests.monitor.test_runner import PCAPS, Daemon, settings_for, wait_for, write_config

INSTAGRAM = PCAPS / "ndpi-instagram.pcap"


class ReplaySource:
    """A ``FrameSource`` over one capture file: its frames, then nothing until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        with read_capture(self.path) as reader:
            for frame in reader:
                self.count += 1
                yield frame
        stop.wait()

    def stats(self) -> dict[str, tuple[int, int]]:
        return {"replay": (self.count, 0)}

    @property
    def interfaces(self) -> list[str]:
        return [self.path.name]

    def close(self) -> None:
        pass


def frames_in(path: Path) -> int:
    with read_capture(path) as reader:
        return sum(1 for _ in reader)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "metrics.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return settings_for(tmp_path, sqlite_url)


class RunningDaemon:
    """A ``CaptureDaemon`` replaying a capture in a thread of this process."""

    def __init__(self, settings: Settings, path: Path = INSTAGRAM) -> None:
        self.source = ReplaySource(path)
        self.daemon = CaptureDaemon(settings, open_source=lambda _settings: self.source)
        self.summary: RunSummary | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.summary = self.daemon.run()

    def start_and_replay(self) -> None:
        self.thread.start()
        total = frames_in(self.source.path)
        wait_for(lambda: self._frames() == total, 30, "the replay")

    def _frames(self) -> int:
        status = self.daemon.status()
        return status.frames if status is not None else -1

    def stop(self) -> RunSummary:
        self.daemon.stop()
        self.thread.join(timeout=60)
        assert self.summary is not None, "the daemon did not stop"
        return self.summary


@pytest.fixture
def running(settings: Settings) -> Iterator[RunningDaemon]:
    daemon = RunningDaemon(settings)
    daemon.start_and_replay()
    yield daemon
    if daemon.thread.is_alive():
        daemon.stop()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def samples(text: str) -> dict[str, Sample]:
    """Every hallmonitor_* sample of an exposition, by name (each has one series here)."""
    found: dict[str, Sample] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("hallmonitor_") and not sample.name.endswith("_created"):
                assert sample.name not in found, f"{sample.name} twice"
                found[sample.name] = sample
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestDaemonCollector:
    def test_before_start_only_says_the_daemon_is_not_up(self, settings: Settings) -> None:
        registry = CollectorRegistry()
        register_daemon_metrics(CaptureDaemon(settings), registry)
        assert registry.get_sample_value("hallmonitor_capture_up", {"site": "st-marys"}) == 0
        assert (
            registry.get_sample_value("hallmonitor_capture_frames_total", {"site": "st-marys"})
            is None
        )

    def test_scraped_over_http_the_totals_are_the_daemons_status(
        self, running: RunningDaemon
    ) -> None:
        registry = CollectorRegistry()
        register_daemon_metrics(running.daemon, registry)
        server = serve_metrics("127.0.0.1", 0, registry)
        assert server is not None
        before = running.daemon.status()
        try:
            text = scrape(server.port)
        finally:
            server.close()
        after = running.daemon.status()
        assert before is not None and after is not None
        found = {name: sample.value for name, sample in samples(text).items()}
        replayed = {  # fixed once the replay is done
            "hallmonitor_capture_up": 1,
            "hallmonitor_capture_packets_total": frames_in(INSTAGRAM),
            "hallmonitor_capture_kernel_drops_total": 0,
            "hallmonitor_capture_frames_total": frames_in(INSTAGRAM),
            "hallmonitor_capture_malformed_total": after.malformed,
            "hallmonitor_observations_total": after.observations,
            "hallmonitor_matches_total": after.matches,
            "hallmonitor_incidents_opened_total": after.incidents_opened,
            "hallmonitor_capture_start_time_seconds": running.daemon.started_at,
            "hallmonitor_writer_spool_bytes": 0,
            "hallmonitor_writer_spooled_total": 0,
            "hallmonitor_writer_replayed_total": 0,
            "hallmonitor_writer_recovered_total": 0,
            "hallmonitor_writer_dropped_total": 0,
            "hallmonitor_writer_rejected_total": 0,
        }
        assert {name: found[name] for name in replayed} == replayed
        assert after.observations > 0 and after.matches > 0 and after.incidents_opened > 0
        moving = {  # the engine closes incidents and the writer writes while we look
            "hallmonitor_incidents_closed_total": (before.incidents_closed, after.incidents_closed),
            "hallmonitor_writer_written_total": (before.writer.written, after.writer.written),
        }
        for name, (low, high) in moving.items():
            assert low <= found[name] <= high, name
        assert found["hallmonitor_writer_queue_depth"] >= 0
        assert len(found) == len(COUNTERS) + 4  # every counter, two gauges, up, start time

    def test_every_sample_is_labelled_with_the_site_and_nothing_else(
        self, running: RunningDaemon, sqlite_url: str
    ) -> None:
        registry = CollectorRegistry()
        register_daemon_metrics(running.daemon, registry)
        with daemon_metrics(running.daemon, ("127.0.0.1", 0), CollectorRegistry()) as server:
            assert server is not None
            text = scrape(server.port)
        running.stop()  # the incident is stored now, with the device's address and MAC
        assert all(sample.labels == {"site": "st-marys"} for sample in samples(text).values())
        engine = make_engine(sqlite_url)
        try:
            identifiers = device_identifiers(engine)
        finally:
            engine.dispose()
        assert {"192.168.0.103", "40:f3:08:c3:8e:e1"} <= identifiers
        assert sorted(i for i in identifiers if i in text) == []

    def test_after_stop_the_daemon_is_no_longer_up(self, running: RunningDaemon) -> None:
        registry = CollectorRegistry()
        register_daemon_metrics(running.daemon, registry)
        summary = running.stop()
        status = running.daemon.status()
        assert status is not None
        site = {"site": "st-marys"}
        assert registry.get_sample_value("hallmonitor_capture_up", site) == 0
        assert registry.get_sample_value("hallmonitor_incidents_closed_total", site) == (
            status.incidents_closed
        )
        assert registry.get_sample_value("hallmonitor_writer_written_total", site) == (
            summary.writer.written
        )

    def test_a_second_daemon_collector_in_one_registry_is_refused(self, settings: Settings) -> None:
        registry = CollectorRegistry()
        register_daemon_metrics(CaptureDaemon(settings), registry)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            registry.register(DaemonCollector(CaptureDaemon(settings)))


class TestServeMetrics:
    def test_a_port_in_use_is_one_error_line_and_no_server(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with caplog.at_level(logging.ERROR, logger="monitor.metrics"):
                assert serve_metrics("127.0.0.1", port, CollectorRegistry()) is None
        (record,) = caplog.records
        message = record.getMessage()
        assert f"cannot listen on 127.0.0.1:{port}" in message
        assert "capture goes on" in message and "capture.metrics_listen" in message
        assert "\n" not in message

    def test_the_block_ends_with_the_port_closed_and_the_collector_gone(
        self, settings: Settings
    ) -> None:
        registry = CollectorRegistry()
        port = free_port()
        with daemon_metrics(CaptureDaemon(settings), ("127.0.0.1", port), registry) as server:
            assert server is not None and server.port == port
            assert "hallmonitor_capture_up" in scrape(port)
        assert registry.get_sample_value("hallmonitor_capture_up", {"site": "st-marys"}) is None
        with pytest.raises(OSError):
            scrape(port)

    def test_without_an_address_nothing_listens_but_the_collector_is_registered(
        self, settings: Settings
    ) -> None:
        registry = CollectorRegistry()
        with daemon_metrics(CaptureDaemon(settings), None, registry) as server:
            assert server is None
            assert registry.get_sample_value("hallmonitor_capture_up", {"site": "st-marys"}) == 0


# -- `hallmonitor capture` serves them, as a real process on interfaces the test creates -------


@pytest.fixture
def veth() -> Iterator[object]:
    from tests.monitor.sources.netns import veth_namespace

    with veth_namespace() as pair:
        yield pair


def capture_config(tmp_path: Path, url: str, interface: str, listen: str) -> Path:
    extra = f'\n[capture]\ninterfaces = ["{interface}"]\nmetrics_listen = "{listen}"\n'
    return write_config(tmp_path, url, extra=extra)


@pytest.mark.live_capture
def test_capture_serves_its_metrics_on_metrics_listen(
    veth, sqlite_url: str, tmp_path: Path
) -> None:
    from tests.monitor.sources.netns import run_in_namespace
    from tests.monitor.sources.test_live import dns_query

    port = free_port()
    daemon = Daemon(capture_config(tmp_path, sqlite_url, veth.host_iface, f"127.0.0.1:{port}"))
    try:
        wait_for(
            lambda: daemon.logged("capturing on") or daemon.process.poll() is not None,
            30,
            "the daemon to start",
        )
        assert daemon.process.poll() is None, "".join(daemon.lines)
        assert daemon.logged(f"metrics on http://127.0.0.1:{port}/metrics")
        send = f"""
import socket
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for index in range(20):
    udp.sendto(bytes.fromhex({dns_query("www.instagram.com").hex()!r}), ({veth.host_ip!r}, 53))
"""
        run_in_namespace(veth.ns_name, send)
        wait_for(
            lambda: samples(scrape(port))["hallmonitor_matches_total"].value == 20,
            30,
            "the matches in the metrics",
        )
        text = scrape(port)
    finally:
        status = daemon.stop()
    assert status == 0, "".join(daemon.lines)
    found = samples(text)
    assert found["hallmonitor_capture_up"].value == 1
    assert found["hallmonitor_capture_packets_total"].value >= 20
    assert found["hallmonitor_incidents_opened_total"].value == 1
    assert all(sample.labels == {"site": "st-marys"} for sample in found.values())
    assert veth.ns_ip not in text
    assert "process_start_time_seconds" in text  # the default registry's process metrics too


@pytest.mark.live_capture
def test_capture_goes_on_when_the_metrics_port_is_taken(
    veth, sqlite_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(capture_config(tmp_path, sqlite_url, veth.host_iface, f"127.0.0.1:{port}"))
        try:
            wait_for(
                lambda: daemon.logged("capturing on") or daemon.process.poll() is not None,
                30,
                "the daemon to start",
            )
            assert daemon.process.poll() is None, "".join(daemon.lines)
        finally:
            status = daemon.stop()
    stderr = "".join(daemon.lines)
    assert status == 0, stderr
    (line,) = [line for line in daemon.lines if "cannot listen" in line]
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in line
    assert "Traceback" not in stderr
