"""Logging goes to stderr through one handler, configured once."""

from __future__ import annotations

import logging

from monitor.logconfig import build_logging_config, configure_logging


def test_logging_config_sends_monitor_logs_to_stderr_at_the_chosen_level() -> None:
    config = build_logging_config("DEBUG")
    assert config["loggers"]["monitor"] == {  # type: ignore[index]
        "level": "DEBUG",
        "handlers": ["stderr"],
        "propagate": False,
    }


def test_configure_logging_writes_to_stderr(capsys) -> None:
    configure_logging("INFO")
    try:
        logging.getLogger("monitor.test").info("hello %s", "school")
        assert "INFO monitor.test: hello school" in capsys.readouterr().err
    finally:
        configure_logging("WARNING")
