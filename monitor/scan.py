"""``hallmonitor scan``: run the pipeline over capture files and print what it saw.

Observations go to stdout (JSON lines, or a table for a person at a terminal); the summary of
each file goes to stderr so that piping the JSON elsewhere keeps it clean.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from monitor.decode import LINKTYPE_NAMES
from monitor.pipeline import Pipeline
from monitor.values import Frame, Observation, StageCounters

PCAP_RECORD_OVERHEAD_BYTES = 16
"""Per-frame header bytes in a pcap file, used to estimate progress through a file."""

TABLE_HEADER = f"{'time (UTC)':<26} {'proto':<5} {'name':<40} {'client':<22} {'server':<28} flags"


@dataclass(slots=True)
class FileSummary:
    """What one capture file held, for the stderr summary."""

    path: str
    counters: StageCounters
    by_proto: Counter[str] = field(default_factory=Counter)
    truncated: bool = False


def scan_frames(
    frames: Iterable[Frame],
    pipeline: Pipeline,
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Observation]:
    """Observations from frames, reporting approximate file bytes consumed to ``on_bytes``."""
    process = pipeline.process
    pending_bytes = 0
    for frame in frames:
        if on_bytes is not None:
            pending_bytes += len(frame.data) + PCAP_RECORD_OVERHEAD_BYTES
            if pending_bytes >= 1 << 20:
                on_bytes(pending_bytes)
                pending_bytes = 0
        observations = process(frame)
        if observations:
            yield from observations
    if on_bytes is not None and pending_bytes:
        on_bytes(pending_bytes)


def render_jsonl(observation: Observation) -> str:
    """One observation as a JSON line."""
    return json.dumps(observation.as_json_dict(), separators=(",", ":"))


def render_table_row(observation: Observation) -> str:
    """One observation as a fixed-width row for a terminal."""
    when = datetime.fromtimestamp(observation.ts, UTC).isoformat(timespec="microseconds")
    when = when.replace("+00:00", "")
    server = f"{_bracket_v6(observation.server_ip)}:{observation.server_port}"
    flags = ",".join(sorted(flag.value for flag in observation.flags))
    return (
        f"{when:<26} {observation.proto.value:<5} {observation.name:<40} "
        f"{observation.client_ip:<22} {server:<28} {flags}"
    )


def render_summary(summary: FileSummary) -> str:
    """One human line about a scanned file."""
    counters = summary.counters
    counts = [
        f"{counters.frames:,} frames",
        f"{counters.packets:,} packets",
        f"{counters.observations:,} observations" + _breakdown(summary.by_proto),
    ]
    malformed = sum(counters.malformed.values())
    if malformed:
        counts.append(f"{malformed:,} malformed" + _breakdown(counters.malformed))
    if counters.errors:
        counts.append(
            f"{sum(counters.errors.values()):,} internal errors" + _breakdown(counters.errors)
        )
    parts = [", ".join(counts)]
    if counters.unsupported_linktypes:
        named = ", ".join(
            f"{LINKTYPE_NAMES.get(linktype, 'unknown')} ({linktype}): {count:,} frames"
            for linktype, count in sorted(counters.unsupported_linktypes.items())
        )
        parts.append(f"unsupported link types: {named}")
    if summary.truncated:
        parts.append("the file ends in the middle of a packet")
    return f"{summary.path}: " + "; ".join(parts)


def _breakdown(table: Counter[str] | dict[str, int]) -> str:
    if not table:
        return ""
    inner = ", ".join(f"{key} {count:,}" for key, count in sorted(table.items()) if count)
    return f" ({inner})" if inner else ""


def _bracket_v6(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def default_format(stream: IO[str]) -> str:
    """JSON lines unless a person is watching a terminal."""
    try:
        return "table" if os.isatty(stream.fileno()) else "jsonl"
    except (AttributeError, OSError, ValueError):
        return "jsonl"
