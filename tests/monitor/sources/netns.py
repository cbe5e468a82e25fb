"""Throwaway network namespaces for live-capture tests and benchmarks (needs root).

``veth_namespace()`` creates a veth pair with one end in a fresh network namespace, addresses
from the benchmarking ranges (198.18.0.0/15, 2001:2::/48), and removes both on exit, also after
a failure. Traffic sent inside the namespace arrives on the host end, where a ``LiveSource``
can capture it; nothing leaves the machine.

    with veth_namespace() as (host_iface, ns_name, host_ip, ns_ip):
        run_in_namespace(ns_name, "import socket; ...")
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

CLONE_NEWNET = 0x40000000


class VethNamespace(NamedTuple):
    """A veth pair between this namespace and a new one."""

    host_iface: str
    ns_name: str
    host_ip: str
    ns_ip: str

    @property
    def ns_iface(self) -> str:
        """The veth end inside the namespace."""
        return self.host_iface[:-1] + "n"

    @property
    def host_ip6(self) -> str:
        return _ipv6(self.host_ip, 1)

    @property
    def ns_ip6(self) -> str:
        return _ipv6(self.host_ip, 2)


def _ipv6(host_ip: str, last: int) -> str:
    # One /64 per /30: the /30's index inside 198.18.0.0/15 becomes the fourth group.
    octets = [int(part) for part in host_ip.split(".")]
    index = (((octets[1] - 18) << 16) | (octets[2] << 8) | octets[3]) >> 2
    return f"2001:2:0:{index:x}::{last}"


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "-n", namespace, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")


@contextmanager
def veth_namespace() -> Iterator[VethNamespace]:
    """Create a namespace and a veth pair into it; delete both afterwards."""
    token = secrets.token_hex(3)
    ns_name = f"hm-test-{token}"
    host_iface = f"hm{token}h"
    index = secrets.randbelow(1 << 15)  # a /30 inside 198.18.0.0/15
    base = (198 << 24) | (18 << 16) | (index << 2)
    host_ip = _dotted(base + 1)
    ns_ip = _dotted(base + 2)
    pair = VethNamespace(host_iface, ns_name, host_ip, ns_ip)
    try:
        _ip("netns", "add", ns_name)
        _ip(
            "link",
            "add",
            host_iface,
            "type",
            "veth",
            "peer",
            "name",
            pair.ns_iface,
            "netns",
            ns_name,
        )
        _ip("addr", "add", f"{host_ip}/30", "dev", host_iface)
        _ip("-6", "addr", "add", f"{pair.host_ip6}/64", "dev", host_iface, "nodad")
        _ip("link", "set", host_iface, "up")
        _ip("addr", "add", f"{ns_ip}/30", "dev", pair.ns_iface, namespace=ns_name)
        _ip(
            "-6",
            "addr",
            "add",
            f"{pair.ns_ip6}/64",
            "dev",
            pair.ns_iface,
            "nodad",
            namespace=ns_name,
        )
        _ip("link", "set", pair.ns_iface, "up", namespace=ns_name)
        _ip("link", "set", "lo", "up", namespace=ns_name)
        yield pair
    finally:
        subprocess.run(["ip", "link", "del", host_iface], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns_name], capture_output=True, check=False)


def _dotted(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def namespace_command(ns_name: str, code: str) -> list[str]:
    """The command line that runs a Python snippet inside the namespace."""
    return ["ip", "netns", "exec", ns_name, sys.executable, "-c", code]


def run_in_namespace(ns_name: str, code: str, *, timeout: float = 30.0) -> str:
    """Run a Python snippet inside the namespace; its stdout, or RuntimeError with stderr."""
    result = subprocess.run(
        namespace_command(ns_name, code),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"snippet failed in {ns_name}:\n{result.stderr}")
    return result.stdout


@contextmanager
def inside_namespace(ns_name: str) -> Iterator[None]:
    """Move this thread into the namespace (sockets opened now stay there), then back."""
    libc = ctypes.CDLL(None, use_errno=True)
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(f"/run/netns/{ns_name}", "rb") as target,
    ):
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(
                ctypes.get_errno(), f"setns into {ns_name}: {os.strerror(ctypes.get_errno())}"
            )
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")


def set_mtu(pair: VethNamespace, mtu: int) -> None:
    """Let frames up to ``mtu`` bytes of IP through both ends (a generated capture holds
    ClientHellos larger than Ethernet's 1500, as segmentation offload writes them)."""
    _ip("link", "set", pair.host_iface, "mtu", str(mtu))
    _ip("link", "set", pair.ns_iface, "mtu", str(mtu), namespace=pair.ns_name)
