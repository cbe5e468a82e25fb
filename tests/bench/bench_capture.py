"""The capture daemon under a sustained replay: kernel drops and names seen, against ``scan``.

Run as root:  .venv/bin/python -m tests.bench.bench_capture [--rates 30000,60000,100000]
    [--seconds 10] [--workers 1,2] [--profile dense] [--keep-dir /tmp/hallmonitor-bench]

For each rate, the capture of ``tests.bench.make_mix`` (``--profile``, dense by default: about
two thirds of its packets bear a name) with ``rate x seconds`` packets is generated (cached in
``--keep-dir``) and scanned offline once (``hallmonitor scan --format jsonl``: the observations
it prints are the names to be seen). Then, for each ``--workers`` value, ``hallmonitor
capture`` runs on the host end of a veth pair (``tests/monitor/sources/netns.py``) with
``capture.workers`` set, into a fresh SQLite database, and one sender process inside the
namespace writes the file's frames, in order, once, to a raw socket at the rate (paced; one
sender, so that no flow's packets are reordered). The frames go to MAC addresses that are not
the host's, as on a mirror port. The daemon is stopped (SIGTERM) once it has read every packet
the kernel passed it or a grace period ended, and its last stats line gives the packets the
kernel passed, the kernel's drops, the frames decoded and the observations made.

Printed per run: the rate asked for and the rate the sender reached, packets, kernel drops (and
their share), observations live against offline, and the daemon's CPU time. Exit status 1
when a daemon failed; never because of a figure. The senders, the kernel's receive work and the
daemon share the machine's cores: on a busy 2-core machine read the figures as measured under
that load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.bench_record import Daemon, child_environment, db_upgrade, hallmonitor
from tests.bench.make_mix import write_mix
from tests.monitor.sources.netns import namespace_command, set_mtu, veth_namespace

SENDER = """
import socket, struct, sys, time
path, iface, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = open(path, "rb").read()
little = data[:4] == b"\\xd4\\xc3\\xb2\\xa1"
record = struct.Struct("<IIII" if little else ">IIII")
frames, pos = [], 24
while pos + 16 <= len(data):
    _, _, caplen, _ = record.unpack_from(data, pos)
    frames.append(data[pos + 16 : pos + 16 + caplen])
    pos += 16 + caplen
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
send = sock.send
total = len(frames)
count = failed = 0
start = time.perf_counter()
while count < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1, count + 1024)
    if due <= count:
        time.sleep(0.0002)
        continue
    while count < due:
        try:
            send(frames[count])
        except OSError:
            failed += 1
        count += 1
