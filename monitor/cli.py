"""The ``hallmonitor`` command line: thin wiring from options to the engine."""

from __future__ import annotations

import gc
import os
import sys
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar, cast

import click

# Heavy modules (sqlalchemy, pydantic, scapy) are imported inside the commands that use them:
# `hallmonitor scan` starts in a tenth of a second, which matters when scanning many files.
from monitor.errors import BlocklistError, CaptureFileError, ConfigError, SchemaNotCurrent
from monitor.extract.compiled import log_twins
from monitor.extract.dns import DNS_PORTS
from monitor.logconfig import configure_logging
from monitor.pipeline import Pipeline
from monitor.scan import (
    DAMAGED_EXIT_STATUS,
    TABLE_HEADER,
    FileSummary,
    default_format,
    render_jsonl,
    render_summary,
    render_table_row,
    write_observations,
)
from monitor.scanshare import ScanShareError
from monitor.sources.pcap import capture_size, read_capture
from monitor.values import Category, Presence

if TYPE_CHECKING:
    from monitor.config import Settings

T = TypeVar("T")

PROGRESS_MIN_BYTES = 16 << 20
"""Files at least this large get a progress bar when a person is watching."""


MAX_AUTO_JOBS = 4
SHARED_SCAN_MIN_BYTES = 16 << 20
"""Smaller captures are scanned in one process: starting others would cost more than it saves."""


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
    if ctx.invoked_subcommand != "scan":  # scan looks for the file only with --record (_record):
        from monitor.config import default_config_path  # importing pydantic costs 0.5 s

        ctx.obj = config_path or default_config_path()


def _log_at_configured_level(ctx: click.Context, settings: Settings) -> None:
    """Long-running commands log at ``logging.level`` (for the journal), unless --log-level
    was given on the command line."""
    root = ctx.find_root()
    if root.get_parameter_source("log_level") is click.core.ParameterSource.DEFAULT:
        configure_logging(settings.logging.level)


def _settings(ctx: click.Context) -> Settings:
    """The configuration, or one human line per problem and exit status 1."""
    from monitor.config import load_settings

    try:
        return load_settings(ctx.find_root().obj)
    except ConfigError as e:
        raise click.ClickException(f"configuration: {e}") from e


