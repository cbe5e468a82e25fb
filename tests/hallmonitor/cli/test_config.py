"""`hallmonitor config check`: the defaults pass; a bad value is named with its key."""

from __future__ import annotations

from pathlib import Path

from tests.hallmonitor.cli.invoke import invoke, write_config


def test_config_check_passes_on_the_defaults(tmp_path: Path) -> None:
    assert invoke(write_config(tmp_path), "config", "check")[0] == 0


def test_config_check_names_the_key_of_a_bad_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[web]\nport = "eighty"\n')
    status, _, err = invoke(config, "config", "check")
    assert status == 1
    assert "web.port" in err and "Traceback" not in err
