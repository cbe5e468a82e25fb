"""``hallmonitor config``: check the configuration file."""

from __future__ import annotations

import sys

import click


@click.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Load the configuration and report every problem with its key and what is allowed."""
    from monitor.config.check import run_config_check

    status, lines = run_config_check(ctx.find_root().obj)
    for line in lines:
        click.echo(line, err=status != 0)
    sys.exit(status)
