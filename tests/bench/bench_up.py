"""The first ten minutes, measured: how fast `hallmonitor up --demo` shows something true.

Run:  .venv/bin/python -m tests.bench.bench_up [--repeats 5] [--seconds 30]

Each round starts `hallmonitor up --demo --port 0` on a fresh data directory (so it migrates a
new SQLite database and creates the first administrator, as on a newcomer's first run) and
records, from the moment the process is started:

- ``ready``: the "Hall Monitor is up: URL" line (migrated, capture and web app started);
- ``first incident``: the first row in the incidents table (polled every 0.1 s with sqlite3);
- ``healthz``: the first HTTP 200 from /healthz;
- peak resident memory of the process (``VmHWM`` from /proc) after ``--seconds``;
- ``stop``: SIGTERM to exit, and the exit status (0 expected) and incidents stored.

Medians over the rounds are printed. There is no peer to run side by side: the figures are
for the README's promise ("incidents appear within a minute") and for regressions. The
machine is shared and noisy: read orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HALLMONITOR = ROOT / ".venv" / "bin" / "hallmonitor"
READY = re.compile(r"Hall Monitor is up: (\S+)")
POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Round:
    ready_s: float
    first_incident_s: float
    healthz_s: float
    peak_rss_mb: float
    stop_s: float
    exit_status: int
    incidents: int


def incident_count(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])
    except sqlite3.Error:  # not migrated yet, or busy: try again
        return 0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def one_round(seconds: float) -> Round:
    with tempfile.TemporaryDirectory(prefix="bench-up-") as scratch:
        data_dir = Path(scratch)
        database = data_dir / "hallmonitor.db"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
        started = time.monotonic()
        process = subprocess.Popen(
            [str(HALLMONITOR), "up", "--demo", "--port", "0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        assert process.stdout is not None
        address: list[str] = []
        ready_at = threading.Event()

        def read_stdout() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                found = READY.search(line)
                if found and not address:
                    address.append(found.group(1))
                    ready_at.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready_at.wait(120):
            process.kill()
            raise SystemExit("up --demo did not print its address within 120 s")
        ready_s = time.monotonic() - started
        healthz_s = first_incident_s = float("nan")
        deadline = started + seconds
        while time.monotonic() < deadline:
            now = time.monotonic() - started
            if healthz_s != healthz_s and healthy(address[0]):  # NaN until first 200
                healthz_s = now
            if first_incident_s != first_incident_s and incident_count(database) > 0:
                first_incident_s = now
            time.sleep(POLL_S)
        peak = peak_rss_mb(process.pid)
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=120)
        stop_s = time.monotonic() - stopping
        return Round(
            ready_s, first_incident_s, healthz_s, peak, stop_s, status, incident_count(database)
        )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0, help="How long each round runs.")
    options = parser.parse_args()
    rounds = []
    for n in range(options.repeats):
        result = one_round(options.seconds)
        rounds.append(result)
        sys.stderr.write(f"round {n + 1}: {result}\n")
    say(f"{len(rounds)} rounds of {options.seconds:.0f} s, medians:")
    for label, values, unit in (
        ("ready (address printed)", [r.ready_s for r in rounds], "s"),
        ("/healthz answers 200", [r.healthz_s for r in rounds], "s"),
        ("first incident stored", [r.first_incident_s for r in rounds], "s"),
        ("peak RSS", [r.peak_rss_mb for r in rounds], "MB"),
        ("SIGTERM to exit", [r.stop_s for r in rounds], "s"),
        ("incidents stored", [float(r.incidents) for r in rounds], ""),
    ):
        say(f"  {label:<26} {statistics.median(values):8.2f} {unit}")
    statuses = sorted({r.exit_status for r in rounds})
    say(f"  exit statuses              {statuses}")


if __name__ == "__main__":
    main()
