"""The ``hallmonitor`` command line: thin wiring from options to the engine."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Collection
from typing import IO

import click

from monitor.errors import CaptureFileError
from monitor.extract.dns import DNS_PORTS
from monitor.logconfig import configure_logging
from monitor.pipeline import Pipeline
from monitor.scan import (
    TABLE_HEADER,
    FileSummary,
    default_format,
    render_jsonl,
    render_summary,
    render_table_row,
    scan_frames,
)
from monitor.sources.pcap import capture_size, read_capture

PROGRESS_MIN_BYTES = 16 << 20
"""Files at least this large get a progress bar when a person is watching."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="How much to log to stderr.",
)
@click.version_option(package_name="hallmonitor")
def main(log_level: str) -> None:
    """Hall Monitor: see social-networking use on a school network, for the headteacher's review."""
    configure_logging(log_level.upper())


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
def scan(
    files: tuple[str, ...], output_format: str | None, dns_ports: tuple[int, ...], strict: bool
) -> None:
    """Read pcap or pcapng FILES and print every DNS query, TLS and QUIC server name seen.

    Each observation is printed to stdout: JSON lines (keys ts, proto, name, client_ip,
    client_mac, server_ip, server_port, flags, cnames, addresses, vlan) or a table on a
    terminal. A summary of each file goes to stderr. A file that cannot be read is named on
    stderr and makes the exit status 1; damaged packets are counted, never fatal.
    """
    out = sys.stdout
    fmt = output_format or default_format(out)
    if fmt == "table":
        out.write(TABLE_HEADER + "\n")
    failed = 0
    for path in files:
        try:
            summary = _scan_one(path, out, fmt, DNS_PORTS | set(dns_ports), strict)
        except CaptureFileError as e:
            click.echo(f"hallmonitor scan: {e}", err=True)
            failed += 1
            continue
        click.echo(render_summary(summary), err=True)
    out.flush()
    if failed:
        sys.exit(1)


def _scan_one(
    path: str, out: IO[str], fmt: str, dns_ports: Collection[int], strict: bool
) -> FileSummary:
    pipeline = Pipeline(strict=strict, dns_ports=dns_ports)
    summary = FileSummary(path=path, counters=pipeline.counters, by_proto=Counter())
    frames = read_capture(path)
    render = render_jsonl if fmt == "jsonl" else render_table_row
    size = capture_size(path)
    show_progress = fmt == "table" and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    write = out.write
    by_proto = summary.by_proto
    if show_progress:
        with click.progressbar(length=size, label=path, file=sys.stderr) as bar:
            for observation in scan_frames(frames, pipeline, on_bytes=bar.update):
                by_proto[observation.proto.value] += 1
                write(render(observation) + "\n")
    else:
        for observation in scan_frames(frames, pipeline):
            by_proto[observation.proto.value] += 1
            write(render(observation) + "\n")
    summary.truncated = bool(getattr(frames, "truncated", False))
    return summary
