"""The spool keeps records on disk in order, survives restarts and torn writes, and is locked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store.spool import Spool, SpoolLockedError, SpoolRecord


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool")
    yield spool
    spool.close()


def read_all(spool: Spool) -> list[SpoolRecord]:
    records: list[SpoolRecord] = []
    for segment in spool.sealed_segments():
        records.extend(spool.read(segment)[0])
    return records


def test_spool_reads_records_back_in_the_order_they_were_appended(spool: Spool) -> None:
    for n in range(5):
        spool.append(f"r{n}", [{"t": "counter", "n": n}], sync=n % 2 == 0)
    assert [(r.id, r.items) for r in read_all(spool)] == [
        (f"r{n}", [{"t": "counter", "n": n}]) for n in range(5)
    ]


def test_spool_counts_pending_bytes_until_segments_are_removed(spool: Spool) -> None:
    assert not spool.has_pending()
    spool.append("r1", [{"t": "x"}])
    assert spool.has_pending()
    (segment,) = spool.sealed_segments()
    assert spool.size_bytes() == segment.stat().st_size
    spool.remove(segment)
    assert (spool.has_pending(), spool.size_bytes(), spool.sealed_segments()) == (False, 0, [])


def test_spool_appends_after_sealing_go_to_a_new_segment(spool: Spool) -> None:
    spool.append("r1", [])
    (first,) = spool.sealed_segments()
    spool.append("r2", [])
    segments = spool.sealed_segments()
    assert segments[0] == first
    assert [r.id for r in spool.read(segments[1])[0]] == ["r2"]


def test_spool_starts_a_new_segment_past_the_size_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_max_bytes=1)
    for n in range(6):
        spool.append(f"r{n}", [{"pad": "x" * 40}])
    assert len(spool.sealed_segments()) == 6
    assert [r.id for r in read_all(spool)] == [f"r{n}" for n in range(6)]
    spool.close()


def test_spool_picks_up_segments_left_by_a_previous_process(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.append("r1", [{"t": "x"}])
    first.close()
    second = Spool(tmp_path)
    assert second.has_pending()
    second.append("r2", [])
    assert [r.id for r in read_all(second)] == ["r1", "r2"]
    second.close()


def test_spool_skips_a_torn_last_line_and_corrupt_lines(spool: Spool) -> None:
    spool.append("r1", [])
    (segment,) = spool.sealed_segments()
    with segment.open("a") as f:
        f.write("this is not json\n")
        f.write(json.dumps({"v": 99, "id": "future", "items": []}) + "\n")
        f.write(json.dumps({"v": 1, "id": "r2", "items": ["not an object"]}) + "\n")
        f.write('{"v": 1, "id": "r3", "ite')
    records, bad = spool.read(segment)
    assert ([r.id for r in records], bad) == (["r1"], 4)


def test_spool_refuses_a_second_process_on_the_same_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolLockedError, match="in use by another Hall Monitor process"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()


def test_spool_append_raises_oserror_when_the_directory_is_gone(spool: Spool) -> None:
    shutil.rmtree(spool.directory)
    spool.directory.write_text("a file where the spool directory was")
    with pytest.raises(OSError):
        spool.append("r1", [])


def test_spool_keeps_rejected_items_with_the_reason(spool: Spool) -> None:
    spool.append_rejected({"t": "incident", "state": "bogus"}, "CHECK constraint failed")
    lines = spool.rejected_path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"reason": "CHECK constraint failed", "item": {"t": "incident", "state": "bogus"}}
    ]
    assert not spool.has_pending()
