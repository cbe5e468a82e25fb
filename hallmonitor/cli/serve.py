"""``hallmonitor serve``: the review app alone (``hallmonitor.serve``)."""

from __future__ import annotations

import click

from hallmonitor.cli.context import fail_on_setup_errors, log_at_configured_level, settings_for


@click.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Serve the review app (web pages and the JSON API under /api/v1) until SIGTERM.

    Listens on web.host:web.port (default 127.0.0.1:8080: put the reverse proxy in front, see
    deploy/). Refuses to start on a database that is not at the latest migration.
    """
    from hallmonitor.serve import run_server

    settings = settings_for(ctx)
    log_at_configured_level(ctx, settings)
    fail_on_setup_errors(lambda: run_server(settings))
