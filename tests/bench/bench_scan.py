"""Offline scan benchmark: ``hallmonitor scan`` against tshark on generated captures.

Why: the design promises that Hall Monitor's own decoder reads captures many times faster
than tshark while finding every name. This script measures both claims on the deterministic
captures of ``tests.bench.make_mix`` and prints the figures beside their targets.

Run (from the repository root)::

    scripts/bench [--packets 200000] [--repeats 5] [--profiles dense,bulk] [--keep-dir DIR]
    .venv/bin/python -m tests.bench.bench_scan ...          # the same, without the wrapper

What it does, per profile:

1. Generates the capture and its manifest (cached by profile, packet count, seed and generator
   version in ``--keep-dir``, default ``$TMPDIR/hallmonitor-bench``; reused when the manifest's
   sha256 matches the file).
2. Checks the generator: ``tshark -n -r FILE -T fields -e quic.version -e dns.qry.name
   -e tls.handshake.extensions_server_name`` must find exactly the manifest's DNS, TLS and QUIC
   names. This run also warms the page cache.
3. Checks the scanner: one untimed ``hallmonitor scan --format jsonl FILE``; the set of
   (proto, name) it prints is compared with the manifest (missing names, and names the
   manifest does not list).
4. Times ``hallmonitor scan --format jsonl FILE > /dev/null`` and
   ``tshark -n -r FILE -T fields -e dns.qry.name -e tls.handshake.extensions_server_name
   > /dev/null`` alternately, ``--repeats`` times each: wall time (``time.perf_counter``) and
   the peak RSS of each child (``os.wait4``). The scan runs with Python's bytecode cache on
   (``scan_environment``), as an installed program does, even where the shell turns it off.
   By default it shares captures of 16 MiB or more among one process per CPU (at most 4;
   ``hallmonitor scan --jobs``); time one process with
   ``--scan-cmd ".venv/bin/hallmonitor scan --format jsonl --jobs 1"``.

It prints packets, median seconds and packets/s of each tool, the median of the per-pair
ratios tshark/scan (targets: >= 8 dense, >= 12 bulk), the peak RSS of each, and the name check.
Timings on the shared 2-core development machine are noisy: compare ratios, not seconds.

Exit status: 0 when scan found every manifest name; 1 when scan missed a name or crashed;
2 when tshark disagrees with the manifest (a generator bug: the name check means nothing then).
Never non-zero because of a time. ``--tshark-only`` measures tshark alone (for developing the
harness without a working scanner); ``--scan-cmd`` replaces the scan command (a stub, an older
build); the capture path is appended to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from tests.bench.make_mix import MANIFEST_VERSION, PROFILES, manifest_path, write_mix

TARGET_RATIO = {"dense": 8.0, "bulk": 12.0}
"""Minimum tshark/scan time ratio the design asks for, per profile."""

NAME_PROTOS = ("dns", "tls", "quic")

TSHARK_TIMED = ("-T", "fields", "-e", "dns.qry.name", "-e", "tls.handshake.extensions_server_name")
"""The tshark field extraction that is timed: the names, as scan prints them."""

TSHARK_CHECK = (
    "-T",
    "fields",
    "-e",
    "quic.version",
    "-e",
    "dns.qry.name",
    "-e",
    "tls.handshake.extensions_server_name",
)
"""The field extraction of the generator check: quic.version tells QUIC SNIs from TLS ones."""

MACHINE_CAVEAT = (
    "Caveat: measured on a shared machine with {cpus} CPU(s) (load average {load}); timings are "
    "noisy from run to run, so compare the ratios and re-run before drawing conclusions."
)


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    seconds: float
    max_rss_kib: int
    returncode: int


@dataclass
class NameCheck:
    """Names a tool printed, compared with the manifest."""

    expected: dict[str, set[str]]
    found: dict[str, set[str]]
    extra_protos: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    """Observations per proto, and per ``proto:flag`` (e.g. ``dns:response``, ``tls:ech``)."""

    def missing(self, proto: str) -> set[str]:
        return self.expected[proto] - self.found.get(proto, set())

    def extra(self, proto: str) -> set[str]:
        return self.found.get(proto, set()) - self.expected.get(proto, set())

    def all_found(self) -> bool:
        return not any(self.missing(p) for p in NAME_PROTOS)

    def exact(self) -> bool:
        return self.all_found() and not any(self.extra(p) for p in NAME_PROTOS)

    def render(self, tool: str) -> str:
        total = sum(len(self.expected[p]) for p in NAME_PROTOS)
        hits = total - sum(len(self.missing(p)) for p in NAME_PROTOS)
        parts = ", ".join(
            f"{p} {len(self.expected[p]) - len(self.missing(p))}/{len(self.expected[p])}"
            for p in NAME_PROTOS
        )
        extras = sorted(f"{p}:{n}" for p in self.found for n in self.extra(p))
        line = (
            f"{tool} found {hits}/{total} manifest names ({parts}); not in manifest: {len(extras)}"
        )
        for proto in NAME_PROTOS:
            missing = sorted(self.missing(proto))
            if missing:
                line += f"\n      missing {proto}: {_sample(missing)}"
        if extras:
            line += f"\n      not in manifest: {_sample(extras)}"
        return line


def _sample(items: list[str], limit: int = 8) -> str:
    more = f" ... (+{len(items) - limit})" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# --- captures -------------------------------------------------------------------------


def ensure_capture(
    directory: Path, profile: str, packets: int, seed: int
) -> tuple[Path, dict[str, object]]:
    """The capture for these arguments, generated unless a matching one is cached."""
    path = directory / f"mix-{profile}-{packets}-seed{seed}-v{MANIFEST_VERSION}.pcap"
    mpath = manifest_path(path)
    if path.exists() and mpath.exists():
        manifest = cast(dict[str, object], json.loads(mpath.read_text()))
        if manifest.get("pcap_sha256") == _sha256(path):
            return path, manifest
    started = time.perf_counter()
    manifest = write_mix(path, profile, packets, seed)
    _say(f"   generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path, manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_names(manifest: dict[str, object]) -> dict[str, set[str]]:
    """The manifest's name sets per proto."""
    names = cast(dict[str, list[str]], manifest["names"])
    return {proto: set(names[proto]) for proto in NAME_PROTOS}


