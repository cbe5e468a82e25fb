"""``hallmonitor lists``: check the platform lists, import a public list."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click

from hallmonitor.cli.context import settings_for
from monitor.errors import BlocklistError
from monitor.values import Category, Presence


@click.group()
def lists() -> None:
    """The platform lists (shipped in blocklists/, plus lists.directories)."""


@lists.command("check")
@click.pass_context
def lists_check(ctx: click.Context) -> None:
    """Validate every platform list and allowlist; bad lines are named with file and line."""
    from monitor.lists.directories import list_directories, run_lists_check

    settings = settings_for(ctx)
    status, lines = run_lists_check(list_directories(settings))
    for line in lines:
        click.echo(line, err=status != 0)
    sys.exit(status)


@lists.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["hosts", "plain", "adblock", "ut1"]),
    required=True,
    help="hosts: '0.0.0.0 name'; plain: a domain a line; adblock: '||domain^'; ut1: UT1 domains.",
)
@click.option("--platform", required=True, help="Platform id, the list file's name (e.g. tiktok).")
@click.option("--name", "display_name", help="The platform's display name. Default: the id.")
@click.option(
    "--category", type=click.Choice([c.value for c in Category]), required=True, help="Category."
)
@click.option(
    "--presence",
    type=click.Choice([p.value for p in Presence]),
    default=Presence.PRIMARY.value,
    show_default=True,
    help="What every imported entry means.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write <platform>.txt into (add it to lists.directories).",
)
def lists_import(
    file: Path,
    fmt: str,
    platform: str,
    display_name: str | None,
    category: str,
    presence: str,
    out_dir: Path,
) -> None:
    """Turn a public domain list FILE into a platform list in our format."""
    from monitor.lists.public import PublicFormat, run_lists_import

    try:
        text = run_lists_import(
            file,
            cast(PublicFormat, fmt),
            platform,
            display_name or platform,
            category,
            presence,
            out_dir,
        )
    except (BlocklistError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(text)
