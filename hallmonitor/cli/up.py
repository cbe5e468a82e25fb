"""``hallmonitor up``: everything in one process, the all-in-one for a small school and the demo
(``hallmonitor.up``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hallmonitor.cli.context import fail_on_setup_errors, log_at_configured_level
from monitor.errors import ConfigError
from monitor.extract.compiled import log_twins

if TYPE_CHECKING:
    from monitor.config.settings import Settings


@click.command()
@click.option(
    "--demo",
    is_flag=True,
    help="Replay the bundled sample traffic in a loop (no capture rights needed), with demo "
    "settings built in and the data under --data-dir.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --demo: where the demo keeps its database. Default: ./var.",
)
@click.option("--host", help="Listen on this address instead of web.host.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Listen on this port instead of web.port (0: any free port; the address is printed).",
)
@click.pass_context
def up(
    ctx: click.Context, demo: bool, data_dir: Path | None, host: str | None, port: int | None
) -> None:
    """Run capture, the review app and the report scheduler together, until SIGTERM or Ctrl-C.

    Migrates the database first (no need for `db upgrade`), and on the first start creates the
    user `admin` with a one-time password: printed on a terminal (and with --demo), else
    written to <database.data_dir>/first-admin-password (mode 0600, removed once admin
    chooses a password) and only that file named. Prints the review app's address once it
    answers. SIGTERM or Ctrl-C stops capture first (open incidents are closed and everything
    queued is written), then the web app, and exits 0; SIGHUP reloads the lists and
    configuration. If a part fails, the rest stop and the exit status is 1.

    With --demo, sample traffic stands in for live capture, its times moved into the current
    (or the last) school day, so incidents appear within a minute. Only a configuration named
    with --config or $HALLMONITOR_CONFIG is read then, never /etc/hallmonitor/config.toml.
    Without --demo, live capture needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN.
    """
    import os

    from hallmonitor.up import PartFailed, Up
    from monitor.config.loading import CONFIG_ENV, load_settings

    if data_dir is not None and not demo:
        raise click.UsageError("--data-dir applies only with --demo; set database.data_dir")
    if demo:
        from monitor.demo.settings import load_demo_settings
        from monitor.demo.source import demo_clock, open_demo_source

        named = ctx.find_root().params.get("config_path") or os.environ.get(CONFIG_ENV)
        config_path = Path(named) if named else None

        def reload() -> Settings:
            return load_demo_settings(config_path, data_dir)

    else:
        config_path = ctx.find_root().obj

        def reload() -> Settings:
            return load_settings(config_path)

    try:
        settings = reload()
    except ConfigError as e:
        raise click.ClickException(f"configuration: {e}") from e
    log_at_configured_level(ctx, settings)
    log_twins()
    if host is not None:
        settings.web.host = host
    if port is not None:
        settings.web.port = port
    if demo:
        from monitor.demo.clock import NoSchoolDay

        try:
            clock = demo_clock(settings)
        except (NoSchoolDay, ConfigError) as e:
            raise click.ClickException(f"demo: {e}") from e
        runner = Up(
            settings,
            out=sys.stdout,
            reload_settings=reload,
            open_source=open_demo_source,
            clock=clock,
            password_on_screen=True,  # a throwaway database under ./var
        )
    else:
        runner = Up(settings, out=sys.stdout, reload_settings=reload)
    try:
        fail_on_setup_errors(runner.run)
    except PartFailed as e:
        raise click.ClickException(str(e)) from e
