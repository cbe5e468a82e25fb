"""Golden tests: ``hallmonitor scan`` reads the same names as an established peer.

Every capture in ``tests/data/pcaps`` comes with the names Zeek or tshark extracted from it
(``expected/<name>.json``). For each file the sets of DNS question names, TLS server names and
QUIC server names must equal the peer's, compared case-insensitively. Where we believe the peer
is wrong, or a capture is out of scope, ``DISAGREEMENTS`` says so and a named test pins down
exactly what we do instead (see ``tests/data/pcaps/README.md``).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hallmonitor.cli.root import main
from tests.data.tshark_names import as_tshark_prints

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
EXPECTED = PCAPS / "expected"


@dataclass(frozen=True)
class Names:
    dns: frozenset[str]
    tls: frozenset[str]
    quic: frozenset[str]


@dataclass(frozen=True)
class Disagreement:
    """Where our output differs from the peer's on purpose, and why."""

    why: str
    peer_only: dict[str, set[str]] = field(default_factory=dict)
    """Per protocol (``dns``, ``tls``, ``quic``): names the peer lists and we do not."""
    ours_only: dict[str, set[str]] = field(default_factory=dict)
    """Per protocol: names we find and the peer does not."""

    def applied_to(self, peer: Names) -> Names:
        def adjust(proto: str) -> frozenset[str]:
            names = getattr(peer, proto) - self.peer_only.get(proto, set())
            return frozenset(names | self.ours_only.get(proto, set()))

        return Names(adjust("dns"), adjust("tls"), adjust("quic"))


def peer_of(capture: str) -> str:
    return str(json.loads((EXPECTED / f"{capture}.json").read_text())["peer"]).split()[0]


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
    if peer_of(capture) == "tshark":
        # Compare in tshark's notation for odd label bytes (see tests/data/tshark_names.py).
        found["dns"] = {as_tshark_prints(name) for name in found["dns"]}
    return Names(*(frozenset(found[key]) for key in ("dns", "tls", "quic")))


def all_captures() -> list[str]:
    return sorted(path.stem for path in EXPECTED.glob("*.json"))


OUT_OF_SCOPE_LINK_TYPE = (
    "The capture's link type is out of scope (the issue names 802.11, radiotap and PKTAP): a "
    "gateway sensor captures on wired interfaces. The frames are counted and the link type is "
    "named in the scan summary (test_out_of_scope_link_types_are_named_in_the_summary)."
)
CLEARTEXT_DOH = (
    "DNS over HTTPS carried in cleartext HTTP/2 (h2c), which tshark decodes. Browsers and "
    "operating systems speak DoH only inside TLS, where no monitor can read the queries; we flag "
    "DoH by the resolver's server name (encrypted-dns) instead of parsing HTTP/2."
)

DISAGREEMENTS: dict[str, Disagreement] = {
    "ndpi-fuzz-2006": Disagreement(
        why=(
            "Fuzzed DNS headers claim impossible question counts (frames 452, 588 and 315: e.g. "
            "34817 questions in 32 bytes). tshark still prints the first question; we reject such "
            "a message as not DNS, so that junk on a DNS port cannot become names. Every question "
            "in a message with a plausible count is read (see tests/monitor/extract/test_dns.py)."
        ),
        peer_only={
            "dns": {
                "1.0.0.127.in-a\\032dr.arpa",
                "_sip._udp.sip.cybescity.dk",
                "_sip._udp.sip.sybertity.dk",
            }
        },
    ),
    "td-quic-vn": Disagreement(
        why=(
            "After Version Negotiation the client sends a real QUIC v1 Initial that authenticates "
            "and carries SNI localhost. tshark 4.0.17 keeps the cipher of the first, reserved-"
            "version packet and fails to decrypt it; with the first two frames cut off "
            "(editcap -r 3-) tshark finds localhost too."
        ),
        ours_only={"quic": {"localhost"}},
    ),
    "zeek-dns-notify-vlan": Disagreement(
        why=(
            "A response whose request is not in the capture: Zeek logs its query as '-', but the "
            "message does carry the question aei.mpg.de, which tshark reports and so do we."
        ),
        ours_only={"dns": {"aei.mpg.de"}},
    ),
    "zeek-mdns-no-assoc": Disagreement(
        why=(
            "mDNS responses with no question section: Zeek logs the answer's owner name as the "
            "query. Those names were never asked for; tshark lists question names only, as we do."
        ),
        peer_only={
            "dns": {"unrelated-reply-a.local", "unrelated-reply-aaaa.local", "v6-unrelated.local"}
        },
    ),
    "sv-doh-h2c": Disagreement(
        why=CLEARTEXT_DOH,
        peer_only={"dns": {"nav-edge.smartscreen.microsoft.com", "www.gstatic.com"}},
    ),
    "sv-doh-h2c-post": Disagreement(
        why=CLEARTEXT_DOH,
        peer_only={
            "dns": {
                "adservice.google.com",
                "adservice.google.se",
                "apis.google.com",
                "consent.google.com",
                "detectportal.firefox.com",
                "example.com",
                "googleads.g.doubleclick.net",
                "id.google.com",
                "ogs.google.com",
                "ssl.gstatic.com",
                "www.google.com",
                "www.gstatic.com",
            }
        },
    ),
    "td-linktype-pktap": Disagreement(
        why=OUT_OF_SCOPE_LINK_TYPE, peer_only={"dns": {"in.m.yahoo.com"}}
    ),
    "zeek-dns-radiotap": Disagreement(
        why=OUT_OF_SCOPE_LINK_TYPE, peer_only={"dns": {"captive.apple.com"}}
    ),
}


