"""Specification of the pure helpers of the Engine II benchmark (``tests.bench.bench_record``).

The latency figure is only as good as its traffic: every query frame must decode in Hall
Monitor's own pipeline as a DNS query from its own device, and the generated configuration must
load. These fast tests check that, plus the percentile and the summary-line parsing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import checksum

from monitor.config.loading import load_settings
from monitor.pipeline import Pipeline
from monitor.values import Frame, Proto
from tests.bench.bench_record import (
    SOCIAL_NAMES,
    dns_query_frame,
    latency_source,
    parse_recorded_incidents,
    percentile,
    toml_config,
)

LINKTYPE_ETHERNET = 1


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 99, 4.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([5.0, 1.0, 3.0], 1, 1.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 0), ([1.0], 101)])
def test_percentile_refuses_no_values_and_bad_ranks(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


def test_latency_source_gives_every_query_its_own_address_and_mac() -> None:
    sources = [latency_source(i) for i in range(2000)]
    assert len({ip for ip, _ in sources}) == len({mac for _, mac in sources}) == 2000
    assert sources[0] == ("198.19.0.1", bytes.fromhex("0200c6130000"))
    assert sources[250][0] == "198.19.1.1"
    assert all(mac[0] & 0x02 and not mac[0] & 0x01 for _, mac in sources)  # local unicast


def test_latency_source_refuses_indexes_outside_its_network() -> None:
    with pytest.raises(ValueError, match="outside"):
        latency_source(64000)


@pytest.mark.parametrize("name", SOCIAL_NAMES)
def test_dns_query_frame_decodes_as_a_query_from_its_device(name: str) -> None:
    ip, mac = latency_source(300)
    frame = dns_query_frame(name, mac, ip, 301)
    observations = Pipeline().process(Frame(1.0, LINKTYPE_ETHERNET, frame))
    assert [(o.proto, o.name, o.client_ip, o.client_mac) for o in observations] == [
        (Proto.DNS, name, ip, "02:00:c6:13:01:2c")
    ]


def test_dns_query_frame_headers_are_valid() -> None:
    ip, mac = latency_source(7)
    frame = dns_query_frame("www.instagram.com", mac, ip, 8)
    packet = Ether(frame)
    assert packet[Ether].dst == "02:00:00:bb:bb:01"  # not the capturing host: a mirror port
    assert (packet[IP].src, packet[IP].dst, packet[IP].len) == (
        ip,
        "198.18.255.254",
        len(frame) - 14,
    )
    assert checksum(frame[14:34]) == 0
    assert (packet[UDP].dport, packet[UDP].len) == (53, len(frame) - 34)
    assert packet[DNS].qr == 0 and packet[DNS].qd[0].qname == b"www.instagram.com."


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "recorded into sqlite:///x.db: 200,000 frames, 9 observations, 5 platform matches, "
            "1,344 incidents; 3,000 records written\n",
            1344,
        ),
        ("recorded into x: 1 frames, 0 observations, 0 platform matches, 0 incidents; 0", 0),
        ("Error: the database cannot be reached\n", None),
    ],
)
def test_parse_recorded_incidents_reads_the_summary_line(stderr: str, expected: int | None) -> None:
    assert parse_recorded_incidents(stderr) == expected


def test_toml_config_loads_with_the_options_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        toml_config(
            tmp_path / "data",
            segments=["198.19.0.0/16"],
            interfaces=["hm0h"],
            all_week=True,
            flush_interval_s=0.2,
        )
    )
    settings = load_settings(path, environ={})
    assert settings.capture.interfaces == ["hm0h"]
    assert [str(c) for c in settings.segments[0].cidrs] == ["198.19.0.0/16"]
    assert [(start.isoformat(), end.hour) for start, end in settings.calendar.hours.sunday] == [
        ("00:00:00", 23)  # "24:00" is kept as the day's last instant
    ]
    assert settings.database.flush_interval_s == 0.2
    assert settings.database.url.get_secret_value() == f"sqlite:///{tmp_path}/data/hallmonitor.db"


def test_toml_config_defaults_to_the_demo_school(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml_config(tmp_path / "data", url="postgresql://u@h/db"))
    settings = load_settings(path, environ={})
    assert [str(c) for c in settings.segments[0].cidrs] == ["10.20.0.0/16", "2001:db8:20::/48"]
    assert settings.database.url.get_secret_value() == "postgresql+psycopg://u@h/db"
    assert settings.database.flush_interval_s == 1.0
