"""Specification of monitor.workers: ``capture.workers`` processes share the capture by flow,
and the daemon sees exactly what one process (and an offline ``scan`` of the same packets) sees.
"""

from __future__ import annotations

import json
import pickle
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hallmonitor.cli.root import main
from monitor.config.loading import load_settings
from monitor.runner import worker_plan
from monitor.sources.live import CaptureSetupError
from monitor.values import Flag, Observation, Proto
from monitor.workers import CaptureWorkers, WorkerPlan, fanout_group_base, observation_fields
from tests.bench.bench_capture import SENDER
from tests.bench.make_mix import write_mix
from tests.monitor.sources.netns import VethNamespace, namespace_command, set_mtu, veth_namespace
from tests.monitor.test_runner import Daemon, daily_counter, hallmonitor, wait_for, write_config


def test_each_daemon_has_its_own_fanout_groups() -> None:
    """Two daemons on one machine must not share packets: the group follows the process id,
    and leaves room for one group per interface."""
    assert fanout_group_base(0x1234) != fanout_group_base(0x5634)
    assert fanout_group_base(0x1234) & 0xFF == 0


def test_an_observation_crosses_the_pipe_whole() -> None:
    observation = Observation(
        1.5,
        Proto.DNS,
        "www.example.org",
        "10.0.0.7",
        "02:00:00:00:00:07",
        "10.0.0.1",
        53,
        frozenset({Flag.RESPONSE}),
        ("edge.example.net",),
        ("192.0.2.1", "2001:db8::1"),
        20,
    )
    sent = pickle.dumps([observation_fields(observation)])
    assert [Observation(*fields) for fields in pickle.loads(sent)] == [observation]


def test_workers_are_at_least_two() -> None:
    """One worker is the daemon's own capture thread, without processes or pipes."""
    with pytest.raises(ValueError, match="at least 2"):
        CaptureWorkers(worker_plan_for(["lo"]), 1)


def test_workers_that_cannot_open_the_interfaces_say_why() -> None:
    with pytest.raises(CaptureSetupError, match="no network interface 'nope0'"):
        CaptureWorkers(worker_plan_for(["nope0"]), 2)


def worker_plan_for(interfaces: list[str]) -> WorkerPlan:
    settings = load_settings(
        None, environ={"HALLMONITOR_CAPTURE__INTERFACES": json.dumps(interfaces)}
    )
    return worker_plan(settings)


@pytest.fixture
def veth() -> Iterator[VethNamespace]:
    with veth_namespace() as pair:
        set_mtu(pair, 9000)
        yield pair


def scanned_counts(path: Path) -> Counter[str]:
    result = CliRunner().invoke(
        main, ["scan", "--format", "jsonl", "--strict", str(path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return Counter(json.loads(line)["proto"] for line in result.stdout.splitlines())


@pytest.mark.live_capture
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_live_capture_sees_what_scan_sees_of_the_same_packets(
    veth: VethNamespace, tmp_path: Path, workers: int
) -> None:
    """A generated dense mix (DNS, TLS and QUIC ClientHellos split over packets, DHCP), sent
    once over a veth pair while ``capture`` runs: its daily counters of observations per
    protocol equal the observations ``scan`` prints of the same file."""
    capture = tmp_path / "mix.pcap"
    write_mix(capture, "dense", 3000, seed=7)
    expected = scanned_counts(capture)
    assert expected["dns"] and expected["tls"] and expected["quic"]
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    config = write_config(
        tmp_path,
        url,
        extra=f'\n[capture]\ninterfaces = ["{veth.host_iface}"]\nworkers = {workers}\n',
    )
    subprocess.run(hallmonitor("--config", str(config), "db", "upgrade"), check=True, timeout=60)
    daemon = Daemon(config)
    try:
        wait_for(
            lambda: daemon.logged("capturing on") or daemon.process.poll() is not None,
            60,
            "the daemon to start",
        )
        assert daemon.process.poll() is None, "".join(daemon.lines)
        subprocess.run(
            [*namespace_command(veth.ns_name, SENDER), str(capture), veth.ns_iface, "5000"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    finally:
        status = daemon.stop()
    stderr = "".join(daemon.lines)
    assert status == 0, stderr
    assert "kernel drops 0," in stderr
    seen = Counter({proto: daily_counter(url, f"observations.{proto}") for proto in expected})
    assert seen == expected
