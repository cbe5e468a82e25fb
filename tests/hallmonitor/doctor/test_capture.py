"""`hallmonitor doctor`'s capture checks: capabilities, and interfaces that carry lookups."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hallmonitor.doctor.capture import (
    CAPABILITY_FIX,
    InterfaceState,
    Traffic,
    check_capabilities,
    check_interfaces,
    effective_capabilities,
    judge_capabilities,
    judge_interface,
)
from monitor.sources.live import DEFAULT_BPF
from tests.monitor.sources.netns import VethNamespace, namespace_command, veth_namespace

EXAMPLE_QUERY = "1234 0100 0001 0000 0000 0000 076578616d706c65 036f7267 00 0001 0001"
"""A DNS query for example.org (header, name, type A, class IN)."""


@contextmanager
def sending(pair: VethNamespace, port: int) -> Iterator[None]:
    """Inside the namespace, send a small UDP datagram to the host end every 20 ms; returns once
    the first has been sent."""
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"query = bytes.fromhex({EXAMPLE_QUERY!r})\n"
        "while True:\n"
        f"    s.sendto(query, ({pair.host_ip!r}, {port}))\n"
        "    print('sent', flush=True)\n"
        "    time.sleep(0.02)\n"
    )
    process = subprocess.Popen(
        namespace_command(pair.ns_name, code), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "sent\n"
        yield
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def quiet(pair: VethNamespace) -> None:
    """Stop the namespace's IPv6 router solicitations and MLD reports reaching the host end."""
    subprocess.run(
        ["ip", "netns", "exec", pair.ns_name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        check=True,
    )


# --- capabilities ---------------------------------------------------------------------------


def test_capabilities_are_read_from_the_capeff_line() -> None:
    status = "Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n"
    assert effective_capabilities(status) == (1 << 12) | (1 << 13)


def test_capabilities_pass_with_net_raw_and_net_admin() -> None:
    result = judge_capabilities((1 << 12) | (1 << 13))
    assert result.ok
    assert result.detail == "CAP_NET_RAW and CAP_NET_ADMIN effective"


def test_capabilities_fail_naming_the_missing_one_and_how_to_grant_it() -> None:
    result = judge_capabilities(1 << 13)
    assert not result.ok
    assert result.detail == "CAP_NET_ADMIN not effective: live capture will be refused"
    assert result.fix == CAPABILITY_FIX
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in result.fix
    assert "setcap cap_net_raw,cap_net_admin+eip" in result.fix


def test_capabilities_pass_as_root() -> None:
    assert os.geteuid() == 0, "these tests run as root"
    assert check_capabilities().ok


def without_capture_capabilities(
    tmp_path: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hallmonitor ARGS`` as root, but with CAP_NET_RAW and CAP_NET_ADMIN dropped."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed"
    hallmonitor = str(Path(sys.executable).with_name("hallmonitor"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    environment["HALLMONITOR_DATABASE__DATA_DIR"] = str(tmp_path / "data")
    environment.update(environ or {})
    return subprocess.run(
        [setpriv, "--inh-caps=-all", "--bounding-set=-net_raw,-net_admin", hallmonitor, *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )


@pytest.mark.slow  # a subprocess: the CLI's imports take seconds on a loaded machine
def test_doctor_without_the_capabilities_fails_and_says_what_to_grant(tmp_path: Path) -> None:
    result = without_capture_capabilities(
        tmp_path, "doctor", "--check", "capabilities", "--by", "it-tech"
    )

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "FAIL capabilities CAP_NET_RAW and CAP_NET_ADMIN not effective: live capture will be "
        "refused"
    )
    assert lines[1].strip() == f"fix: {CAPABILITY_FIX}"
    assert lines[2] == "1 of 1 checks failed"
    assert lines[3].startswith("not recorded: the database sqlite:///")


# --- interfaces -----------------------------------------------------------------------------


def test_an_interface_that_is_missing_fails_with_how_to_name_the_right_one() -> None:
    result = check_interfaces(["hm-no-such0"], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == "hm-no-such0 does not exist"
    assert "capture.interfaces" in result.fix
    assert "ip -br link" in result.fix


def test_no_interface_at_all_fails() -> None:
    result = check_interfaces([], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert "no interface to capture on" in result.detail


@pytest.mark.live_capture
def test_an_interface_carrying_dns_passes() -> None:
    with veth_namespace() as pair, sending(pair, 53):
        result = check_interfaces([pair.host_iface], 30, bpf=DEFAULT_BPF)
    assert result.ok, result.detail
    assert result.detail.startswith(f"{pair.host_iface} up, ")
    assert re.fullmatch(r"[\d,]+ DNS/TLS/QUIC packets? seen", result.detail.split(" up, ")[1])


@pytest.mark.live_capture
def test_a_silent_interface_fails() -> None:
    with veth_namespace() as pair:
        quiet(pair)
        result = check_interfaces([pair.host_iface], 0.5, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == f"{pair.host_iface} is silent: no frames in 0.5 s"
    assert "mirror port" in result.fix


@pytest.mark.live_capture
def test_an_interface_with_traffic_but_no_lookups_fails_as_the_wrong_place() -> None:
    with veth_namespace() as pair, sending(pair, 9999):
        result = check_interfaces([pair.host_iface], 1.0, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail.startswith(f"{pair.host_iface} received ")
    assert re.search(r" frames? in 1 s but no DNS, TLS or QUIC from clients$", result.detail)
    assert "LAN side of NAT" in result.fix


@pytest.mark.live_capture
def test_an_interface_that_is_down_fails_with_how_to_bring_it_up() -> None:
    with veth_namespace() as pair:
        subprocess.run(["ip", "link", "set", pair.host_iface, "down"], check=True)
        result = check_interfaces([pair.host_iface], 0.2, bpf=DEFAULT_BPF)
    assert not result.ok
    assert result.detail == f"{pair.host_iface} is down"
    assert result.fix.startswith(f"bring it up (ip link set {pair.host_iface} up)")


@pytest.mark.live_capture
@pytest.mark.slow  # a subprocess, and a one-second watch
def test_without_capture_capabilities_the_kernel_counter_still_shows_traffic(
    tmp_path: Path,
) -> None:
    with veth_namespace() as pair, sending(pair, 53):
        result = without_capture_capabilities(
            tmp_path,
            "doctor",
            "--check",
            "interfaces",
            "--watch",
            "1",
            environ={"HALLMONITOR_CAPTURE__INTERFACES": pair.host_iface},
        )

    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"OK   interfaces   {pair.host_iface} up, ")
    assert re.search(
        r"frames? received \(kernel counter; not captured: this process may not", first
    )


def test_without_capture_the_kernel_counter_decides() -> None:
    state = InterfaceState("eth1", exists=True, operstate="up", rx_packets=10)
    counted = Traffic(captured=None, received=42, capture_error="not permitted")
    silent = Traffic(captured=None, received=0, capture_error="not permitted")
    assert judge_interface(state, counted, 5) is None
    assert judge_interface(state, silent, 5) == ("silent", "eth1 received no frames in 5 s")
