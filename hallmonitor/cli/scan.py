"""``hallmonitor scan``: print what captures hold, or record them (``--record``)."""

from __future__ import annotations

import gc
import os
import sys
from collections import Counter
from collections.abc import Collection
from typing import IO

import click

# Heavy modules (sqlalchemy, pydantic, scapy) are imported inside the commands that use them:
# `hallmonitor scan` starts in a tenth of a second, which matters when scanning many files.
from hallmonitor.cli.context import fail_on_setup_errors, settings_for
from monitor.errors import CaptureFileError
from monitor.extract.compiled import log_twins
from monitor.extract.dns import DNS_PORTS
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

PROGRESS_MIN_BYTES = 16 << 20
"""Files at least this large get a progress bar when a person is watching."""


MAX_AUTO_JOBS = 4
SHARED_SCAN_MIN_BYTES = 16 << 20
"""Smaller captures are scanned in one process: starting others would cost more than it saves."""


@click.command()
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
    "so recording it again changes nothing; a replay that was interrupted (kill, power cut) is "
    "carried on, exactly once, by running the same command again. Exit status 1 "
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
    from monitor.config.loading import default_config_path
    from monitor.runner import record_captures

    root = ctx.find_root()
    root.obj = root.obj or default_config_path()  # main() leaves it to scan, to start fast
    settings = settings_for(ctx)
    if dns_ports:
        settings.capture.dns_ports = [*settings.capture.dns_ports, *dns_ports]
    try:
        summary = fail_on_setup_errors(lambda: record_captures(settings, files))
    except CaptureFileError as e:
        raise click.ClickException(str(e)) from e
    for line in (*summary.skipped, *summary.carried_on, *summary.damage):
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