def _fail_on_setup_errors(action: Callable[[], T]) -> T:
    """Run ``action``; turn the errors a user can fix into one line instead of a traceback."""
    from sqlalchemy.exc import OperationalError

    from monitor.sources.live import CaptureSetupError

    try:
        return action()
    except (SchemaNotCurrent, BlocklistError, ConfigError, CaptureSetupError) as e:
        raise click.ClickException(str(e)) from e
    except OperationalError as e:
        first_line = str(e.orig or e).splitlines()[0]
        raise click.ClickException(
            f"the database cannot be reached: {first_line}; check database.url in the configuration"
        ) from e


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "table"]),
    default=None,
    help="Output format. Default: a table on a terminal, JSON lines otherwise.",
)
@click.option(
    "--dns-port",
    "dns_ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help=f"Also read DNS on this UDP/TCP port (repeatable). Always read: {', '.join(map(str, sorted(DNS_PORTS)))}.",
)
@click.option(
    "--strict",
    is_flag=True,
    hidden=True,
    help="Stop on an internal error instead of counting it (for tests).",
)
@click.option(
    "--record",
    is_flag=True,
    help="Instead of printing observations, replay the files through the capture daemon's path "
    "into the database (platform matches, school calendar, segments, incidents). A file this "
    "site has already recorded (the same bytes, under any name) is skipped and named on stderr, "
    "so recording it again changes nothing. Exit status 1 "
    "if any record was dropped (e.g. a full disk under the spool), else 2 if a capture is damaged "
    "(what was read is recorded).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that share the work of a JSON-lines scan, by flow; the output is the same "
    "(with the compiled loop; without it the scan runs in one process). "
    f"Default: one per CPU (at most {MAX_AUTO_JOBS}) for captures of "
    f"{SHARED_SCAN_MIN_BYTES >> 20} MiB or more, else 1.",
)
@click.pass_context
def scan(
    ctx: click.Context,
    files: tuple[str, ...],
    output_format: str | None,
    dns_ports: tuple[int, ...],
    strict: bool,
    record: bool,
    jobs: int | None,
) -> None:
    """Read pcap or pcapng FILES and print every DNS query, TLS and QUIC server name seen.

    Each observation is printed to stdout: JSON lines (keys ts, proto, name, client_ip,
    client_mac, server_ip, server_port, flags, cnames, addresses, vlan) or a table on a
    terminal. A summary of each file goes to stderr. A file that cannot be read is named on
    stderr and makes the exit status 1; damaged packets are counted, never fatal. A damaged
    file (a record or block header with an impossible length, or a file cut short) is read up
    to the damage and on from the next plausible record; each damaged place is named on
    stderr with its byte offset and the bytes skipped, and the exit status is 2 (as tshark's).
    With --record, what was read is recorded all the same. A file that cannot be read at
    all outranks damage: the exit status is then 1.
    """
    log_twins()
    if record:
        _record(ctx, files, dns_ports)
        return
    # The scan makes no reference cycles (tests/monitor/test_fastscan.py checks every golden
    # capture): reference counting frees all it drops, and the cycle collector, which the
    # millions of short-lived tuples would set off again and again, only costs time (~10%).
    gc.disable()
    out = sys.stdout
    fmt = output_format or default_format(out)
    if fmt == "table":
        out.write(TABLE_HEADER + "\n")
    failed = damaged = 0
    for path in files:
        try:
            summary = _scan_one(path, out, fmt, DNS_PORTS | set(dns_ports), strict, jobs)
        except CaptureFileError as e:
            click.echo(f"hallmonitor scan: {e}", err=True)
            failed += 1
            continue
        except ScanShareError as e:  # a bug or a crash in another process: the lines are cut
            click.echo(f"hallmonitor scan: {path}: stopped partway, {e}", err=True)
            failed += 1
            continue
        click.echo(render_summary(summary), err=True)
        for line in summary.damage:
            click.echo(f"hallmonitor scan: {line}", err=True)
        damaged += bool(summary.damage)
    out.flush()
    if failed:
        sys.exit(1)
    if damaged:
        sys.exit(DAMAGED_EXIT_STATUS)


def _record(ctx: click.Context, files: tuple[str, ...], dns_ports: tuple[int, ...]) -> None:
    from monitor.config import default_config_path
    from monitor.runner import record_captures

    root = ctx.find_root()
    root.obj = root.obj or default_config_path()  # main() leaves it to scan, to start fast
    settings = _settings(ctx)
    if dns_ports:
        settings.capture.dns_ports = [*settings.capture.dns_ports, *dns_ports]
    try:
        summary = _fail_on_setup_errors(lambda: record_captures(settings, files))
    except CaptureFileError as e:
        raise click.ClickException(str(e)) from e
    for line in (*summary.skipped, *summary.damage):
        click.echo(f"hallmonitor scan: {line}", err=True)
    click.echo(f"recorded into {settings.database.display_url()}: {summary.describe()}", err=True)
    if summary.writer.dropped:
        sys.exit(1)  # records were lost: a script must not take this run as complete
    if summary.damage:
        sys.exit(DAMAGED_EXIT_STATUS)


def _scan_jobs(asked: int | None, size: int) -> int:
    if asked is not None:
        return asked
    if size < SHARED_SCAN_MIN_BYTES:
        return 1
    return max(1, min(MAX_AUTO_JOBS, len(os.sched_getaffinity(0))))


