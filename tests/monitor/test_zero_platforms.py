"""No platform list at all is an error, never "no problems": a package installed without its
list files passed ``lists check`` and ``doctor`` with 0 platforms, and nothing was ever
flagged. ``lists check``, ``doctor``, ``capture`` and ``up`` refuse it, naming where the lists
were looked for.

The shipped lists are switched off here with ``lists.shipped = false`` (the setting a trust
with its own whole set uses), and ``lists.directories`` names an empty directory: what the
commands see is then what a package without its list files gave them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings
from monitor.errors import BlocklistError
from monitor.lists import check_lists, default_directory, list_directories, load_lists

NO_PLATFORM = "no platform list (a *.txt file with a '# platform:' header) loaded from here"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """An empty list directory but for an allowlist (which is not a platform list)."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "allowlist.txt").write_text("school.example  # the school's own site\n")
    return lists


@pytest.fixture
def config(tmp_path: Path, empty: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[lists]\nshipped = false\ndirectories = ["{empty}"]\n'
        f'[capture]\ninterfaces = ["lo"]\n'
        f'[database]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    return path


def test_an_empty_list_directory_is_an_error_naming_it(empty: Path) -> None:
    [problem] = check_lists([empty])
    assert str(problem) == f"{empty}: {NO_PLATFORM}, so nothing would ever be flagged: " + (
        "reinstall Hall Monitor if its shipped lists are missing, or check lists.directories "
        "and lists.shipped in the configuration"
    )
    with pytest.raises(BlocklistError, match="no platform list"):
        load_lists([empty])


def test_no_directory_at_all_is_an_error_too() -> None:
    with pytest.raises(BlocklistError, match=r"^no directory: no platform list"):
        load_lists([])


def test_the_shipped_lists_come_first_unless_switched_off(config: Path, empty: Path) -> None:
    settings = load_settings(config)
    assert list_directories(settings) == [empty]
    settings.lists.shipped = True
    assert list_directories(settings) == [default_directory(), empty]


def test_lists_check_fails(config: Path, empty: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "lists", "check"])
    assert result.exit_code == 1
    [problem, summary] = result.stderr.splitlines()
    assert problem.startswith(f"{empty}: {NO_PLATFORM}")
    assert summary == "1 problem(s) found"


def test_doctor_fails_the_lists_check(config: Path, empty: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "doctor", "--check", "lists"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"FAIL lists        {empty}: {NO_PLATFORM}")
    assert lines[2] == "1 of 1 checks failed"


@pytest.mark.parametrize("command", [["capture"], ["up", "--port", "0"]], ids=lambda c: c[0])
def test_capture_and_up_refuse_to_start(command: list[str], config: Path, empty: Path) -> None:
    """Before anything else: no capture, no database, no first administrator."""
    result = CliRunner().invoke(main, ["--config", str(config), *command])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(f"Error: {empty}: {NO_PLATFORM}")
    assert not (config.parent / "data").exists()
