"""hallmonitor config check."""

from __future__ import annotations

from pathlib import Path

from monitor.config.check import run_config_check
from tests.monitor.config.conftest import write


def test_database_url_password_is_not_in_check_output(tmp_path: Path) -> None:
    environ = {"HALLMONITOR_DATABASE__URL": "postgresql://hm:s3cret@db/hm"}
    status, lines = run_config_check(write(tmp_path, ""), environ=environ)
    assert status == 0
    assert "database: postgresql+psycopg://hm:***@db/hm" in lines
    assert not any("s3cret" in line for line in lines)
    environ = {"HALLMONITOR_DATABASE__URL": "oracle://hm:s3cret@db/hm"}
    status, lines = run_config_check(write(tmp_path, ""), environ=environ)
    assert status == 1
    assert not any("s3cret" in line for line in lines)


# --- hallmonitor config check --------------------------------------------------------------


def test_config_check_ok_summarises_the_file(school: Path) -> None:
    status, lines = run_config_check(school, environ={})
    assert status == 0
    assert lines == [
        f"ok: {school}: 3 segments, timezone Europe/London, 1 terms, 19 closures",
        f"database: sqlite:///{school.parent}/state/hallmonitor.db",
    ]


def test_config_check_warns_about_what_makes_no_incidents(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    status, lines = run_config_check(path, environ={})
    assert status == 0
    assert lines == [
        f"ok: {path}: 0 segments, timezone Europe/London, 0 terms, 0 closures",
        "database: sqlite:////var/lib/hallmonitor/hallmonitor.db",
        "warning: no segments: every address is unsegmented and nothing is flagged",
        "warning: no terms: every week of the year counts as school time",
    ]


def test_config_check_uses_the_environment_when_no_path_is_given(tmp_path: Path) -> None:
    path = write(tmp_path, "[site]\nname = 'x'\n")
    status, lines = run_config_check(None, environ={"HALLMONITOR_CONFIG": str(path)})
    assert (status, lines[0].split(":")[0:2]) == (0, ["ok", f" {path}"])


def test_config_check_reports_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "[capture]\nsnaplen = 'x'\n[logging]\nlevel = 'LOUD'\n")
    status, lines = run_config_check(path, environ={})
    assert status == 1
    assert lines == [
        f"error: {path}: capture.snaplen: 'x' is not a whole number",
        f"error: {path}: logging.level: 'LOUD' is not allowed; use one of DEBUG, INFO, "
        "WARNING, ERROR, CRITICAL",
    ]


def test_config_check_reports_toml_and_closure_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[site\n")
    assert run_config_check(path, environ={}) == (
        1,
        [
            f"error: config file {path}: line 1: expected ']' at the end of a table declaration (TOML)"
        ],
    )
    path = write(tmp_path, "[calendar]\nical_files = ['absent.ics']\n")
    status, lines = run_config_check(path, environ={})
    assert status == 1
    assert lines == [
        f"error: {path}: calendar.ical_files[0]: {tmp_path / 'absent.ics'}: cannot read: "
        "No such file or directory"
    ]
