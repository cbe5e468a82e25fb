"""``hallmonitor capture``: the live capture daemon."""

from __future__ import annotations

import click

from hallmonitor.cli.context import fail_on_setup_errors, log_at_configured_level, settings_for
from monitor.extract.compiled import log_twins


@click.command()
@click.pass_context
def capture(ctx: click.Context) -> None:
    """Capture live on the configured interfaces and record incidents in the database.

    Runs until SIGTERM or Ctrl-C, then closes open incidents and drains what is queued for the
    database (exit status 0). SIGHUP reloads the lists and the configuration. Needs root, or
    the capabilities CAP_NET_RAW and CAP_NET_ADMIN.
    """
    from monitor.config.loading import load_settings
    from monitor.config.rules import build_rules
    from monitor.metrics import daemon_metrics
    from monitor.runner import CaptureDaemon

    config_path = ctx.find_root().obj
    settings = settings_for(ctx)
    log_at_configured_level(ctx, settings)
    log_twins()
    fail_on_setup_errors(lambda: build_rules(settings))  # the lists load, before capturing
    daemon = CaptureDaemon(settings, reload_settings=lambda: load_settings(config_path))
    with daemon_metrics(daemon, settings.capture.metrics_address()):
        fail_on_setup_errors(daemon.run)
