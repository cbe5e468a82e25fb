"""How scan results are rendered for machines (JSON lines) and people (table, summary)."""

from __future__ import annotations

import io
import json
from collections import Counter

from monitor.scan import FileSummary, default_format, render_jsonl, render_summary, render_table_row
from monitor.values import Flag, Observation, Proto, StageCounters

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
