"""Golden tests: ``hallmonitor scan`` reads the same names as an established peer.

Every capture in ``tests/data/pcaps`` comes with the names Zeek or tshark extracted from it
(``expected/<name>.json``). For each file the sets of DNS question names, TLS server names and
QUIC server names must equal the peer's, compared case-insensitively. Where we believe the peer
is wrong, or a capture is out of scope, ``DISAGREEMENTS`` says so and a named test pins down
exactly what we do instead (see ``tests/data/pcaps/README.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
EXPECTED = PCAPS / "expected"


@dataclass(frozen=True)
class Names:
    dns: frozenset[str]
    tls: frozenset[str]
    quic: frozenset[str]


@dataclass(frozen=True)
class Disagreement:
    """Where our output differs from the peer's on purpose."""

    ours: Names
    why: str


def expected_names(capture: str) -> Names:
    data = json.loads((EXPECTED / f"{capture}.json").read_text())
    return Names(
        dns=frozenset(name.lower() for name in data["dns_queries"]),
        tls=frozenset(name.lower() for name in data["sni"]),
        quic=frozenset(name.lower() for name in data["quic_sni"]),
    )


def decode_as_dns_ports(capture: str) -> list[int]:
    """The ports the peer was told to read as DNS (tshark ``-d udp.port==N,dns``)."""
    data = json.loads((EXPECTED / f"{capture}.json").read_text())
    ports = []
    for rule in data["tshark_cross_check"].get("decode_as", []):
        selector, _, protocol = rule.partition(",")
        if protocol == "dns":
            ports.append(int(selector.split("==")[1]))
    return ports


@cache
def scanned_names(capture: str) -> Names:
    path = next(PCAPS.glob(f"{capture}.pcap*"))
    args = ["scan", "--format", "jsonl", "--strict", str(path)]
    for port in decode_as_dns_ports(capture):
        args += ["--dns-port", str(port)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    found: dict[str, set[str]] = {"dns": set(), "tls": set(), "quic": set()}
    for line in result.stdout.splitlines():
        observation = json.loads(line)
        if observation["proto"] in found:
            found[observation["proto"]].add(observation["name"].lower())
    return Names(*(frozenset(found[key]) for key in ("dns", "tls", "quic")))


def all_captures() -> list[str]:
    return sorted(path.stem for path in EXPECTED.glob("*.json"))


DISAGREEMENTS: dict[str, Disagreement] = {}


@pytest.mark.parametrize("capture", [c for c in all_captures() if c not in DISAGREEMENTS])
def test_scan_agrees_with_peer(capture: str) -> None:
    assert scanned_names(capture) == expected_names(capture)


@pytest.mark.parametrize("capture", sorted(DISAGREEMENTS))
def test_scan_disagrees_with_peer_only_as_documented(capture: str) -> None:
    disagreement = DISAGREEMENTS[capture]
    assert disagreement.why
    assert scanned_names(capture) == disagreement.ours
    assert disagreement.ours != expected_names(capture)


def test_every_capture_has_expectations() -> None:
    captures = {path.name.rsplit(".", 1)[0] for path in PCAPS.glob("*.pcap*")}
    assert captures == set(all_captures())
