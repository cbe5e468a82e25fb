"""Checks of what capture needs: the capabilities, and interfaces that carry clients' lookups.

Interfaces are watched with the daemon's own capture (``LiveSource`` and its kernel filter)
rather than by ``/sys/class/net/X/statistics/rx_packets``: the counter says that frames arrive,
not that any of them is DNS, TLS or QUIC from clients, and a mirror port's frames only count
once the interface is promiscuous, which capture sets. The counter is still read, to tell a
silent interface from one carrying the wrong traffic, and it stands in when capture is not
permitted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from monitor.checks import (
    CheckResult,
    failed,
    passed,
)
from monitor.sources.live import CaptureSetupError, LiveSource

DEFAULT_WATCH_S = 5.0
"""How long an interface may stay silent before it fails the traffic check."""
SYS_NET = Path("/sys/class/net")
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAPTURE_CAPABILITIES = {"CAP_NET_RAW": CAP_NET_RAW, "CAP_NET_ADMIN": CAP_NET_ADMIN}
CAPABILITY_FIX = (
    "run as root, or grant CAP_NET_RAW and CAP_NET_ADMIN: AmbientCapabilities=CAP_NET_RAW "
    "CAP_NET_ADMIN in the systemd unit (deploy/systemd/), or setcap cap_net_raw,cap_net_admin+eip "
    "on the Python binary"
)


# --- capabilities -----------------------------------------------------------------------------


def effective_capabilities(status_text: str) -> int:
    """The ``CapEff`` bit mask from the text of ``/proc/<pid>/status``."""
    found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)\s*$", status_text, re.MULTILINE)
    if found is None:
        raise ValueError("no CapEff line in the process status")
    return int(found[1], 16)


def judge_capabilities(effective: int) -> CheckResult:
    """Capture needs CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN (promiscuous mode, buffer)."""
    missing = [name for name, bit in CAPTURE_CAPABILITIES.items() if not effective >> bit & 1]
    if missing:
        return failed(
            "capabilities",
            f"{' and '.join(missing)} not effective: live capture will be refused",
            CAPABILITY_FIX,
        )
    return passed("capabilities", "CAP_NET_RAW and CAP_NET_ADMIN effective")


def check_capabilities(status_file: Path = Path("/proc/self/status")) -> CheckResult:
    try:
        effective = effective_capabilities(status_file.read_text(encoding="ascii"))
    except (OSError, ValueError) as e:
        return failed("capabilities", f"cannot read {status_file}: {e}", CAPABILITY_FIX)
    return judge_capabilities(effective)


# --- interfaces -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterfaceState:
    """What the kernel says of an interface (from ``/sys/class/net``)."""

    name: str
    exists: bool
    operstate: str = ""
    rx_packets: int = 0


@dataclass(frozen=True, slots=True)
class Traffic:
    """What an interface received while it was watched."""

    captured: int | None
    """Frames that passed the daemon's filter (DNS, TLS, QUIC...); None when capture failed."""
    received: int
    """Frames the kernel counted in ``rx_packets``, whatever they were."""
    capture_error: str = ""


def interface_state(name: str, sys_net: Path = SYS_NET) -> InterfaceState:
    entry = sys_net / name
    if not entry.is_dir():
        return InterfaceState(name, exists=False)
    return InterfaceState(
        name,
        exists=True,
        operstate=_read(entry / "operstate", "unknown"),
        rx_packets=int(_read(entry / "statistics" / "rx_packets", "0") or 0),
    )


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return default


def is_up(state: InterfaceState) -> bool:
    """``unknown`` is up too: tunnels and some drivers never report an operational state."""
    return state.operstate in ("up", "unknown")


class InterfaceProblem(NamedTuple):
    kind: Literal["missing", "down", "silent", "no-lookups"]
    text: str


INTERFACE_FIXES = {
    "missing": "set capture.interfaces to the LAN-side interface(s); `ip -br link` lists those "
    "that exist",
    "down": "bring it up (ip link set {name} up) and check its cable or switch port",
    "no-lookups": "the sensor sees traffic but not the clients' lookups: put it on the LAN side "
    "of NAT or on a switch mirror port of the clients' uplink (deploy/IT guide)",
    "silent": "connect the interface to the LAN side of NAT or to a switch mirror port, or set "
    "capture.interfaces to the one that carries the clients' traffic",
}
"""The fix for each kind of problem, most basic first: the first kind found is the one shown."""


