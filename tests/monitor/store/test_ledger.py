"""Recording a capture again changes nothing: the import ledger of ``scan --record``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monitor.cli import main
from monitor.errors import CaptureFileError
from monitor.runner import record_captures
from monitor.store.db import make_engine
from monitor.store.items import CaptureRecorded, decode_item, encode_item
from monitor.store.models import Base, RecordedCaptureRecord
from tests.monitor.test_runner import PCAPS, settings_for, write_config

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
