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
from json.encoder import encode_basestring_ascii
from typing import IO

from monitor.decode.links import LINKTYPE_NAMES
from monitor.pipeline import Pipeline
from monitor.values import Flag, Frame, Observation, Proto, StageCounters

DAMAGED_EXIT_STATUS = 2
"""``hallmonitor scan``'s exit status when a capture was damaged or cut short (as tshark's)."""

PCAP_RECORD_OVERHEAD_BYTES = 16
"""Per-frame header bytes in a pcap file, used to estimate progress through a file."""

WRITE_BATCH_LINES = 512
"""Rendered lines joined into one ``write`` call by ``write_observations``."""

TABLE_HEADER = f"{'time (UTC)':<26} {'proto':<5} {'name':<40} {'client':<22} {'server':<28} flags"


@dataclass(slots=True)
class FileSummary:
    """What one capture file held, for the stderr summary."""

    path: str
    counters: StageCounters
    by_proto: Counter[str] = field(default_factory=Counter)
    truncated: bool = False
    damage: tuple[str, ...] = ()
    """The lines that name the file's damaged places (``CaptureReader.damage_report``)."""


def _reporting_bytes(frames: Iterable[Frame], on_bytes: Callable[[int], None]) -> Iterator[Frame]:
    pending_bytes = 0
    for frame in frames:
        pending_bytes += len(frame.data) + PCAP_RECORD_OVERHEAD_BYTES
        if pending_bytes >= 1 << 20:
            on_bytes(pending_bytes)
            pending_bytes = 0
        yield frame
    if pending_bytes:
        on_bytes(pending_bytes)


def write_observations(
    frames: Iterable[Frame],
    pipeline: Pipeline,
    write: Callable[[str], object],
    render: Callable[[Observation], str],
    by_proto: Counter[str],
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Scan ``frames`` and ``write`` one rendered line per observation, counting them by proto.

    The general path of ``hallmonitor scan`` (``monitor.fastscan`` writes the same JSON lines
    faster through the compiled loop, when it was built): lines are joined and written a few hundred at a time, and
    the per-proto counts are added to ``by_proto`` once at the end (also when a bug stops the
    scan), so that the hot path is only the pipeline and the renderer.
    """
    if on_bytes is not None:
        frames = _reporting_bytes(frames, on_bytes)
    batches = pipeline.batches(frames)
    counts: dict[Proto, int] = {}
    lines: list[str] = []
    add_line = lines.append
    try:
        for observations in batches:
            for observation in observations:
                proto = observation.proto
                counts[proto] = counts.get(proto, 0) + 1
                add_line(render(observation))
            if len(lines) >= WRITE_BATCH_LINES:
                lines.append("")
                write("\n".join(lines))
                lines.clear()
        if lines:
            lines.append("")
            write("\n".join(lines))
    finally:
        for proto, count in counts.items():
            by_proto[proto.value] += count


_encode_string = encode_basestring_ascii
"""JSON text of a str, exactly as ``json.dumps`` writes it (ASCII-only, with escapes)."""

_PROTO_JSON = {proto: _encode_string(proto.value) for proto in Proto}
_flags_json: dict[frozenset[Flag], str] = {frozenset(): "[]"}
"""JSON arrays of the flag sets seen so far: a handful of distinct sets ever occur."""


def render_flags(flags: frozenset[Flag]) -> str:
    text = _flags_json.get(flags)
    if text is None:
        text = json.dumps(sorted(flag.value for flag in flags), separators=(",", ":"))
        if len(_flags_json) < 256:
            _flags_json[flags] = text
    return text


def render_jsonl(observation: Observation) -> str:
    """One observation as a JSON line (the text ``json.dumps`` makes of ``as_json_dict()``).

    Built by hand because it runs for every observation: ``json.dumps`` costs five times more.
    Strings go through the C string encoder that ``json.dumps`` itself uses.
    """
    o = observation
    enc = _encode_string
    mac = o.client_mac
    cnames = o.cnames
    addresses = o.addresses
    vlan = o.vlan
    proto = _PROTO_JSON.get(o.proto) or enc(o.proto.value)
    return (
        f'{{"ts":{o.ts!r},"proto":{proto},"name":{enc(o.name)},'
        f'"client_ip":{enc(o.client_ip)},"client_mac":{"null" if mac is None else enc(mac)},'
        f'"server_ip":{enc(o.server_ip)},"server_port":{o.server_port},'
        f'"flags":{_flags_json.get(o.flags) or render_flags(o.flags)},'
        f'"cnames":[{",".join(map(enc, cnames)) if cnames else ""}],'
        f'"addresses":[{",".join(map(enc, addresses)) if addresses else ""}],'
        f'"vlan":{"null" if vlan is None else vlan}}}'
    )


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