def _scan_one(
    path: str, out: IO[str], fmt: str, dns_ports: Collection[int], strict: bool, jobs: int | None
) -> FileSummary:
    pipeline = Pipeline(strict=strict, dns_ports=dns_ports)
    summary = FileSummary(path=path, counters=pipeline.counters, by_proto=Counter())
    render = render_jsonl if fmt == "jsonl" else render_table_row
    size = capture_size(path)
    show_progress = fmt == "table" and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    write = out.write
    by_proto = summary.by_proto
    with read_capture(path) as frames:
        from monitor.fastscan import can_fast_scan, compiled_loop_built, scan_capture

        if show_progress:
            with click.progressbar(length=size, label=path, file=sys.stderr) as bar:
                write_observations(frames, pipeline, write, render, by_proto, on_bytes=bar.update)
        elif fmt == "jsonl" and can_fast_scan(frames, pipeline):
            # The same output as the general path, faster (the compiled loop; log_twins said
            # at the start when it is not there).
            scan_capture(frames, pipeline, write, by_proto, jobs=_scan_jobs(jobs, size))
        else:
            if jobs is not None and jobs > 1 and fmt == "jsonl" and not compiled_loop_built():
                click.echo(
                    "hallmonitor scan: --jobs needs the compiled loop (monitor/compiled/, "
                    "built by scripts/setup when gcc is installed): one process it is",
                    err=True,
                )
            write_observations(frames, pipeline, write, render, by_proto)
    summary.truncated = frames.truncated
    summary.damage = tuple(frames.damage_report())
    return summary


@main.command()
@click.pass_context
def capture(ctx: click.Context) -> None:
    """Capture live on the configured interfaces and record incidents in the database.

    Runs until SIGTERM or Ctrl-C, then closes open incidents and drains what is queued for the
    database (exit status 0). SIGHUP reloads the lists and the configuration. Needs root, or
    the capabilities CAP_NET_RAW and CAP_NET_ADMIN.
    """
    from monitor.config import load_settings
    from monitor.metrics import daemon_metrics
    from monitor.runner import CaptureDaemon, build_rules

    config_path = ctx.find_root().obj
    settings = _settings(ctx)
    _log_at_configured_level(ctx, settings)
    log_twins()
    _fail_on_setup_errors(lambda: build_rules(settings))  # the lists load, before capturing
    daemon = CaptureDaemon(settings, reload_settings=lambda: load_settings(config_path))
    with daemon_metrics(daemon, settings.capture.metrics_address()):
        _fail_on_setup_errors(daemon.run)


@main.group()
def db() -> None:
    """The incident database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the latest version (safe to run again)."""
    from monitor.store.db import upgrade_schema

    settings = _settings(ctx)
    url = settings.database.url.get_secret_value()
    click.echo(_fail_on_setup_errors(lambda: upgrade_schema(url)))


@main.command()
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

    settings = _settings(ctx)
    retention = settings.retention
    url = settings.database.url.get_secret_value()
    click.echo(
        _fail_on_setup_errors(
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


@main.group()
def lists() -> None:
    """The platform lists (shipped in blocklists/, plus lists.directories)."""


@lists.command("check")
@click.pass_context
def lists_check(ctx: click.Context) -> None:
    """Validate every platform list and allowlist; bad lines are named with file and line."""
    from monitor.lists import list_directories, run_lists_check

    settings = _settings(ctx)
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
    from monitor.lists import PublicFormat, run_lists_import

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


@main.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Load the configuration and report every problem with its key and what is allowed."""
    from monitor.config import run_config_check

    status, lines = run_config_check(ctx.find_root().obj)
    for line in lines:
        click.echo(line, err=status != 0)
    sys.exit(status)


@main.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Serve the review app (web pages and the JSON API under /api/v1) until SIGTERM.

    Listens on web.host:web.port (default 127.0.0.1:8080: put the reverse proxy in front, see
    deploy/). Refuses to start on a database that is not at the latest migration.
    """
    from monitor.serve import run_server

    settings = _settings(ctx)
    _log_at_configured_level(ctx, settings)
    _fail_on_setup_errors(lambda: run_server(settings, ctx.find_root().obj))


@main.group()
def users() -> None:
    """People who sign in to the review app (admin, reviewer, governor)."""


def _database_url(ctx: click.Context) -> str:
    return _settings(ctx).database.url.get_secret_value()


def _run_user_command(action: Callable[[], T]) -> T:
    try:
        return _fail_on_setup_errors(action)
    except (ValueError, LookupError) as e:
        raise click.ClickException(str(e).strip("'\"")) from e


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["admin", "reviewer", "governor"]), required=True, help="Role."
)
@click.option("--name", "display_name", help="The person's name as shown. Default: USERNAME.")
@click.option("--email", help="Where reports go (reviewers and governors).")
@click.option(
    "--site",
    help="Limit the user to one school of a trust (an admin too: their school's users, "
    "tokens, devices and audit log only).",
)
@click.password_option(help="At least 12 characters; asked for when not given.")
@click.pass_context
def users_add(
    ctx: click.Context,
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    site: str | None,
    password: str,
) -> None:
    """Create a user."""
    from monitor.store.users import run_users_add

    url = _database_url(ctx)
    click.echo(
        _run_user_command(
            lambda: run_users_add(
                url, username, display_name or username, role, email, site, password
            )
        )
    )


