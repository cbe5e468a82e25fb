"""How scan results are rendered for machines (JSON lines) and people (table, summary)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from monitor.pipeline import Pipeline
from monitor.scan import (
    WRITE_BATCH_LINES,
    FileSummary,
    default_format,
    render_jsonl,
    render_summary,
    render_table_row,
    write_observations,
)
from monitor.sources.pcap import read_capture
from monitor.values import Flag, Observation, Proto, StageCounters
from tests.data.traffic import dns_query, tls_flow, write_pcap

OBSERVATION = Observation(
    ts=1_700_000_000.25,
    proto=Proto.QUIC,
    name="i.instagram.com",
    client_ip="2001:db8::15",
    client_mac=None,
    server_ip="2a03:2880:f003:c07:face:b00c:0:2",
    server_port=443,
    flags=frozenset({Flag.ECH, Flag.ENCRYPTED_DNS}),
)


def test_render_jsonl_has_the_documented_keys() -> None:
    assert json.loads(render_jsonl(OBSERVATION)) == {
        "ts": 1_700_000_000.25,
        "proto": "quic",
        "name": "i.instagram.com",
        "client_ip": "2001:db8::15",
        "client_mac": None,
        "server_ip": "2a03:2880:f003:c07:face:b00c:0:2",
        "server_port": 443,
        "flags": ["ech", "encrypted-dns"],
        "cnames": [],
        "addresses": [],
        "vlan": None,
    }


def test_render_table_row_shows_utc_time_and_bracketed_ipv6_server() -> None:
    row = render_table_row(OBSERVATION)
    assert row.startswith("2023-11-14T22:13:20.250000 quic  i.instagram.com ")
    assert "[2a03:2880:f003:c07:face:b00c:0:2]:443" in row
    assert row.endswith("ech,encrypted-dns")


def test_render_summary_names_unsupported_link_types_and_truncation() -> None:
    counters = StageCounters(
        frames=10,
        packets=7,
        observations=2,
        malformed={"dns": 1},
        unsupported_linktypes={127: 3},
    )
    summary = FileSummary("a.pcap", counters, Counter({"dns": 2}), truncated=True)
    assert render_summary(summary) == (
        "a.pcap: 10 frames, 7 packets, 2 observations (dns 2), 1 malformed (dns 1); "
        "unsupported link types: IEEE802_11_RADIOTAP (127): 3 frames; "
        "the file ends in the middle of a packet"
    )


def test_default_format_is_json_lines_when_not_a_terminal() -> None:
    assert default_format(io.StringIO()) == "jsonl"


@pytest.mark.parametrize(
    "observation",
    [
        OBSERVATION,
        Observation(
            ts=1_763_978_400.000001,
            proto=Proto.DNS,
            name='caf\u00e9.ex"ample\\032.com',
            client_ip="10.0.0.2",
            client_mac="02:00:00:00:00:01",
            server_ip="10.0.0.1",
            server_port=53,
            flags=frozenset({Flag.RESPONSE, Flag.TCP, Flag.LOCAL}),
            cnames=("a.example.net", "b\u00fc.akamai.net"),
            addresses=("192.0.2.1", "2001:db8::1"),
            vlan=42,
        ),
        Observation(0.0, Proto.DHCP, "printer\n", "0.0.0.0", None, "255.255.255.255", 67),
    ],
)
def test_render_jsonl_writes_exactly_what_json_dumps_writes(observation: Observation) -> None:
    expected = json.dumps(observation.as_json_dict(), separators=(",", ":"))
    assert render_jsonl(observation) == expected


def test_write_observations_writes_every_line_and_counts_by_proto(tmp_path: Path) -> None:
    capture = write_pcap(
        tmp_path / "names.pcap",
        [dns_query(f"host{index}.example.com") for index in range(WRITE_BATCH_LINES + 3)]
        + tls_flow("www.tiktok.com"),
    )
    written: list[str] = []
    by_proto: Counter[str] = Counter()
    pipeline = Pipeline(strict=True)
    write_observations(read_capture(capture), pipeline, written.append, render_jsonl, by_proto)
    lines = "".join(written).splitlines()
    assert len(written) == 2  # one full batch, then the rest
    assert [json.loads(line)["name"] for line in lines] == [
        *(f"host{index}.example.com" for index in range(WRITE_BATCH_LINES + 3)),
        "www.tiktok.com",
    ]
    assert by_proto == {"dns": WRITE_BATCH_LINES + 3, "tls": 1}
    assert pipeline.counters.observations == WRITE_BATCH_LINES + 4
