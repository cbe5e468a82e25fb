"""`hallmonitor scan` as a user runs it: output, summary, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hallmonitor.cli.root import main
from tests.bench.make_mix import write_mix
from tests.data.pcapng import as_pcapng
from tests.data.traffic import (
    CLIENT_IP,
    CLIENT_MAC,
    RESOLVER_IP,
    dns_answer,
    dns_query,
    ether,
    tls_flow,
    write_pcap,
)

JSON_KEYS = {"ts", "proto", "name", "client_ip", "client_mac", "server_ip", "server_port", "flags"}


def sample_capture(tmp_path: Path) -> Path:
    from scapy.layers.inet import IP, UDP

    junk_dns = (
        ether() / IP(src=CLIENT_IP, dst=RESOLVER_IP) / UDP(sport=40001, dport=53) / b"\x00\x01"
    )
    packets = [
        dns_query("WWW.Instagram.com."),
        dns_answer("www.instagram.com", "z-p42-instagram.c10r.instagram.com", "157.240.221.174"),
        junk_dns,
        *tls_flow("www.instagram.com", split_at=700, padding=1500),
    ]
    return write_pcap(tmp_path / "sample.pcap", packets)


def run_scan(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["scan", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def test_scan_prints_one_json_line_per_observation(tmp_path: Path) -> None:
    status, lines, _ = run_scan("--format", "jsonl", "--strict", str(sample_capture(tmp_path)))
    assert status == 0
    assert all(line.keys() >= JSON_KEYS for line in lines)
    assert [(line["proto"], line["name"]) for line in lines] == [
        ("dns", "www.instagram.com"),
        ("dns", "www.instagram.com"),
        ("tls", "www.instagram.com"),
    ]
    query, answer, hello = lines
    assert query["client_ip"] == CLIENT_IP
    assert query["client_mac"] == CLIENT_MAC
    assert query["server_port"] == 53
    assert query["flags"] == []
    assert query["ts"] == 1_700_000_000.0
    assert answer["flags"] == ["response"]
    assert answer["client_ip"] == CLIENT_IP
    assert answer["cnames"] == ["z-p42-instagram.c10r.instagram.com"]
    assert answer["addresses"] == ["157.240.221.174"]
    assert hello["server_port"] == 443
    assert hello["client_mac"] == CLIENT_MAC


def test_scan_summary_counts_packets_and_malformed_input(tmp_path: Path) -> None:
    path = sample_capture(tmp_path)
    _, _, stderr = run_scan("--format", "jsonl", str(path))
    assert stderr.strip() == (
        f"{path}: 6 frames, 6 packets, 3 observations (dns 2, tls 1), 1 malformed (dns 1)"
    )


def test_scan_table_has_a_header_and_a_row_per_observation(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["scan", "--format", "table", str(sample_capture(tmp_path))])
    rows = result.stdout.splitlines()
    assert rows[0].startswith("time (UTC)")
    assert len(rows) == 4
    assert "2023-11-14T22:13:20.000000" in rows[1]
    assert "www.instagram.com" in rows[3] and "157.240.221.174:443" in rows[3]


def test_scan_names_an_unreadable_file_and_goes_on_with_the_rest(tmp_path: Path) -> None:
    not_a_capture = tmp_path / "notes.txt"
    not_a_capture.write_text("hello\n")
    good = sample_capture(tmp_path)
    status, lines, stderr = run_scan("--format", "jsonl", str(not_a_capture), str(good))
    assert status == 1
    first = stderr.splitlines()[0]
    assert first.startswith(f"hallmonitor scan: {not_a_capture}: ")
    assert len(lines) == 3


def test_scan_of_a_missing_file_says_so(tmp_path: Path) -> None:
    status, _, stderr = run_scan(str(tmp_path / "nope.pcap"))
    assert status == 1
    assert str(tmp_path / "nope.pcap") in stderr
    assert "Traceback" not in stderr


def test_scan_reads_dns_on_an_extra_port_only_when_asked(tmp_path: Path) -> None:
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP

    query = ether() / IP() / UDP(sport=1234, dport=8053) / DNS(qd=DNSQR(qname="example.org"))
    path = write_pcap(tmp_path / "8053.pcap", [query])
    assert run_scan("--format", "jsonl", str(path))[1] == []
    _, lines, _ = run_scan("--format", "jsonl", "--dns-port", "8053", str(path))
    assert [line["name"] for line in lines] == ["example.org"]


def test_hallmonitor_console_script_defaults_to_json_lines_in_a_pipe(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("hallmonitor")
    result = subprocess.run(
        [str(script), "scan", str(sample_capture(tmp_path))],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert [json.loads(line)["proto"] for line in result.stdout.splitlines()] == [
        "dns",
        "dns",
        "tls",
    ]
    assert "3 observations" in result.stderr


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_scan_shared_among_processes_prints_what_one_process_prints(
    suffix: str, tmp_path: Path
) -> None:
    pcap = tmp_path / "mix.pcap"
    write_mix(pcap, "dense", 3000, seed=8)
    path = pcap if suffix == ".pcap" else as_pcapng(pcap, tmp_path / "mix.pcapng")
    script = Path(sys.executable).with_name("hallmonitor")

    def scan(jobs: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "scan", "--format", "jsonl", "--jobs", str(jobs), str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    one, shared = scan(1), scan(2)
    assert shared.stdout == one.stdout
    assert shared.stderr == one.stderr
    assert len(one.stdout.splitlines()) > 1000


def test_scan_without_the_compiled_loop_says_jobs_needs_it(tmp_path: Path) -> None:
    """Run with the compiled module hidden (the import system finds no monitor.compiled.scanloop)."""
    pcap = tmp_path / "mix.pcap"
    write_mix(pcap, "dense", 300, seed=8)
    hide = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'monitor.compiled.scanloop': raise ImportError('hidden')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from hallmonitor.cli.root import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide, "scan", "--format", "jsonl", "--jobs", "2", str(pcap)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--jobs needs the compiled loop" in result.stderr
    assert result.stdout.count("\n") > 100


def test_help_describes_scan() -> None:
    result = CliRunner().invoke(main, ["scan", "--help"])
    assert result.exit_code == 0
    assert "pcap or pcapng" in result.stdout
    assert "--dns-port" in result.stdout


def test_scan_record_reads_the_configuration_named_by_the_environment(tmp_path: Path) -> None:
    """`scan` alone never loads settings (it starts without pydantic); `scan --record` does."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[web]\nport = "eighty"\n')
    capture = sample_capture(tmp_path)
    env = {"HALLMONITOR_CONFIG": str(bad)}
    plain = CliRunner().invoke(main, ["scan", "--format", "jsonl", str(capture)], env=env)
    assert plain.exit_code == 0, plain.stderr
    recorded = CliRunner().invoke(main, ["scan", "--record", str(capture)], env=env)
    assert recorded.exit_code == 1
    assert "web.port" in recorded.stderr and "Traceback" not in recorded.stderr
