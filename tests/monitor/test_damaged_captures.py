"""A damaged capture says so: `hallmonitor scan` and `scan --record` on real captures with one
damaged place name the file, the byte offset and the damage on stderr, exit with status 2 (as
tshark does), keep everything read before the damage, and read on from the next plausible
record, as the same file without the damaged record reads."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from hallmonitor.cli.root import main
from monitor.scan import DAMAGED_EXIT_STATUS
from monitor.store.db import make_engine
from monitor.store.models import IncidentRecord, ObservationRecord
from tests.data.damaged import (
    PCAPS,
    packet_block_indexes,
    pcap_records,
    pcapng_blocks,
    with_block_length,
    with_pcap_length,
    without_block,
    without_pcap_record,
)
from tests.monitor.test_runner import daily_counter, write_config

INSTAGRAM = PCAPS / "ndpi-instagram.pcap"
VIBER = PCAPS / "ndpi-viber.pcapng"
DAMAGED_INDEX = 400
"""The record damaged in the middle of the 847 of ndpi-instagram.pcap."""


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def scan(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["scan", *map(str, args)])


# -- scan ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_scan_names_an_impossible_length_and_prints_every_name_around_it(
    tmp_path: Path, fmt: str
) -> None:
    data = INSTAGRAM.read_bytes()
    offset, caplen = pcap_records(data)[DAMAGED_INDEX]
    damaged = write(tmp_path / "damaged.pcap", with_pcap_length(data, DAMAGED_INDEX))
    without = write(tmp_path / "without.pcap", without_pcap_record(data, DAMAGED_INDEX))
    result = scan("--format", fmt, damaged)
    assert result.exit_code == DAMAGED_EXIT_STATUS == 2
    assert result.stdout == scan("--format", fmt, without).stdout
    if fmt == "jsonl":  # names from before the damaged record and from after it
        times = [json.loads(line)["ts"] for line in result.stdout.splitlines()]
        seconds, micros = struct.unpack_from("<II", data, offset)
        assert min(times) < seconds + micros / 1e6 < max(times)
    assert (
        f"hallmonitor scan: {damaged}: damaged at byte {offset}: the record header claims "
        f"2147483647 captured bytes (at most 262144); skipped {16 + caplen} bytes to the next "
        f"plausible record at byte {offset + 16 + caplen}\n"
    ) in result.stderr
    assert f"{damaged}: 846 frames read, up to byte {len(data)} of {len(data)}" in result.stderr


def test_scan_prints_every_name_before_damage_that_nothing_plausible_follows(
    tmp_path: Path,
) -> None:
    data = INSTAGRAM.read_bytes()
    offset, _ = pcap_records(data)[DAMAGED_INDEX]
    damaged = write(tmp_path / "damaged.pcap", data[:offset] + b"\xff" * 20_000)
    before = write(tmp_path / "before.pcap", data[:offset])
    result = scan("--format", "jsonl", damaged)
    assert result.exit_code == 2
    assert result.stdout == scan("--format", "jsonl", before).stdout != ""
    assert (
        f"{damaged}: damaged at byte {offset}: the record header claims 4294967295 captured "
        "bytes (at most 262144); nothing plausible follows: reading stopped there, "
        "20000 bytes unread"
    ) in result.stderr
    assert f"400 frames read, up to byte {offset} of {offset + 20_000}" in result.stderr


def test_scan_names_a_capture_cut_in_its_last_record(tmp_path: Path) -> None:
    data = INSTAGRAM.read_bytes()
    offset, caplen = pcap_records(data)[-1]
    cut = write(tmp_path / "cut.pcap", data[: offset + 16 + 10])
    result = scan("--format", "jsonl", cut)
    assert result.exit_code == 2
    assert result.stdout == scan("--format", "jsonl", INSTAGRAM).stdout  # the last one is bulk
    assert (
        f"{cut}: cut short at byte {offset}: the file ends 10 bytes into a record of {caplen}"
    ) in result.stderr


def test_scan_names_a_damaged_pcapng_block_length_and_reads_on(tmp_path: Path) -> None:
    data = VIBER.read_bytes()
    index = packet_block_indexes(data)[50]
    offset, _, length = pcapng_blocks(data)[index]
    damaged = write(tmp_path / "damaged.pcapng", with_block_length(data, index, 0x7FFF0001))
    without = write(tmp_path / "without.pcapng", without_block(data, index))
    result = scan("--format", "jsonl", damaged)
    assert result.exit_code == 2
    assert result.stdout == scan("--format", "jsonl", without).stdout != ""
    assert (
        f"{damaged}: damaged at byte {offset}: impossible block length 2147418113; skipped "
        f"{length} bytes to the next plausible block at byte {offset + length}"
    ) in result.stderr


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_hallmonitor_scan_shared_among_processes_names_the_damage_once_and_exits_2(
    tmp_path: Path, suffix: str
) -> None:
    """The installed command, three processes sharing the scan: all read on from the same
    record; the first names the damage."""
    if suffix == ".pcap":
        data = INSTAGRAM.read_bytes()
        damaged = write(tmp_path / "d.pcap", with_pcap_length(data, DAMAGED_INDEX))
        offset, _ = pcap_records(data)[DAMAGED_INDEX]
    else:
        data = VIBER.read_bytes()
        index = packet_block_indexes(data)[50]
        damaged = write(tmp_path / "d.pcapng", with_block_length(data, index, 0x7FFF0001))
        offset, _, _ = pcapng_blocks(data)[index]
    script = Path(sys.executable).with_name("hallmonitor")

    def run(jobs: int) -> subprocess.CompletedProcess[str]:
        command = [str(script), "scan", "--format", "jsonl", "--jobs", str(jobs), str(damaged)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    one, shared = run(1), run(3)
    assert one.returncode == shared.returncode == 2
    assert shared.stdout == one.stdout != ""
    assert shared.stderr == one.stderr
    assert shared.stderr.count(f"damaged at byte {offset}: ") == 1


def test_scan_of_sound_captures_exits_0_and_an_unreadable_file_outranks_damage(
    tmp_path: Path,
) -> None:
    assert scan("--format", "jsonl", INSTAGRAM, VIBER).exit_code == 0
    data = INSTAGRAM.read_bytes()
    damaged = write(tmp_path / "damaged.pcap", with_pcap_length(data, DAMAGED_INDEX))
    assert scan("--format", "jsonl", damaged, tmp_path / "absent.pcap").exit_code == 1


def test_scan_help_tells_the_exit_status_of_a_damaged_capture() -> None:
    text = " ".join(CliRunner().invoke(main, ["scan", "--help"]).stdout.split())
    assert "the exit status is 2" in text and "byte offset" in text


# -- scan --record ---------------------------------------------------------------------------------


def config_for(tmp_path: Path, url: str, name: str) -> Path:
    """The replay tests' configuration (every day a school day, every address staff)."""
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, url)


