"""Recording a capture again changes nothing: the import ledger of ``scan --record``."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from sqlalchemy import select

from hallmonitor.cli.root import main
from monitor.errors import CaptureFileError
from monitor.records import CaptureRecorded, CounterIncrement
from monitor.runner import record_captures
from monitor.store.db import make_engine
from monitor.store.items import (
    Positioned,
    WriterItem,
    apply_records,
    decode_item,
    encode_item,
)
from monitor.store.ledger import NumberedSink, file_sha256, files_digest
from monitor.store.models import (
    Base,
    DailyCounterRecord,
    RecordedCaptureRecord,
    ReplayPositionRecord,
)
from monitor.store.spool import SpoolRecord
from tests.data.traffic import client_hello_bytes
from tests.monitor.store.factories import SITE, T0, make_incident, make_observation
from tests.monitor.test_runner import PCAPS, hallmonitor, settings_for, write_config

CAPTURE = PCAPS / "ndpi-instagram.pcap"
OTHER = PCAPS / "ndpi-facebook.pcap"


def every_table(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: the whole database as a value."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: sorted(
                    (tuple(row) for row in connection.execute(select(table))), key=repr
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_recording_a_capture_again_leaves_every_table_as_it_was(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    record_captures(settings, [str(CAPTURE)])
    once = every_table(engine_url)
    assert once["observations"] and once["daily_counters"] and once["incidents"]

    summary = record_captures(settings, [str(CAPTURE)])

    assert every_table(engine_url) == once
    assert summary.frames == summary.writer.written == 0
    assert len(summary.skipped) == 1 and "already recorded on" in summary.skipped[0]


def test_the_same_bytes_under_another_name_are_the_same_capture(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    copy = tmp_path / "renamed.pcap"
    shutil.copyfile(CAPTURE, copy)
    record_captures(settings, [str(CAPTURE)])
    once = every_table(engine_url)

    summary = record_captures(settings, [str(copy), str(copy)])

    assert every_table(engine_url) == once
    assert len(summary.skipped) == 2


def test_a_file_named_twice_in_one_run_is_recorded_once(engine_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, engine_url)
    summary = record_captures(settings, [str(CAPTURE), str(CAPTURE)])

    assert "same capture as a file before it" in summary.skipped[0]
    ledger = every_table(engine_url)["recorded_captures"]
    assert [(row[0], row[2], row[4]) for row in ledger] == [
        ("st-marys", CAPTURE.name, summary.frames)
    ]


def test_a_new_file_after_a_recorded_one_is_recorded_and_entered_in_the_ledger(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    record_captures(settings, [str(CAPTURE)])
    summary = record_captures(settings, [str(CAPTURE), str(OTHER)])

    assert summary.frames > 0 and not summary.skipped
    assert "read again without storing anything" in summary.carried_on[0]
    engine = make_engine(engine_url)
    try:
        with engine.connect() as connection:
            names = set(connection.scalars(select(RecordedCaptureRecord.file_name)))
    finally:
        engine.dispose()
    assert names == {CAPTURE.name, OTHER.name}


def test_scan_record_of_a_recorded_file_says_it_skipped_it(engine_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, engine_url)
    args = ["--config", str(config), "scan", "--record", str(CAPTURE)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    once = every_table(engine_url)

    again = CliRunner().invoke(main, args)

    assert again.exit_code == 0, again.output
    assert f"{CAPTURE}: already recorded on " in again.stderr
    assert "1 files skipped as already recorded" in again.stderr
    assert every_table(engine_url) == once


def test_a_run_that_stops_at_an_unreadable_file_keeps_the_ledger_of_the_files_before_it(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    garbage = tmp_path / "not-a-capture.pcap"
    garbage.write_bytes(b"this is not a capture file at all" * 4)
    with pytest.raises(CaptureFileError):
        record_captures(settings, [str(CAPTURE), str(garbage)])
    once = every_table(engine_url)
    assert once["observations"]

    summary = record_captures(settings, [str(CAPTURE)])

    assert len(summary.skipped) == 1
    assert every_table(engine_url) == once


def test_a_ledger_entry_survives_the_spool_encoding() -> None:
    entry = CaptureRecorded("st-marys", "ab" * 32, "x.pcap", 1234, 56)
    assert decode_item(encode_item(entry)) == (
        "capture",
        {"site": "st-marys", "sha256": "ab" * 32, "file_name": "x.pcap", "size_bytes": 1234,
         "frames": 56},
    )  # fmt: skip


# -- carrying on an interrupted replay --------------------------------------------------------


def test_records_are_numbered_per_file_and_only_those_past_the_stored_position_handed_on() -> None:
    handed: list[WriterItem] = []
    sink = NumberedSink(handed.append)
    observations = [make_observation(T0 + n) for n in range(5)]
    sink.start_file("a" * 64, "", None)  # recorded before: read for its state only
    for observation in observations:
        sink(observation)
    sink.start_file("b" * 64, "after-a", 3)
    for observation in observations:
        sink(observation)

    assert handed == [
        Positioned(observations[3], "b" * 64, "after-a", 4),
        Positioned(observations[4], "b" * 64, "after-a", 5),
    ]


def test_a_run_stopped_part_way_stores_its_closed_incidents_unnumbered_and_no_counters() -> None:
    handed: list[WriterItem] = []
    sink = NumberedSink(handed.append)
    sink.start_file("a" * 64, "", 0)
    sink.stop_numbering()
    incident = make_incident("k1")
    sink(incident)
    sink(CounterIncrement(SITE, T0_DAY, "observations.dns", 3))

    assert handed == [incident]


T0_DAY = datetime.fromtimestamp(T0, UTC).date()


def apply_once(url: str, items: list[WriterItem]) -> int:
    """Apply ``items`` as one writer batch (its own transaction)."""
    engine = make_engine(url)
    try:
        record = SpoolRecord(uuid.uuid4().hex, [encode_item(item) for item in items])
        with engine.begin() as connection:
            applied, bad = apply_records(connection, [record], now=datetime.now(UTC),
                                         skip_applied=True)  # fmt: skip
        assert bad == []
        return applied
    finally:
        engine.dispose()


def test_a_numbered_record_at_or_below_the_stored_position_is_not_stored_again(
    engine_url: str,
) -> None:
    def numbered(first: int, last: int) -> list[WriterItem]:
        return [
            Positioned(CounterIncrement(SITE, T0_DAY, "observations.dns", n), "c" * 64, "", n)
            for n in range(first, last + 1)
        ]

    assert apply_once(engine_url, numbered(1, 3)) == 3
    # What a killed run left in the spool, then the run carried on: 2 and 3 are stored already.
    assert apply_once(engine_url, numbered(2, 4)) == 1
    assert apply_once(engine_url, numbered(4, 5)) == 1

    engine = make_engine(engine_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(DailyCounterRecord.count)) == 1 + 2 + 3 + 4 + 5
    finally:
        engine.dispose()
    assert stored_position(engine_url) == 5


def test_a_file_begun_after_other_files_is_carried_on_only_after_the_same_files(
    engine_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, engine_url)
    begun = Positioned(
        CounterIncrement(settings.site.name, T0_DAY, "observations.dns", 1),
        file_sha256(OTHER),
        files_digest([file_sha256(CAPTURE)]),
        1,
    )
    apply_once(engine_url, [begun])

    with pytest.raises(CaptureFileError, match="after the same files, in the same order"):
        record_captures(settings, [str(OTHER)])
    summary = record_captures(settings, [str(CAPTURE), str(OTHER)])

    assert "carrying on after the 1 records" in summary.carried_on[0]


# -- a replay killed part way (kill -9) and run again ----------------------------------------

WRITING_TIME = {"id", "continues_id", "created_at", "updated_at", "recorded_at"}
"""Columns that say when or in which order rows were written, not what was recorded."""
GATEWAY = "02:00:00:00:00:fe"


def what_was_recorded(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows without ids and times of writing (the writer's batch ids neither)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = {}
            for table in Base.metadata.sorted_tables:
                if table.name == "applied_batches":
                    continue
                columns = [column for column in table.columns if column.name not in WRITING_TIME]
                rows = connection.execute(select(*columns))
                tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
            return tables
    finally:
        engine.dispose()


def stored_position(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(ReplayPositionRecord.position)) or 0
    finally:
        engine.dispose()


def a_school_evening(path: Path) -> Path:
    """Three hours over midnight (UTC) of 12 devices: Instagram every 40 seconds, with breaks
    longer than the idle gap, lookups, and the Facebook SDK embedded in other pages.

    Each kind of packet is built once by scapy and written with its own source port and time
    (scapy would take a minute for the 25,000 packets; checksums are not checked).
    """
    start = datetime(2026, 11, 24, 22, 30, tzinfo=UTC).timestamp()
    records: list[tuple[float, bytes]] = []
    for device in range(12):
        link = Ether(src=f"02:00:00:00:01:{device:02x}", dst=GATEWAY)
        ip = f"10.20.1.{device + 10}"
        templates = {
            name: [
                bytes(link / IP(src=ip, dst="157.240.221.174") / TCP(dport=443, flags="S")),
                bytes(link / IP(src=ip, dst="157.240.221.174")
                      / TCP(dport=443, flags="PA", seq=1) / client_hello_bytes(name)),
                bytes(link / IP(src=ip, dst="10.20.0.1") / UDP(dport=53)
                      / DNS(id=7, rd=1, qd=DNSQR(qname=name))),
            ]
            for name in ("i.instagram.com", "connect.facebook.net")
        }  # fmt: skip
        for step in range(270):
            if (step // 45) % 3 == 2:  # 30 minutes off every 90
                continue
            name = "i.instagram.com" if step % 5 else "connect.facebook.net"
            port = struct.pack("!H", 20000 + step)
            for frame in templates[name]:
                records.append((start + device * 7 + step * 40, frame[:34] + port + frame[36:]))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in sorted(records, key=lambda record: record[0]):
            seconds, micros = divmod(round(ts * 1_000_000), 1_000_000)
            out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    return path


@pytest.fixture(scope="module")
def school_evening(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return a_school_evening(tmp_path_factory.mktemp("capture") / "evening.pcap")


def scan_record(config: Path, capture: Path) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    return subprocess.Popen(
        hallmonitor("--config", str(config), "scan", "--record", str(capture)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def finished(process: subprocess.Popen[str]) -> str:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return stderr


@pytest.mark.slow
def test_a_replay_killed_part_way_and_run_again_stores_exactly_one_clean_run(
    engine_url: str, second_engine_url: str, tmp_path: Path, school_evening: Path
) -> None:
    clean_dir, resumed_dir = tmp_path / "clean", tmp_path / "resumed"
    clean_dir.mkdir()
    resumed_dir.mkdir()
    finished(scan_record(write_config(clean_dir, second_engine_url), school_evening))
    clean = what_was_recorded(second_engine_url)
    assert all(clean[name] for name in ("observations", "daily_counters", "embedded_counts"))
    assert len(clean["incidents"]) >= 24
    total = stored_position(second_engine_url)

    # Small transactions, so that the kill lands between two commits of many.
    config = write_config(resumed_dir, engine_url, extra="batch_size = 20")
    killed = scan_record(config, school_evening)
    deadline = time.monotonic() + 120
    while stored_position(engine_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    part = what_was_recorded(engine_url)
    assert 0 < stored_position(engine_url) < total, "the kill came after the end"
    assert not part["recorded_captures"] and part != clean

    stderr = finished(scan_record(config, school_evening))

    assert "carrying on after the" in stderr
    assert what_was_recorded(engine_url) == clean
    again = scan_record(config, school_evening)
    assert "already recorded on" in finished(again)
    assert what_was_recorded(engine_url) == clean