# --- name checks ----------------------------------------------------------------------


def parse_tshark_names(lines: Iterable[str]) -> dict[str, set[str]]:
    """Names from ``TSHARK_CHECK`` output: DNS question names, TLS SNIs, QUIC SNIs."""
    found: dict[str, set[str]] = {proto: set() for proto in NAME_PROTOS}
    for line in lines:
        quic_version, dns_names, snis = (line.rstrip("\n").split("\t") + ["", ""])[:3]
        found["dns"].update(n for n in dns_names.split(",") if n)
        found["quic" if quic_version else "tls"].update(n for n in snis.split(",") if n)
    return found


def parse_scan_output(lines: Iterable[str]) -> tuple[dict[str, set[str]], set[str], Counter[str]]:
    """From ``hallmonitor scan --format jsonl`` output: proto -> names, other protos seen, and
    observation counts per proto and per ``proto:flag``."""
    found: dict[str, set[str]] = {proto: set() for proto in NAME_PROTOS}
    other: set[str] = set()
    counts: Counter[str] = Counter()
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        proto, name = str(record["proto"]), str(record["name"])
        counts[proto] += 1
        counts.update(f"{proto}:{flag}" for flag in record.get("flags") or ())
        if proto in found:
            found[proto].add(name)
        else:
            other.add(proto)
    return found, other, counts


def render_counts(counts: Counter[str], manifest: dict[str, object]) -> str:
    """Scan's observation counts beside the manifest's message counts (information only)."""
    expected = cast(dict[str, int], manifest.get("messages") or {})
    queries, responses = expected.get("dns_query", 0), expected.get("dns_response", 0)
    hellos, ech = expected.get("tls_client_hello", 0), expected.get("tls_client_hello_ech", 0)
    pairs = [
        (counts["dns"], queries + responses),
        (counts["dns:response"], responses),
        (counts["tls"], hellos),
        (counts["tls:ech"], ech),
        (counts["quic"], expected.get("quic_client_hello", 0)),
    ]
    verdict = "counts match" if all(a == b for a, b in pairs) else "COUNTS DIFFER"
    return (
        f"dns {counts['dns']:,} (manifest {queries:,} queries + {responses:,} responses; "
        f"scan flagged {counts['dns:response']:,} as response), "
        f"tls {counts['tls']:,} (manifest {hellos:,} ClientHellos; ECH flagged "
        f"{counts['tls:ech']:,} of {ech:,}), "
        f"quic {counts['quic']:,} (manifest {expected.get('quic_client_hello', 0):,} ClientHellos): "
        f"{verdict}"
    )