def count_of(number: int, noun: str) -> str:
    """``1 frame``, ``12,000 frames``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def judge_interface(
    state: InterfaceState, traffic: Traffic | None, watch_s: float
) -> InterfaceProblem | None:
    """Why the interface cannot serve (None when it can)."""
    name = state.name
    if not state.exists:
        return InterfaceProblem("missing", f"{name} does not exist")
    if not is_up(state):
        return InterfaceProblem("down", f"{name} is {state.operstate}")
    if traffic is None or traffic.captured or (traffic.captured is None and traffic.received):
        return None
    if traffic.captured is None:
        return InterfaceProblem("silent", f"{name} received no frames in {watch_s:g} s")
    if traffic.received:
        return InterfaceProblem(
            "no-lookups",
            f"{name} received {count_of(traffic.received, 'frame')} in {watch_s:g} s but no DNS, "
            "TLS or QUIC from clients",
        )
    return InterfaceProblem("silent", f"{name} is silent: no frames in {watch_s:g} s")


def describe_interface(state: InterfaceState, traffic: Traffic | None, watch_s: float) -> str:
    problem = judge_interface(state, traffic, watch_s)
    if problem is not None:
        return problem.text
    if traffic is None:
        return f"{state.name} up"
    if traffic.captured is None:
        return (
            f"{state.name} up, {count_of(traffic.received, 'frame')} received (kernel counter; "
            f"not captured: {traffic.capture_error})"
        )
    return f"{state.name} up, {count_of(traffic.captured, 'DNS/TLS/QUIC packet')} seen"


def interface_fix(problems: Sequence[tuple[str, InterfaceProblem]]) -> str:
    """The fix for the most basic kind of problem found (``problems``: interface, problem)."""
    for kind, fix in INTERFACE_FIXES.items():
        for name, problem in problems:
            if problem.kind == kind:
                return fix.format(name=name)
    return ""


def watch_interfaces(
    names: Sequence[str],
    watch_s: float,
    *,
    bpf: str,
    sys_net: Path = SYS_NET,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.1,
) -> dict[str, Traffic]:
    """Capture on each interface until each has seen a packet, at most ``watch_s`` seconds."""
    before = {name: interface_state(name, sys_net).rx_packets for name in names}
    sources: dict[str, LiveSource] = {}
    errors: dict[str, str] = {}
    try:
        for name in names:
            try:
                sources[name] = LiveSource([name], bpf=bpf, snaplen=256, buffer_bytes=2 << 20)
            except CaptureSetupError as e:
                errors[name] = str(e)
        seen = dict.fromkeys(sources, 0)
        deadline = clock() + watch_s
        while True:
            for name, source in sources.items():
                received, dropped = source.stats()[name]
                seen[name] = received + dropped
            if (sources and all(seen.values())) or clock() >= deadline:
                break
            time.sleep(poll_s)
    finally:
        for source in sources.values():
            source.close()
    after = {name: interface_state(name, sys_net).rx_packets for name in names}
    return {
        name: Traffic(
            captured=seen.get(name) if name in sources else None,
            received=max(0, after[name] - before[name]),
            capture_error=errors.get(name, ""),
        )
        for name in names
    }


def check_interfaces(
    names: Sequence[str], watch_s: float, *, bpf: str, sys_net: Path = SYS_NET
) -> CheckResult:
    """Every interface exists, is up, and carries what the daemon reads."""
    if not names:
        return failed(
            "interfaces",
            "no interface to capture on: capture.interfaces is empty and no interface is up",
            "set capture.interfaces to the LAN-side interface(s); `ip -br link` lists them",
        )
    states = [interface_state(name, sys_net) for name in names]
    usable = [state.name for state in states if state.exists and is_up(state)]
    traffic = watch_interfaces(usable, watch_s, bpf=bpf, sys_net=sys_net) if usable else {}
    problems = [
        (state.name, problem)
        for state in states
        if (problem := judge_interface(state, traffic.get(state.name), watch_s)) is not None
    ]
    detail = "; ".join(describe_interface(s, traffic.get(s.name), watch_s) for s in states)
    if problems:
        return failed("interfaces", detail, interface_fix(problems))
    return passed("interfaces", detail)
