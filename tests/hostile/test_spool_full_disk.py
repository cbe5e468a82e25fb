"""A full disk under the database and the spool: nothing is lost silently.

Each test mounts a small tmpfs of its own (root only; unmounted afterwards), puts the spool on
it, and fills it. Items that cannot be written
anywhere are counted (items, not lines or batches), the cause is named, the error is logged a
few times rather than once per batch, and ``scan --record`` exits 1.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from monitor.records import CounterIncrement
from monitor.store.db import make_engine, upgrade_schema
from monitor.store.items import encode_item
from monitor.store.spool import Spool
from monitor.store.writer import Writer
from tests.monitor.test_runner import PCAPS, SOCIAL_CAPTURES, write_config

HALLMONITOR = str(Path(sys.executable).parent / "hallmonitor")
ROOT = Path(__file__).resolve().parents[2]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="mounting a tmpfs needs root",
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, mounted for this test only."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mountpoint)],
        check=True,
        capture_output=True,
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True, capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        block = b"\0" * 4096
        try:
            while True:
                out.write(block)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


def items(n: int) -> list[dict[str, object]]:
    day = date(2026, 11, 24)
    return [
        encode_item(CounterIncrement("st-marys", day, f"observations.n{i}", 1)) for i in range(n)
    ]


@needs_root
def test_a_failed_append_leaves_no_torn_line_and_later_records_read_back(
    small_disk: Path,
) -> None:
    spool = Spool(small_disk / "spool")
    spool.append("before", items(3))
    filler = fill(small_disk)
    with pytest.raises(OSError) as full:
        spool.append("too-big", items(2000))
    assert full.value.errno == errno.ENOSPC
    filler.unlink()
    spool.append("after", items(2))
    segments = spool.sealed_segments()
    read = [spool.read(segment) for segment in segments]
    spool.close()
    assert [r.id for records, _ in read for r in records] == ["before", "after"]
    assert sum(lost for _, lost in read) == 0


@needs_root
def test_a_torn_line_counts_as_the_items_it_held(small_disk: Path, tmp_path: Path) -> None:
    spool_dir = small_disk / "spool"
    spool = Spool(spool_dir)
    spool.append("torn-by-a-crash", items(500))
    spool.append("whole", items(7))
    spool.close()
    segment = next(spool_dir.glob("segment-*.jsonl"))
    lines = segment.read_bytes().split(b"\n")
    segment.write_bytes(lines[0][: len(lines[0]) // 2] + b"\n" + lines[1] + b"\n")
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade_schema(url)
    writer = Writer(lambda: make_engine(url), spool_dir=spool_dir)
    writer.start()
    stats = writer.stop(timeout=60)
    assert (stats.replayed, stats.dropped) == (7, 500)
    assert list(stats.drop_causes.values()) == [500]
    assert "unreadable lines in the spool" in next(iter(stats.drop_causes))


@needs_root
def test_scan_record_on_a_full_disk_counts_every_lost_item_names_the_cause_and_exits_1(
    small_disk: Path, tmp_path: Path
) -> None:
    captures = [str(PCAPS / name) for name in SOCIAL_CAPTURES]
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    expected = record(roomy, captures)
    assert expected.returncode == 0, expected.stderr
    items_made = int(re.findall(r"([\d,]+) records written", expected.stderr)[0].replace(",", ""))

    # The database server is away (nothing listens on its port), so everything goes to the
    # spool, on a disk that is full.
    full = small_disk / "school"
    full.mkdir()
    config = write_config(full, f"postgresql://nobody@127.0.0.1:{closed_port()}/gone")
    (full / "data").mkdir()
    fill(small_disk)
    result = run(config, "scan", "--record", *captures)
    summary = result.stderr.strip().splitlines()[-1]
    print(f"\n[full disk] items made={items_made}; {summary}")  # noqa: T201
    assert result.returncode == 1, result.stderr
    dropped = int(re.findall(r"([\d,]+) DROPPED", summary)[0].replace(",", ""))
    written = int(re.findall(r"([\d,]+) records written", summary)[0].replace(",", ""))
    assert written + dropped == items_made
    assert "No space left on device" in summary
    assert "could not be written" in summary
    logged = [line for line in result.stderr.splitlines() if "items dropped" in line]
    assert 1 <= len(logged) <= 2, logged  # once a minute, not once a batch


def closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port: int = unused.getsockname()[1]
        return port


def record(directory: Path, captures: list[str]) -> subprocess.CompletedProcess[str]:
    """``hallmonitor scan --record`` with the data directory (SQLite database and spool) there."""
    config = write_config(directory, f"sqlite:///{directory / 'data' / 'hallmonitor.db'}")
    upgrade = run(config, "db", "upgrade")
    return upgrade if upgrade.returncode != 0 else run(config, "scan", "--record", *captures)


def run(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HALLMONITOR_")}
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [HALLMONITOR, "--config", str(config), *arguments],
        capture_output=True, text=True, env=environment, check=False, timeout=300,
    )  # fmt: skip
