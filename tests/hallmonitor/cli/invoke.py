"""Run the ``hallmonitor`` command in-process on a configuration file of a test's own."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hallmonitor.cli.root import main


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\ndata_dir = "{tmp_path / "data"}"\n')
    return config


def invoke(config: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr
