"""`hallmonitor up` as a command: its options and the one-line refusals (the parts and their order:
tests/hallmonitor/test_up.py)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hallmonitor.cli.root import main
from tests.hallmonitor.test_up import DAYS


def test_the_command_says_it_migrates_and_refuses_data_dir_without_demo() -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["up", "--help"])
    assert shown.exit_code == 0
    assert "Migrates the database first" in shown.output
    refused = runner.invoke(main, ["up", "--data-dir", "somewhere"])
    assert refused.exit_code == 2
    assert "--data-dir applies only with --demo" in refused.output


def test_a_demo_calendar_without_school_is_refused_with_what_to_check(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[calendar.hours]\n" + "".join(f"{day} = []\n" for day in DAYS))
    result = CliRunner().invoke(
        main, ["--config", str(config), "up", "--demo", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "demo: the calendar has no school day" in result.output
