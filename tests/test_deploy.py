"""deploy/ stays true: every unit's command exists, and the example configurations load."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def exec_start(unit: Path) -> list[str]:
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise AssertionError(f"{unit.name} has no ExecStart")


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_every_unit_runs_an_existing_hallmonitor_command(unit: Path) -> None:
    command = exec_start(unit)
    assert command[0] == "/opt/hallmonitor/.venv/bin/hallmonitor"
    arguments = [word for word in command[1:] if not word.startswith("/etc/")]
    arguments = [word for word in arguments if word != "--config"]
    result = CliRunner().invoke(
        main, [*[a for a in arguments if not a.startswith("--send")], "--help"]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.*")), ids=lambda u: u.name)
def test_units_pass_systemd_analyze_where_it_is_available(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    for other in (DEPLOY / "systemd").iterdir():
        text = other.read_text().replace("/opt/hallmonitor/.venv/bin/hallmonitor", sys.executable)
        (tmp_path / other.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    problems = [line for line in result.stderr.splitlines() if "hallmonitor" in line.lower()]
    assert problems == [], result.stderr


@pytest.mark.parametrize("name", ["config.example.toml", "demo.toml"])
def test_example_configurations_load(name: str) -> None:
    load_settings(DEPLOY / name, environ={})
