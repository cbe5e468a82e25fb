"""``hallmonitor db`` (the schema) and ``hallmonitor purge`` (retention): the database's upkeep."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from hallmonitor.cli.context import fail_on_setup_errors, settings_for


@click.group()
def db() -> None:
    """The incident database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the latest version (safe to run again)."""
    from monitor.store.db import upgrade_schema

    settings = settings_for(ctx)
    url = settings.database.url.get_secret_value()
    click.echo(fail_on_setup_errors(lambda: upgrade_schema(url)))


@click.command()
@click.option(
    "--all-sites",
    is_flag=True,
    help="Purge every school's records with these retention settings, not only site.name's.",
)
@click.pass_context
def purge(ctx: click.Context, all_sites: bool) -> None:
    """Delete this school's records older than the retention settings allow (the daemon also
    does this daily)."""
    from monitor.store.retention import run_purge

    settings = settings_for(ctx)
    retention = settings.retention
    url = settings.database.url.get_secret_value()
    click.echo(
        fail_on_setup_errors(
            lambda: run_purge(
                url,
                datetime.now(UTC),
                observations_days=retention.observations_days,
                incidents_days=retention.incidents_days,
                false_positive_days=retention.false_positive_days,
                site=None if all_sites else settings.site.name,
            )
        )
    )
