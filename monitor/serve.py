"""``hallmonitor serve``: run the review app under uvicorn.

``monitor`` never imports ``api`` (the layering contract), so uvicorn is given the app factory
by its import string, ``api.app:create_app``; the factory reads the settings again from the
config file, which ``run_server`` names through ``HALLMONITOR_CONFIG``. The schema is checked
here first, so an old database stops the command with one line instead of a traceback from
inside uvicorn. The app applies ``web.root_path`` and the trusted proxies' headers itself, so
uvicorn is told to leave both alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import uvicorn

from monitor.config import CONFIG_ENV, Settings
from monitor.store.db import ensure_schema_current, make_engine

APP_FACTORY = "api.app:create_app"
GRACEFUL_SHUTDOWN_S = 10


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``uvicorn.run`` gets for these settings."""
    return {
        "factory": True,
        "host": settings.web.host,
        "port": settings.web.port,
        "proxy_headers": False,  # the app trusts web.forwarded_allow_ips itself
        "server_header": False,
        "log_config": None,  # logging is configured once, by monitor.logconfig
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def run_server(settings: Settings, config_path: Path | None) -> None:
    """Serve the review app until SIGINT/SIGTERM; ``SchemaNotCurrent`` before starting if the
    database needs ``hallmonitor db upgrade``."""
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        ensure_schema_current(engine)
    finally:
        engine.dispose()
    if config_path is not None:
        os.environ[CONFIG_ENV] = str(config_path)
    uvicorn.run(APP_FACTORY, **uvicorn_options(settings))
