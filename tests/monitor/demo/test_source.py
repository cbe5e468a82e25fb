"""The demo source: the bundled sample (regenerable, private addresses), looped, paced, and
stamped into the school day."""

from __future__ import annotations

import ipaddress
import threading
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from monitor.demo.clock import NoSchoolDay
from monitor.demo.settings import DEMO_STAFF_NETWORKS, load_demo_settings
from monitor.demo.source import (
    DemoSource,
    demo_clock,
    open_demo_source,
    read_sample,
    sample_path,
)
from monitor.pipeline import Pipeline
from monitor.policy import SchoolCalendar
from monitor.values import Frame
from tests.bench.make_mix import write_mix

ALWAYS = SchoolCalendar("UTC", {day: [(time(0, 0), time.max)] for day in range(7)})


def test_the_sample_is_what_the_projects_generator_writes(tmp_path: Path) -> None:
    regenerated = tmp_path / "sample.pcap"
    write_mix(regenerated, "dense", 1000, seed=1)
    assert regenerated.read_bytes() == sample_path().read_bytes()


def test_every_client_in_the_sample_is_in_the_demo_staff_segment() -> None:
    networks = [ipaddress.ip_network(cidr) for cidr in DEMO_STAFF_NETWORKS]
    pipeline = Pipeline()
    clients = {
        observation.client_ip for frame in read_sample() for observation in pipeline.process(frame)
    }
    assert len(clients) > 50
    for client in clients:
        address = ipaddress.ip_address(client)
        assert address.is_private and any(address in network for network in networks), client


def take(source: DemoSource, count: int) -> list[Frame]:
    stop = threading.Event()
    frames = []
    for frame in source.frames(stop):
        frames.append(frame)
        if len(frames) == count:
            stop.set()
    return frames


def test_the_source_replays_the_sample_in_order_again_and_again() -> None:
    sample = read_sample()[:20]
    source = DemoSource(sample, ALWAYS, loop_s=0.01)
    frames = take(source, 50)
    assert [frame.data for frame in frames] == [frame.data for frame in (sample * 3)[:50]]
    assert source.loops == 3
    assert source.stats() == {"demo": (50, 0)}


def test_frames_are_stamped_with_the_real_time_they_are_due_in_school_time() -> None:
    before = datetime.now(UTC).timestamp()
    frames = take(DemoSource(read_sample()[:30], ALWAYS, loop_s=0.01), 60)
    stamps = [frame.ts for frame in frames]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= stamps[-1] <= datetime.now(UTC).timestamp()


def test_outside_school_time_frames_are_stamped_into_the_last_school_day() -> None:
    today = datetime.now(UTC).weekday()
    other_day = SchoolCalendar("UTC", {(today + 3) % 7: [(time(9, 0), time(15, 0))]})
    frames = take(DemoSource(read_sample()[:10], other_day, loop_s=0.01), 25)
    assert all(other_day.is_school_time(frame.ts) for frame in frames)


def test_setting_stop_ends_a_wait_at_once() -> None:
    source = DemoSource(read_sample(), ALWAYS, loop_s=3600)
    stop = threading.Event()
    seen: list[Frame] = []
    thread = threading.Thread(target=lambda: seen.extend(source.frames(stop)))
    thread.start()
    while not seen:
        thread.join(0.01)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert len(seen) < 100


def test_the_source_refuses_an_empty_sample_and_a_loop_without_length() -> None:
    with pytest.raises(ValueError, match="no frames"):
        DemoSource([], ALWAYS)
    with pytest.raises(ValueError, match="more than 0"):
        DemoSource(read_sample(), ALWAYS, loop_s=0)


def test_open_demo_source_reads_the_sample_with_the_settings_calendar(tmp_path: Path) -> None:
    source = open_demo_source(load_demo_settings(None, tmp_path, environ={}))
    assert source.interfaces == ["the demo sample (replayed)"]
    assert source.sent == 0


def test_open_demo_source_fails_at_once_on_a_calendar_without_school(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[calendar.hours]\n"
        + "".join(
            f"{day} = []\n" for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
        )
    )
    with pytest.raises(NoSchoolDay, match="no school day"):
        open_demo_source(load_demo_settings(config, tmp_path, environ={}))


def test_the_daemons_clock_in_the_demo_is_in_school_time(tmp_path: Path) -> None:
    settings = load_demo_settings(None, tmp_path, environ={})
    calendar = open_demo_source(settings)._calendar
    assert calendar.is_school_time(demo_clock(settings)())
