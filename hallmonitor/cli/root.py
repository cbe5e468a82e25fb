"""The ``hallmonitor`` group: its global options, and every command and command group.

``hallmonitor scan`` starts in a tenth of a second, which matters when scanning many files: the
command modules import their heavy modules (sqlalchemy, pydantic, scapy) inside the commands that
use them.
"""

from __future__ import annotations

from pathlib import Path

import click

from hallmonitor.cli import (
    capture,
    checks,
    config,
    db,
    devices,
    lists,
    report,
    scan,
    serve,
    up,
    users,
)
from monitor.logconfig import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="How much to log to stderr. The long-running commands (capture, serve, up) use the "
    "configuration's logging.level (INFO by default) unless this is given.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The TOML configuration file. Default: $HALLMONITOR_CONFIG, else "
    "/etc/hallmonitor/config.toml if it exists, else built-in defaults.",
)
@click.version_option(package_name="hallmonitor")
@click.pass_context
def main(ctx: click.Context, log_level: str, config_path: Path | None) -> None:
    """Hall Monitor: see social-networking use on a school network, for the headteacher's review.

    Settings come from one TOML file (see deploy/config.example.toml) with environment
    overrides named HALLMONITOR_<GROUP>__<KEY>.
    """
    configure_logging(log_level.upper())
    ctx.obj = config_path
    if (
        ctx.invoked_subcommand != "scan"
    ):  # scan looks for the file only with --record (see cli/scan.py):
        from monitor.config.loading import default_config_path

        ctx.obj = config_path or default_config_path()


for command in (
    scan.scan,
    capture.capture,
    db.db,
    db.purge,
    lists.lists,
    config.config_group,
    serve.serve,
    users.users,
    devices.devices,
    report.report,
    checks.doctor,
    checks.selftest,
    up.up,
):
    main.add_command(command)
