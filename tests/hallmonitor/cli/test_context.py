"""What every command shares: the settings, the log level, the errors a user can fix as one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hallmonitor.cli.context import log_at_configured_level
from hallmonitor.cli.root import main
from monitor.config.settings import Settings
from monitor.logconfig import configure_logging
from tests.hallmonitor.cli.invoke import invoke, write_config


def test_commands_on_a_database_without_schema_name_the_fix(tmp_path: Path) -> None:
    status, _, err = invoke(write_config(tmp_path), "users", "list")
    assert status == 1
    assert "hallmonitor db upgrade" in err


def test_bad_configuration_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[web]\nport = "eighty"\n')
    status, _, err = invoke(config, "db", "upgrade")
    assert status == 1
    assert "web.port" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [(["serve"], logging.DEBUG), (["--log-level", "error", "serve"], logging.ERROR)],
)
def test_long_running_commands_log_at_the_configured_level_unless_told(
    arguments: list[str], expected: int
) -> None:
    settings = Settings.model_validate({"logging": {"level": "DEBUG"}})
    with main.make_context("hallmonitor", list(arguments)) as ctx:
        configure_logging(ctx.params["log_level"].upper())
        log_at_configured_level(ctx, settings)
    assert logging.getLogger("monitor").level == expected
