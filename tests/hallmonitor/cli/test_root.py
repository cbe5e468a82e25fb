"""The `hallmonitor` group: every command is there, under the console script and `python -m`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from hallmonitor.cli.root import main

COMMANDS = {
    "capture": "Capture live on the configured interfaces",
    "config": "The configuration file.",
    "db": "The incident database.",
    "devices": "Devices the monitor has records of",
    "doctor": "Check that this sensor can work",
    "lists": "The platform lists",
    "purge": "Delete this school's records older than the retention",
    "report": "Reports for the headteacher and the governors.",
    "scan": "Read pcap or pcapng FILES",
    "selftest": "Look up selftest.name",
    "serve": "Serve the review app",
    "up": "Run capture, the review app and the report scheduler together",
    "users": "People who sign in to the review app",
}


def test_the_group_has_every_command_with_its_help() -> None:
    assert sorted(main.commands) == sorted(COMMANDS)
    for name, help_text in COMMANDS.items():
        assert (main.commands[name].help or "").startswith(help_text), name


def test_help_names_the_global_options() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "--log-level" in result.stdout and "--config" in result.stdout


def test_the_console_script_and_python_m_are_the_same_command() -> None:
    script = Path(sys.executable).with_name("hallmonitor")
    outputs = [
        subprocess.run(
            [*command, "--help"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        for command in ([str(script)], [sys.executable, "-m", "hallmonitor"])
    ]
    assert outputs[0].splitlines()[1:] == outputs[1].splitlines()[1:]  # after "Usage: <name>"
    assert "Hall Monitor: see social-networking use" in outputs[0]
