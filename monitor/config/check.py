"""``hallmonitor config check``: load the settings and the calendar files, say what is wrong
or sum up what was loaded."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from monitor.config.loading import default_config_path, load_settings
from monitor.config.rules import build_calendar
from monitor.errors import ConfigError


def run_config_check(
    path: Path | None, *, environ: Mapping[str, str] | None = None
) -> tuple[int, list[str]]:
    """``hallmonitor config check``: exit status and lines to print (``ok: ...`` or errors)."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = default_config_path(environ=environ)
    where = str(path) if path is not None else "no config file (defaults and environment)"
    try:
        settings = load_settings(path, environ=environ)
        calendar = build_calendar(settings)
    except ConfigError as e:
        return 1, [
            f"error: {p}" if p.startswith("config file") else f"error: {where}: {p}"
            for p in e.problems
        ]
    lines = [
        f"ok: {where}: {len(settings.segments)} segments, timezone {calendar.tz}, "
        f"{len(calendar.terms)} terms, {len(calendar.closures)} closures",
        f"database: {settings.database.display_url()}",
    ]
    if not settings.segments:
        lines.append("warning: no segments: every address is unsegmented and nothing is flagged")
    if not calendar.terms:
        lines.append("warning: no terms: every week of the year counts as school time")
    web = settings.web
    if web.base_url.startswith("https://") and not web.forwarded_allow_ips:
        lines.append(
            "warning: web.base_url is https but web.forwarded_allow_ips is empty: behind a "
            'reverse proxy, list its address (["127.0.0.1", "::1"] for nginx on this host), '
            "or the audit log records the proxy's address for everyone"
        )
    return 0, lines
