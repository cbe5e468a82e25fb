"""``hallmonitor doctor`` and ``selftest``: is the sensor ready, and does it see and classify a
lookup (``hallmonitor.doctor.command``, ``hallmonitor.selftest``)."""

from __future__ import annotations

import sys

import click

from hallmonitor.cli.context import settings_for


@click.command()
@click.option(
    "--check",
    "only",
    multiple=True,
    type=click.Choice(
        ["capabilities", "interfaces", "database", "drops", "lists", "compiled", "smtp", "time"]
    ),
    help="Run only this check (repeatable). Default: every check.",
)
@click.option(
    "--watch",
    "watch_s",
    type=click.FloatRange(0.1, 300),
    default=5.0,
    show_default=True,
    help="Seconds an interface may stay silent before its traffic check fails.",
)
@click.option("--by", help="Who ran it, as recorded. Default: the OS user (or sudo's user).")
@click.pass_context
def doctor(ctx: click.Context, only: tuple[str, ...], watch_s: float, by: str | None) -> None:
    """Check that this sensor can work, and say how to fix what cannot.

    Checks capture capabilities, that the interfaces exist, are up and carry DNS/TLS/QUIC
    traffic, the database and its schema, the lists (at least one platform), which compiled
    modules are in use (a note, never a failure), the SMTP server (when mail is enabled), the
    clock and time zone, and prints whether today is a school day. One line per check; exit
    status 1 if any fails. The run is recorded for the governors' report.
    """
    from hallmonitor.doctor.command import run_doctor

    settings = settings_for(ctx)
    status, lines = run_doctor(settings, only=only, watch_s=watch_s, by=by)
    for line in lines:
        click.echo(line)
    sys.exit(status)


@click.command()
@click.option("--by", help="Who ran it, as recorded. Default: the OS user (or sudo's user).")
@click.pass_context
def selftest(ctx: click.Context, by: str | None) -> None:
    """Look up selftest.name and confirm the capture sees the query and the lists classify it.

    Captures on the configured interfaces while asking selftest.resolver (default: the system's
    DNS server); no answer is needed. A failure says which step failed: not seen (the sensor is
    not on the path) or not classified (the lists). The run is recorded for the governors.
    """
    from hallmonitor.selftest import run_selftest

    settings = settings_for(ctx)
    status, lines = run_selftest(settings, by=by)
    for line in lines:
        click.echo(line)
    sys.exit(status)
