"""``hallmonitor serve``: run the review app under uvicorn.

The app is built here, with ``api.app.create_app(settings)`` and the settings the command
loaded (this package sits above both ``api`` and ``monitor``), and uvicorn is given the app
itself. The schema is checked first, so an old database stops the command with one line
instead of a traceback from inside uvicorn. The app applies ``web.root_path`` and the trusted
proxies' headers itself, so uvicorn is told to leave both alone.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from api.app import create_app
from monitor.config.settings import Settings
from monitor.store.db import ensure_schema_current, make_engine

GRACEFUL_SHUTDOWN_S = 10


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``uvicorn.run`` (or ``uvicorn.Config``) gets for these settings."""
    return {
        "host": settings.web.host,
        "port": settings.web.port,
        "proxy_headers": False,  # the app trusts web.forwarded_allow_ips itself
        "server_header": False,
        "log_config": None,  # logging is configured once, by monitor.logconfig
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def run_server(settings: Settings) -> None:
    """Serve the review app until SIGINT/SIGTERM; ``SchemaNotCurrent`` before starting if the
    database needs ``hallmonitor db upgrade``."""
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        ensure_schema_current(engine)
    finally:
        engine.dispose()
    uvicorn.run(create_app(settings), **uvicorn_options(settings))
