"""`hallmonitor doctor` as a whole run: its exit status, and the run recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from hallmonitor.doctor.command import run_doctor
from tests.hallmonitor.doctor.sensor import (
    settings,
    stored_checks,
)

# --- the whole run --------------------------------------------------------------------------


def test_a_passing_run_exits_0_and_is_recorded(tmp_path: Path, engine_url: str) -> None:
    sound = settings(tmp_path, database={"url": engine_url, "data_dir": str(tmp_path / "d")})

    status, lines = run_doctor(sound, only=("database", "lists", "smtp"), by="it-tech")

    assert status == 0, lines
    assert [line[:4] for line in lines[:3]] == ["OK  ", "OK  ", "OK  "]
    assert lines[3] == "all 3 checks passed"
    assert lines[4].startswith("recorded as a doctor check by it-tech in ")
    [row] = stored_checks(engine_url)
    assert (row.kind, row.ok, row.username, row.site) == ("doctor", True, "it-tech", "Hill School")
    assert row.detail == "passed: database, lists, smtp"


def test_a_failing_run_exits_1_and_records_what_failed(tmp_path: Path, engine_url: str) -> None:
    broken = settings(
        tmp_path,
        database={"url": engine_url, "data_dir": str(tmp_path / "d")},
        lists={"directories": [str(tmp_path / "nope")]},
    )

    status, lines = run_doctor(broken, only=("database", "lists"), by="it-tech")

    assert status == 1
    assert lines[0].startswith("OK   database ")
    assert lines[1].startswith("FAIL lists ")
    assert lines[2].strip().startswith("fix: ")
    assert lines[3] == "1 of 2 checks failed"
    [row] = stored_checks(engine_url)
    assert not row.ok
    assert row.detail.startswith(f"lists FAILED: {tmp_path / 'nope'}: is not a directory")
    assert row.detail.endswith("; passed: database")


def test_a_run_whose_database_check_fails_is_not_recorded(tmp_path: Path) -> None:
    status, lines = run_doctor(settings(tmp_path), only=("database",))
    assert status == 1
    assert lines[-1] == "not recorded: the database check failed"


def test_an_unknown_check_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no check named 'disk'; the checks are capabilities"):
        run_doctor(settings(tmp_path), only=("disk",))
