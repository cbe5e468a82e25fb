"""Check results as printed, who ran them, and the row each run leaves for the governors."""

from __future__ import annotations

import os
import pwd
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from monitor.checks import (
    CheckResult,
    current_user,
    failed,
    passed,
    record_run,
    render,
    summary,
)
from monitor.store.models import CheckRecord


def test_a_passed_check_is_one_ok_line() -> None:
    assert render(passed("lists", "20 platforms")) == ["OK   lists        20 platforms"]


def test_a_failed_check_prints_its_fix_under_it() -> None:
    assert render(failed("database", "cannot be reached", "check database.url")) == [
        "FAIL database     cannot be reached",
        "                  fix: check database.url",
    ]


def test_summary_gives_each_failure_with_its_detail_and_the_passes_by_name() -> None:
    results = [
        passed("lists", "20 platforms"),
        failed("time", "clock not synchronised", "enable NTP"),
        passed("smtp", "mail disabled"),
    ]
    assert summary(results) == "time FAILED: clock not synchronised; passed: lists, smtp"


def test_current_user_is_the_name_given_with_by() -> None:
    assert current_user("ms.okafor") == "ms.okafor"


def test_current_user_is_the_sudo_user_behind_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "it-tech")
    expected = "it-tech" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert current_user() == expected


def test_current_user_is_the_os_user_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)
    assert current_user() == pwd.getpwuid(os.geteuid()).pw_name


def test_record_run_writes_a_check_record(engine_url: str, engine: Engine) -> None:
    at = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)

    line = record_run(
        engine_url,
        kind="doctor",
        ok=False,
        detail="time FAILED: clock not synchronised",
        username="it-tech",
        site="Hill School",
        at=at,
    )

    assert line.startswith("recorded as a doctor check by it-tech in ")
    with Session(engine) as db:
        rows = db.scalars(select(CheckRecord)).all()
    assert [(r.kind, r.ok, r.detail, r.username, r.site) for r in rows] == [
        ("doctor", False, "time FAILED: clock not synchronised", "it-tech", "Hill School")
    ]
    assert rows[0].at.replace(tzinfo=UTC) == at


def test_record_run_says_so_when_the_database_file_does_not_exist(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"

    line = record_run(url, kind="doctor", ok=True, detail="", username="it", site="s")

    assert line == f"not recorded: the database {url} does not exist yet"
    assert not (tmp_path / "missing.db").exists()


def test_record_run_says_so_when_the_database_has_no_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()

    line = record_run(
        f"sqlite:///{path}", kind="selftest", ok=True, detail="", username="it", site="s"
    )

    assert line.startswith(f"not recorded: the database sqlite:///{path} cannot take it (")
    assert "no such table: checks" in line


def test_check_result_has_no_fix_when_it_passed() -> None:
    assert passed("smtp", "mail disabled") == CheckResult("smtp", True, "mail disabled", "")
