"""Live capture throughput: how many packets/s LiveSource takes in before the kernel drops.

Run as root:  .venv/bin/python -m tests.bench.bench_live [--seconds 10] [--repeats 3]

A veth pair goes into a fresh network namespace (see tests/monitor/sources/netns.py). Sender
processes inside the namespace write pre-built Ethernet frames (DNS queries, which the default
filter passes) to a raw AF_PACKET socket at a paced rate; this process captures them on the host
end with LiveSource and counts frames, then reads the kernel's drop counter. The receiver does
nothing with a frame but count it, so the figures are the ceiling of the capture stage alone.
Frames go to a MAC address that is not the host's, as on a mirror port, so the host's IP stack
drops them at once and the capture is what is measured.

Senders and receiver share the machine's cores: on a 2-core machine the senders' kernel work
(veth transmit and the receive softirq, which also fills the capture ring) competes with the
receiver, and the figures vary with whatever else runs. Read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from monitor.sources.live import LiveSource
from tests.monitor.sources.netns import namespace_command, veth_namespace

SENDER = """
import socket, sys, time
frames = [bytes.fromhex(h) for h in {frames!r}]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(({iface!r}, 0))
send = sock.send
rate, seconds = {rate!r}, {seconds!r}
count = failed = 0
total = len(frames)
start = time.perf_counter()
end = start + seconds
while True:
    now = time.perf_counter()
    if now >= end:
        break
    due = min(int((now - start) * rate), count + 512)
    if due <= count:
        time.sleep(0.0002)
        continue
    while count < due:
        try:
            send(frames[count % total])
        except OSError:
            failed += 1
        count += 1
print(count, failed, time.perf_counter() - start)
"""


def dns_frames(count: int) -> list[bytes]:
    """Ethernet/IPv4/UDP DNS queries for distinct names, to a MAC that is not the host's."""
    frames = []
    for index in range(count):
        name = f"host{index}.bench.example".encode()
        labels = b"".join(bytes([len(part)]) + part for part in name.split(b"."))
        dns = (
            index.to_bytes(2, "big")
            + bytes.fromhex("01000001000000000000")
            + labels
            + b"\x00\x00\x01\x00\x01"
        )
        udp = (
            (40000 + index).to_bytes(2, "big")
            + (53).to_bytes(2, "big")
            + (8 + len(dns)).to_bytes(2, "big")
            + b"\x00\x00"
        )
        total = 20 + len(udp) + len(dns)
        header = bytes.fromhex("4500") + total.to_bytes(2, "big") + bytes.fromhex("000040004011")
        addresses = bytes([198, 18, 200, 2, 198, 18, 200, 1])
        checksum = _ip_checksum(header + b"\x00\x00" + addresses)
        ip = header + checksum.to_bytes(2, "big") + addresses
        ether = bytes.fromhex("020000bbbb01020000bbbb020800")
        frames.append(ether + ip + udp + dns)
    return frames


def _ip_checksum(header: bytes) -> int:
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Run:
    offered: float
    sent: int
    received: int
    drops: int
    seconds: float
    cpu: float
    """CPU seconds the receiving process used (user and system), the senders excluded."""


def run_once(rate: int, seconds: float, senders: int, ring: bool) -> Run:
    frames = [frame.hex() for frame in dns_frames(256)]
    with veth_namespace() as pair, LiveSource([pair.host_iface], ring=ring) as source:
        stop = threading.Event()
        codes = [
            SENDER.format(frames=frames, iface=pair.ns_iface, rate=rate / senders, seconds=seconds)
            for _ in range(senders)
        ]
        processes = [
            subprocess.Popen(
                namespace_command(pair.ns_name, code), stdout=subprocess.PIPE, text=True
            )
            for code in codes
        ]
        received = 0

        def finish() -> None:
            for process in processes:
                process.wait()
            time.sleep(0.5)  # let the last ring block retire
            stop.set()

        waiter = threading.Thread(target=finish)
        waiter.start()
        cpu_start = time.process_time()
        for _ in source.frames(stop, poll_s=0.05):
            received += 1
        cpu = time.process_time() - cpu_start
        waiter.join()
        sent = 0
        elapsed = 0.0
        for process in processes:
            assert process.stdout is not None
            count, _failed, duration = process.stdout.read().split()
            sent += int(count)
            elapsed = max(elapsed, float(duration))
        _, drops = source.stats()[pair.host_iface]
    return Run(
        offered=sent / elapsed, sent=sent, received=received, drops=drops, seconds=elapsed, cpu=cpu
    )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rates", default="100000,200000", help="packets/s, comma-separated")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--modes", default="ring,recvfrom", help="ring, recvfrom or both")
    args = parser.parse_args()
    say(f"{args.seconds:g} s per run, median of {args.repeats}, {args.senders} sender processes")
    say(
        f"{'mode':<9} {'asked/s':>9} {'offered/s':>10} {'received/s':>11} {'kernel drops':>13} {'lost':>7} {'rx CPU/pkt':>11}"
    )
    for mode in args.modes.split(","):
        for rate in (int(r) for r in args.rates.split(",")):
            runs = [
                run_once(rate, args.seconds, args.senders, mode == "ring")
                for _ in range(args.repeats)
            ]
            offered = statistics.median(run.offered for run in runs)
            received = statistics.median(run.received / run.seconds for run in runs)
            drops = statistics.median(run.drops for run in runs)
            lost = statistics.median((run.sent - run.received) / run.sent for run in runs)
            cpu = statistics.median(run.cpu / max(1, run.received) * 1e6 for run in runs)
            say(
                f"{mode:<9} {rate:>9,} {offered:>10,.0f} {received:>11,.0f} {drops:>13,.0f} {lost:>7.1%} {cpu:>8.2f} µs"
            )


if __name__ == "__main__":
    main()