def check_tshark(tshark: str, path: Path, manifest: dict[str, object]) -> NameCheck:
    """Run tshark once and compare its names with the manifest."""
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), *TSHARK_CHECK],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return NameCheck(expected_names(manifest), parse_tshark_names(out.splitlines()))


def scan_environment(directory: Path) -> dict[str, str]:
    """The environment of the scan runs: Python's bytecode cache on, kept under ``directory``.

    An installed ``hallmonitor`` runs from compiled bytecode (pip compiles it at install time).
    A development shell may set ``PYTHONDONTWRITEBYTECODE`` (this project's does), and an
    editable install has no bytecode of its own: each run would then compile every module again,
    about 0.1-0.2 s of a bulk scan's second. The cache goes to ``directory``, not the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(directory / "pycache"))
    return env


def check_scan(
    scan_cmd: list[str], path: Path, manifest: dict[str, object], env: dict[str, str] | None = None
) -> tuple[NameCheck | None, str]:
    """Run the scanner once; its names compared with the manifest, or None and why it failed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(
            [*scan_cmd, str(path)], stdout=out, stderr=err, check=False, env=env
        )
        err.seek(0)
        stderr = err.read()
        if result.returncode != 0:
            return None, f"exit status {result.returncode}\n{stderr[-3000:]}"
        out.seek(0)
        try:
            found, other, counts = parse_scan_output(out)
        except (ValueError, KeyError) as e:
            return None, f"unreadable JSON lines: {e}"
    check = NameCheck(expected_names(manifest), found, other, counts)
    return check, stderr.strip()


# --- timing ---------------------------------------------------------------------------