@pytest.mark.parametrize("capture", [c for c in all_captures() if c not in DISAGREEMENTS])
def test_scan_agrees_with_peer(capture: str) -> None:
    assert scanned_names(capture) == expected_names(capture)


@pytest.mark.parametrize("capture", sorted(DISAGREEMENTS))
def test_scan_disagrees_with_peer_only_as_documented(capture: str) -> None:
    disagreement = DISAGREEMENTS[capture]
    assert disagreement.why
    assert disagreement.peer_only or disagreement.ours_only
    assert scanned_names(capture) == disagreement.applied_to(expected_names(capture))


def test_every_capture_has_expectations() -> None:
    captures = {path.name.rsplit(".", 1)[0] for path in PCAPS.glob("*.pcap*")}
    assert captures == set(all_captures())


@pytest.mark.parametrize(
    ("capture", "named"),
    [("td-linktype-pktap", "PKTAP (258)"), ("zeek-dns-radiotap", "IEEE802_11_RADIOTAP (127)")],
)
def test_out_of_scope_link_types_are_named_in_the_summary(capture: str, named: str) -> None:
    path = next(PCAPS.glob(f"{capture}.pcap*"))
    result = CliRunner().invoke(main, ["scan", "--format", "jsonl", str(path)])
    assert result.exit_code == 0
    assert f"unsupported link types: {named}" in result.stderr


# --- Generated captures: DNS answers cut short, as tshark reads them -------------------------
# A large answer (DNSSEC's above all) comes as IPv4 fragments, and a capture may keep only the
# first bytes of a packet. tshark reads the DNS message of a UDP datagram as far as it was
# captured, and so of a first fragment (offset 0, more to come) cut by the snap length, whose
# datagram can never be reassembled. The captures are made here with scapy; what tshark 4.0.17
# printed for them (``-T fields -e dns.qry.name -e dns.a``) is written down below, and checked
# against tshark again wherever it is installed.

TSHARK_CUT_ANSWER = {"big.example.org": tuple(f"192.0.2.{host}" for host in range(1, 5))}
"""Question name, and the addresses of the answers that fit in 200 captured bytes."""


def large_dns_answer() -> Any:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    answers = [
        DNSRR(rrname="big.example.org", type="A", rdata=f"192.0.2.{host}") for host in range(1, 200)
    ]
    message = DNS(id=7, qr=1, ra=1, qd=DNSQR(qname="big.example.org"), an=answers)
    return (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.53", dst="198.51.100.7", id=99)
        / UDP(sport=53, dport=40000)
        / message
    )


def write_cut_capture(path: Path, frame: bytes, snaplen: int) -> None:
    """A classic pcap file with one frame, ``snaplen`` bytes of it captured."""
    kept = frame[:snaplen]
    path.write_bytes(
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
        + struct.pack("<IIII", 1_700_000_000, 0, len(kept), len(frame))
        + kept
    )


def cut_datagram() -> bytes:
    return bytes(large_dns_answer())


def cut_first_fragment() -> bytes:
    from scapy.layers.inet import fragment

    first = fragment(large_dns_answer(), fragsize=800)[0]
    assert first.flags == "MF" and first.frag == 0
    return bytes(first)


CUT_CAPTURES = {
    "datagram cut by the snap length": cut_datagram,
    "first fragment cut by the snap length": cut_first_fragment,
}


@pytest.fixture(params=sorted(CUT_CAPTURES))
def cut_capture(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "cut.pcap"
    write_cut_capture(path, CUT_CAPTURES[request.param](), snaplen=200)
    return path


def test_scan_reads_the_dns_answer_of_a_cut_packet_as_tshark_does(cut_capture: Path) -> None:
    result = CliRunner().invoke(
        main, ["scan", "--format", "jsonl", "--strict", str(cut_capture)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        observation = json.loads(line)
        found[observation["name"]] = tuple(observation["addresses"])
    assert found == TSHARK_CUT_ANSWER


def test_tshark_still_reads_the_cut_packets_as_written_down(cut_capture: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install-system-packages --bench)")
    result = subprocess.run(
        [tshark, "-r", str(cut_capture), "-T", "fields", "-e", "dns.qry.name", "-e", "dns.a"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for line in result.stdout.splitlines():
        name, addresses = line.split("\t")
        found[name] = tuple(addresses.split(","))
    assert found == TSHARK_CUT_ANSWER