def record(config: Path, capture: Path) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "scan", "--record", str(capture)])


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


Stored = tuple[
    list[tuple[str, str, str, datetime, datetime, int]],
    list[tuple[datetime, str, str, str, str]],
    int,
]


def stored(url: str) -> Stored:
    """The incidents and observations a run stored, without row ids, and the frames counted."""
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            incidents = sorted(
                (row.key, row.platform, row.device_ip, utc(row.start_at), utc(row.end_at))
                + (row.hit_count,)
                for row in db.scalars(select(IncidentRecord))
            )
            observations = sorted(
                (utc(row.ts), row.proto, row.name, row.client_ip, row.server_ip)
                for row in db.scalars(select(ObservationRecord))
            )
        return incidents, observations, daily_counter(url, "capture.frames")
    finally:
        engine.dispose()


@pytest.mark.parametrize("resync", [False, True], ids=["stops", "reads on"])
def test_scan_record_of_a_damaged_capture_commits_what_was_read_and_says_how_far(
    engine_url: str, sqlite_template: Path, tmp_path: Path, resync: bool
) -> None:
    data = INSTAGRAM.read_bytes()
    offset, _ = pcap_records(data)[DAMAGED_INDEX]
    if resync:
        damaged = write(tmp_path / "damaged.pcap", with_pcap_length(data, DAMAGED_INDEX))
        same = write(tmp_path / "same.pcap", without_pcap_record(data, DAMAGED_INDEX))
        frames, reached = 846, len(data)
    else:
        damaged = write(tmp_path / "damaged.pcap", data[:offset] + b"\xff" * 5000)
        same = write(tmp_path / "same.pcap", data[:offset])
        frames, reached = DAMAGED_INDEX, offset
    reference = tmp_path / "reference.sqlite3"
    shutil.copyfile(sqlite_template, reference)
    assert record(config_for(tmp_path, f"sqlite:///{reference}", "reference"), same).exit_code == 0

    result = record(config_for(tmp_path, engine_url, "damaged"), damaged)

    assert result.exit_code == 2, result.output
    assert f"hallmonitor scan: {damaged}: damaged at byte {offset}: " in result.stderr
    assert f"{damaged}: {frames} frames read, up to byte {reached} of " in result.stderr
    assert f"{frames:,} frames" in result.stderr
    assert "the captures are damaged (above): what was read is recorded" in result.stderr
    incidents, observations, counted = stored(engine_url)
    assert (incidents, observations, counted) == stored(f"sqlite:///{reference}")
    assert incidents and observations and counted == frames