def run_timed(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` with stdout to /dev/null; wall time and the child's own peak RSS."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss, child.returncode)


@dataclass
class ProfileResult:
    """Everything measured for one profile."""

    profile: str
    path: Path
    manifest: dict[str, object]
    tshark_check: NameCheck
    scan_check: NameCheck | None = None
    scan_problem: str = ""
    scan_runs: list[Run] = field(default_factory=list)
    tshark_runs: list[Run] = field(default_factory=list)


def bench_profile(
    profile: str, args: argparse.Namespace, directory: Path, scan_cmd: list[str] | None, tshark: str
) -> ProfileResult:
    """Generate, check and time one profile."""
    _say(f"== {profile}: preparing")
    path, manifest = ensure_capture(directory, profile, args.packets, args.seed)
    result = ProfileResult(profile, path, manifest, check_tshark(tshark, path, manifest))
    env = scan_environment(directory)
    if scan_cmd is not None:
        result.scan_check, result.scan_problem = check_scan(scan_cmd, path, manifest, env)
    timed_scan = scan_cmd is not None and result.scan_check is not None
    for i in range(args.repeats):
        if timed_scan and scan_cmd is not None:
            run = run_timed([*scan_cmd, str(path)], env)
            result.scan_runs.append(run)
            if run.returncode != 0:
                result.scan_problem = f"timed run {i + 1}: exit status {run.returncode}"
                timed_scan = False
        result.tshark_runs.append(run_timed([tshark, "-n", "-r", str(path), *TSHARK_TIMED]))
        _say(f"   repeat {i + 1}/{args.repeats} done")
    return result


# --- report ---------------------------------------------------------------------------


def render_result(result: ProfileResult) -> str:
    """The printed block for one profile."""
    m = result.manifest
    packets = cast(int, m["packets"])
    size_mb = result.path.stat().st_size / 1e6
    lines = [
        f"== {result.profile}: {packets:,} packets, {size_mb:.1f} MB, "
        f"{cast(float, m['name_bearing_fraction']):.1%} name-bearing ({result.path})",
        f"   generator check: {result.tshark_check.render('tshark')}",
        f"   {'tool':<8}{'median s':>10}{'packets/s':>12}{'peak RSS MB':>13}   runs (s)",
    ]
    for tool, runs in (("scan", result.scan_runs), ("tshark", result.tshark_runs)):
        if not runs:
            continue
        median = statistics.median(r.seconds for r in runs)
        rss = max(r.max_rss_kib for r in runs) / 1024
        each = " ".join(f"{r.seconds:.2f}" for r in runs)
        lines.append(f"   {tool:<8}{median:>10.3f}{packets / median:>12,.0f}{rss:>13.1f}   {each}")
    target = TARGET_RATIO.get(result.profile)
    if result.scan_runs and len(result.scan_runs) == len(result.tshark_runs):
        ratios = [
            t.seconds / s.seconds for s, t in zip(result.scan_runs, result.tshark_runs, strict=True)
        ]
        ratio = statistics.median(ratios)
        verdict = (
            ""
            if target is None
            else f"   target >= {target:g}: {'met' if ratio >= target else 'NOT met'}"
        )
        lines.append(
            f"   ratio tshark/scan (median of {len(ratios)} paired runs): {ratio:.1f}{verdict}"
        )
    elif target is not None:
        lines.append(f"   ratio tshark/scan: not measured   target >= {target:g}")
    if result.scan_check is not None:
        lines.append(f"   names: {result.scan_check.render('scan')}")
        lines.append(f"   observations: {render_counts(result.scan_check.counts, m)}")
        if result.scan_check.extra_protos:
            lines.append(
                f"   other protos printed by scan: {sorted(result.scan_check.extra_protos)}"
            )
    if result.scan_problem:
        label = "scan FAILED" if result.scan_check is None else "scan stderr"
        lines.append(f"   {label}: " + result.scan_problem.replace("\n", "\n      "))
    return "\n".join(lines)


def exit_status(results: list[ProfileResult], scan_expected: bool) -> int:
    """1 if scan crashed or missed a name, 2 if the generator check failed, else 0."""
    if any(not r.tshark_check.exact() for r in results):
        return 2
    if scan_expected and any(
        r.scan_check is None or not r.scan_check.all_found() or "exit status" in r.scan_problem
        for r in results
    ):
        return 1
    return 0


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def default_scan_cmd() -> list[str]:
    """The project's console script beside the running interpreter (the repo's .venv)."""
    return [str(Path(sys.executable).parent / "hallmonitor"), "scan", "--format", "jsonl"]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_scan", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profiles", default="dense,bulk", help="comma-separated: dense, bulk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hallmonitor-bench",
        help="where generated captures are cached (default: %(default)s)",
    )
    parser.add_argument("--scan-cmd", help="scan command to time instead of the venv's hallmonitor")
    parser.add_argument("--tshark-only", action="store_true", help="time tshark alone (no scan)")
    parser.add_argument("--tshark", default="tshark", help="tshark executable")
    args = parser.parse_args(argv)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown or args.repeats < 1 or args.packets < 1:
        parser.error(f"profiles must be among {sorted(PROFILES)}; repeats and packets >= 1")
    scan_cmd = (
        None
        if args.tshark_only
        else (shlex.split(args.scan_cmd) if args.scan_cmd else default_scan_cmd())
    )
    args.keep_dir.mkdir(parents=True, exist_ok=True)
    tshark_version = subprocess.run(
        [args.tshark, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    _say(MACHINE_CAVEAT.format(cpus=os.cpu_count(), load=load))
    _say(f"scan: {shlex.join(scan_cmd) if scan_cmd else '(not run: --tshark-only)'}")
    _say(f"tshark: {tshark_version}")
    results = [bench_profile(p, args, args.keep_dir, scan_cmd, args.tshark) for p in profiles]
    _say("")
    _say(
        MACHINE_CAVEAT.format(
            cpus=os.cpu_count(), load=", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
    )
    for result in results:
        _say(render_result(result))
    status = exit_status(results, scan_cmd is not None)
    if status == 2:
        _say(
            "GENERATOR CHECK FAILED: tshark and the manifest disagree; fix tests/bench/make_mix.py."
        )
    elif status == 1:
        _say("SCAN CHECK FAILED: scan crashed or missed manifest names (see above).")
    return status


if __name__ == "__main__":
    sys.exit(main())