print(count, failed, time.perf_counter() - start)
"""

STATS_LINE = re.compile(
    r"packets (\d+), kernel drops (\d+), (?:frames (\d+), )?malformed (\d+), observations (\d+)"
)
GRACE_S = 30.0
"""How long the daemon may take, after the sender ends, to read what its buffer holds."""


@dataclass(frozen=True)
class CaptureRun:
    rate: int
    workers: int
    sent: int
    send_seconds: float
    packets: int
    drops: int
    frames: int
    observations: int
    offline: int
    cpu_s: float
    catch_up_s: float


def ensure_capture(keep_dir: Path, profile: str, packets: int) -> Path:
    path = keep_dir / f"capture-{profile}-{packets}.pcap"
    if not path.exists():
        say(f"generating {path.name} ...")
        write_mix(path, profile, packets)
    return path


def offline_observations(path: Path) -> int:
    result = subprocess.run(
        [hallmonitor(), "scan", "--format", "jsonl", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=child_environment(),
    )
    return sum(1 for line in result.stdout.splitlines() if line.startswith("{"))


def config_text(data_dir: Path, interface: str, workers: int) -> str:
    return (
        '[site]\nname = "bench-school"\n\n'
        f'[capture]\ninterfaces = ["{interface}"]\nmetrics_listen = ""\n'
        # (only when above 1, so that a daemon from before the option can be measured too)
        + (f"workers = {workers}\n" if workers > 1 else "")
        + "\n"
        '[calendar]\ntimezone = "Europe/London"\n\n'
        f'[database]\ndata_dir = "{data_dir}"\n'
    )


def last_stats(daemon: Daemon) -> tuple[int, ...] | None:
    for line in reversed(list(daemon.lines)):
        found = STATS_LINE.search(line)
        if found:
            return tuple(int(group or 0) for group in found.groups())
    return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and its children that ended (the workers), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / 100.0


def worker_cpu_seconds(pid: int) -> float:
    total = 0.0
    for child in Path(f"/proc/{pid}/task").iterdir():
        for grandchild in (child / "children").read_text().split():
            with contextlib.suppress(OSError, ValueError):  # it ended meanwhile
                total += cpu_seconds(int(grandchild))
    return total


def run_once(path: Path, rate: int, workers: int, offline: int) -> CaptureRun:
    with tempfile.TemporaryDirectory() as tmp, veth_namespace() as pair:
        set_mtu(pair, 9000)
        data_dir = Path(tmp)
        config = data_dir / "hallmonitor.toml"
        config.write_text(config_text(data_dir, pair.host_iface, workers))
        db_upgrade(config)
        daemon = Daemon(config)
        try:
            if not daemon.wait_for_log("capturing on", 60):
                raise RuntimeError(f"the daemon did not start:\n{daemon.tail()}")
            sender = subprocess.run(
                [*namespace_command(pair.ns_name, SENDER), str(path), pair.ns_iface, str(rate)],
                capture_output=True,
                text=True,
                check=True,
            )
            sent, failed, send_seconds = sender.stdout.split()
            if int(failed):
                raise RuntimeError(f"{failed} frames could not be sent")
            ended = time.monotonic()
            # The daemon has caught up when its CPU stops rising (nothing left in the ring).
            pid = daemon.process.pid
            before = cpu_seconds(pid) + worker_cpu_seconds(pid)
            while time.monotonic() - ended < GRACE_S:
                time.sleep(0.5)
                now = cpu_seconds(pid) + worker_cpu_seconds(pid)
                if now - before < 0.05:
                    break
                before = now
            catch_up = time.monotonic() - ended
            cpu = cpu_seconds(pid) + worker_cpu_seconds(pid)
        finally:
            status = daemon.stop()
        if status != 0:
            raise RuntimeError(f"the daemon exited {status}:\n{daemon.tail(20)}")
        stats = last_stats(daemon)
        if stats is None:
            raise RuntimeError(f"no stats line from the daemon:\n{daemon.tail(20)}")
        packets, drops, frames, _malformed, observations = stats
    return CaptureRun(
        rate,
        workers,
        int(sent),
        float(send_seconds),
        packets,
        drops,
        frames,
        observations,
        offline,
        cpu,
        catch_up,
    )


def render(run: CaptureRun) -> str:
    offered = run.sent / run.send_seconds if run.send_seconds else 0.0
    seen = run.packets + run.drops
    share = run.drops / seen if seen else 0.0
    per_packet = run.cpu_s / run.packets * 1e6 if run.packets else 0.0
    return (
        f"{run.rate:>8,} {run.workers:>7} {offered:>10,.0f} {seen:>10,} {run.drops:>9,} "
        f"{share:>6.1%} {run.observations:>10,} {run.offline:>10,} {run.cpu_s:>7.1f} s "
        f"{run.catch_up_s:>6.1f} s {per_packet:>7.1f} µs"
    )


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="30000,60000,100000", help="packets/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each replay")
    parser.add_argument("--workers", default="1,2", help="capture.workers values, comma-separated")
    parser.add_argument("--profile", default="dense")
    parser.add_argument("--keep-dir", type=Path, default=Path("/tmp/hallmonitor-bench"))
    parser.add_argument("--json", type=Path, help="also write the runs here")
    args = parser.parse_args(argv)
    args.keep_dir.mkdir(parents=True, exist_ok=True)
    say(
        f"{args.profile} mix, {args.seconds:g} s per replay, one sender; the machine's cores are "
        "shared by the sender, the kernel and the daemon (and whatever else runs)"
    )
    say(
        f"{'asked/s':>8} {'workers':>7} {'offered/s':>10} {'passed':>10} {'drops':>9} "
        f"{'drop%':>6} {'obs live':>10} {'obs scan':>10} {'CPU':>9} {'catch-up':>8} {'CPU/pkt':>10}"
    )
    runs = []
    failed = False
    for rate in (int(value) for value in args.rates.split(",")):
        path = ensure_capture(args.keep_dir, args.profile, int(rate * args.seconds))
        offline = offline_observations(path)
        for workers in (int(value) for value in args.workers.split(",")):
            try:
                run = run_once(path, rate, workers, offline)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                say(f"{rate:>8,} {workers:>7} FAILED: {e}")
                failed = True
                continue
            runs.append(run)
            say(render(run))
    if args.json is not None:
        args.json.write_text(json.dumps([run.__dict__ for run in runs], indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
