"""Logging is configured here and only here, once, by the entry point."""

from __future__ import annotations

import logging.config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_logging_config(level: str = "INFO") -> dict[str, object]:
    """The dictConfig for every Hall Monitor process: one stderr handler, journald-friendly."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "hallmonitor": {"level": level, "handlers": ["stderr"], "propagate": False},
            "monitor": {"level": level, "handlers": ["stderr"], "propagate": False},
            "api": {"level": level, "handlers": ["stderr"], "propagate": False},
            "uvicorn": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def configure_logging(level: str = "INFO") -> None:
    """Install the handlers; call once from the command line entry point."""
    logging.config.dictConfig(build_logging_config(level))