@users.command("passwd")
@click.argument("username")
@click.password_option(help="At least 12 characters; asked for when not given.")
@click.pass_context
def users_passwd(ctx: click.Context, username: str, password: str) -> None:
    """Set a new password (clears a lockout and signs the user out everywhere).

    For `admin`, the file holding the one-time password of the first start (under a service)
    is removed too: that password no longer works."""
    from monitor.first_admin import forget_password_file, password_file
    from monitor.store.users import normalise_username, run_users_passwd

    settings = _settings(ctx)
    url = settings.database.url.get_secret_value()
    click.echo(_run_user_command(lambda: run_users_passwd(url, username, password)))
    data_dir = settings.database.data_dir
    if forget_password_file(data_dir, normalise_username(username)):
        click.echo(f"removed {password_file(data_dir)}: its one-time password no longer works")


@users.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@click.pass_context
def users_disable(ctx: click.Context, username: str, enable: bool) -> None:
    """Disable a user (or enable with --enable); a disabled user cannot sign in."""
    from monitor.store.users import run_users_disable

    url = _database_url(ctx)
    click.echo(_run_user_command(lambda: run_users_disable(url, username, disabled=not enable)))


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List users with their role, site and state."""
    from monitor.store.users import run_users_list

    url = _database_url(ctx)
    for line in _run_user_command(lambda: run_users_list(url)):
        click.echo(line)


@users.command("token")
@click.argument("username")
@click.option("--name", "token_name", required=True, help="What the token is for.")
@click.pass_context
def users_token(ctx: click.Context, username: str, token_name: str) -> None:
    """Create an API token acting as USERNAME; it is printed once and never again."""
    from monitor.store.users import run_users_token

    url = _database_url(ctx)
    click.echo(_run_user_command(lambda: run_users_token(url, username, token_name)))


@main.group()
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
    from monitor.reports.scheduler import run_report_weekly

    settings = _settings(ctx)
    status, lines = _fail_on_setup_errors(
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

    settings = _settings(ctx)
    try:
        line = _fail_on_setup_errors(
            lambda: run_report_governors(settings, start=start.date(), end=end.date(), out=out)
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(line)


# --- doctor and selftest: is the sensor ready, and does it see and classify a lookup ---------


@main.command()
@click.option(
    "--check",
    "only",
    multiple=True,
    type=click.Choice(
        ["capabilities", "interfaces", "database", "lists", "compiled", "smtp", "time"]
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
    from monitor.doctor import run_doctor

    settings = _settings(ctx)
    status, lines = run_doctor(settings, only=only, watch_s=watch_s, by=by)
    for line in lines:
        click.echo(line)
    sys.exit(status)


@main.command()
@click.option("--by", help="Who ran it, as recorded. Default: the OS user (or sudo's user).")
@click.pass_context
def selftest(ctx: click.Context, by: str | None) -> None:
    """Look up selftest.name and confirm the capture sees the query and the lists classify it.

    Captures on the configured interfaces while asking selftest.resolver (default: the system's
    DNS server); no answer is needed. A failure says which step failed: not seen (the sensor is
    not on the path) or not classified (the lists). The run is recorded for the governors.
    """
    from monitor.selftest import run_selftest

    settings = _settings(ctx)
    status, lines = run_selftest(settings, by=by)
    for line in lines:
        click.echo(line)
    sys.exit(status)


# --- up: everything in one process (the all-in-one for a small school, and the demo) ----------


@main.command()
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

    from monitor.config import CONFIG_ENV, load_settings
    from monitor.up import PartFailed, Up

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
    _log_at_configured_level(ctx, settings)
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
        _fail_on_setup_errors(runner.run)
    except PartFailed as e:
        raise click.ClickException(str(e)) from e
