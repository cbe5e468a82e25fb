"""`hallmonitor doctor` and `selftest` as commands: one line per check, the exit status, the
record for the governors (the checks themselves: tests/hallmonitor/doctor/ and
test_selftest.py)."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from hallmonitor.cli.root import main
from hallmonitor.doctor.command import CHECKS
from tests.hallmonitor.doctor.sensor import stored_checks


def test_the_cli_prints_one_line_per_check_and_exits_with_the_result(
    tmp_path: Path, engine_url: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{engine_url}"\ndata_dir = "{tmp_path / "d"}"\n')
    runner = CliRunner()

    passing = runner.invoke(
        main, ["--config", str(config), "doctor", "--check", "lists", "--check", "database"]
    )
    failing = runner.invoke(
        main,
        ["--config", str(config), "doctor", "--check", "interfaces"],
        env={"HALLMONITOR_CAPTURE__INTERFACES": "hm-no-such0"},
    )

    assert passing.exit_code == 0, passing.output
    assert passing.output.splitlines()[0].startswith("OK   database ")
    assert passing.output.splitlines()[1].startswith("OK   lists ")
    assert failing.exit_code == 1
    assert failing.output.splitlines()[0] == "FAIL interfaces   hm-no-such0 does not exist"
    assert [row.ok for row in stored_checks(engine_url)] == [True, False]


def test_the_cli_offers_every_check_by_name() -> None:
    command = main.commands["doctor"]
    [option] = [p for p in command.params if p.name == "only"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == CHECKS
