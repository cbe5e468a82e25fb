"""``hallmonitor report``: the weekly email and the governors' report."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from hallmonitor.cli.context import fail_on_setup_errors, settings_for


@click.group()
def report() -> None:
    """Reports for the headteacher and the governors."""


@report.command("weekly")
@click.option("--week", help="ISO week, e.g. 2026-W47. Default: the previous week.")
@click.option("--preview", is_flag=True, help="Write the emails to files (or print the text).")
@click.option("--send", is_flag=True, help="Send the week's report to whoever has not had it.")
@click.option("--resend", is_flag=True, help="Send it again to everyone, even if already sent.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --preview: write weekly-<week>-<role>.html and .txt here.",
)
@click.pass_context
def report_weekly(
    ctx: click.Context,
    week: str | None,
    preview: bool,
    send: bool,
    resend: bool,
    out_dir: Path | None,
) -> None:
    """The weekly summary: preview it, send it (exactly once per week and recipient), or resend."""
    from monitor.reports.command import run_report_weekly

    settings = settings_for(ctx)
    status, lines = fail_on_setup_errors(
        lambda: run_report_weekly(
            settings, week=week, preview=preview, send=send, resend=resend, out_dir=out_dir
        )
    )
    for line in lines:
        click.echo(line, err=status != 0)
    sys.exit(status)


@report.command("governors")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day."
)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write (it prints cleanly to PDF from a browser).",
)
@click.pass_context
def report_governors(ctx: click.Context, start: datetime, end: datetime, out: Path) -> None:
    """The governors' termly or annual report: aggregate figures, checks, coverage, changes."""
    from monitor.reports.governors import run_report_governors

    settings = settings_for(ctx)
    try:
        line = fail_on_setup_errors(
            lambda: run_report_governors(settings, start=start.date(), end=end.date(), out=out)
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(line)
