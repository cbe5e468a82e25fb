"""A scan shared among processes fails clearly when one of them fails, and leaves none behind.

That its output equals one process's is tested with every fused-scan comparison in
test_fastscan.py (the "compiled, 3 processes" runs) and end to end in test_cli.py.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
from collections import Counter
from pathlib import Path

import pytest

from monitor.fastscan import compiled_loop_built
from monitor.pipeline import Pipeline
from monitor.scanshare import ScanShareError, _OtherShare, add_counters, scan_shared
from monitor.sources.pcap import read_capture
from monitor.values import StageCounters
from tests.bench.make_mix import write_mix

needs_compiled_loop = pytest.mark.skipif(
    not compiled_loop_built() and os.environ.get("CI") != "true",
    reason="monitor.compiled.scanloop was not built (no C compiler)",
)


def sent(*messages: tuple[object, ...]) -> _OtherShare:
    """The receiving end of a process that sent ``messages`` (the pipe's bytes, in memory)."""
    stream = io.BytesIO(b"".join(pickle.dumps(message) for message in messages))
    return _OtherShare(pid=12345, stream=stream)


def test_lines_and_totals_are_received_in_turn() -> None:
    other = sent(("lines", [3], ['{"x":1}']), ("totals", StageCounters(frames=2), Counter()))
    assert other.receive("lines") == ([3], ['{"x":1}'])
    counters, by_proto = other.receive("totals")
    assert counters.frames == 2 and by_proto == Counter()


def test_a_process_that_failed_fails_the_scan_with_its_traceback() -> None:
    other = sent(("error", "Traceback ...\nValueError: boom\n"))
    with pytest.raises(ScanShareError, match="^scan process 12345 failed: ValueError: boom$") as e:
        other.receive("lines")
    assert e.value.detail.startswith("Traceback")


def test_a_process_that_ended_early_fails_the_scan() -> None:
    with pytest.raises(ScanShareError, match="ended without sending its results"):
        sent().receive("lines")


def test_a_process_that_died_halfway_through_a_message_fails_the_scan() -> None:
    whole = pickle.dumps(("lines", [1, 2], ["a", "b"]))
    other = _OtherShare(pid=12345, stream=io.BytesIO(whole[: len(whole) // 2]))
    with pytest.raises(ScanShareError, match="ended without sending its results"):
        other.receive("lines")


def test_a_process_out_of_step_fails_the_scan() -> None:
    other = sent(("totals", StageCounters(), Counter()))
    with pytest.raises(ScanShareError, match="'totals' where 'lines' was due"):
        other.receive("lines")


def test_counters_of_the_processes_add_up() -> None:
    total = StageCounters(frames=5, packets=4, observations=1, malformed={"dns": 1})
    part = StageCounters(
        frames=3,
        packets=2,
        observations=2,
        malformed={"dns": 2, "tls": 1},
        errors={"extract": 1},
        unsupported_linktypes={105: 7},
    )
    add_counters(total, part)
    assert total == StageCounters(
        frames=8,
        packets=6,
        observations=3,
        malformed={"dns": 3, "tls": 1},
        errors={"extract": 1},
        unsupported_linktypes={105: 7},
    )


def child_pids() -> list[int]:
    pid = os.getpid()
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


@needs_compiled_loop
def test_a_process_killed_mid_scan_fails_the_scan_and_none_is_left_behind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mix.pcap"
    write_mix(path, "dense", 20000, seed=4)  # several windows: lines still to come
    killed: list[int] = []

    def write(text: str) -> None:
        if not killed:
            killed.extend(child_pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(ScanShareError, match="ended without sending its results"):
        scan_shared(read_capture(path), Pipeline(), write, Counter(), jobs=3)
    assert len(killed) == 2
    assert child_pids() == []
