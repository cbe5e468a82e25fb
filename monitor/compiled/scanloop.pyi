"""Types of the compiled record loop (monitor/compiled/scanloop.pyx) for mypy."""

import mmap

from monitor.fastscan import LoopRules, RecordWalk
from monitor.values import Frame

def walk_records(
    walk: RecordWalk, buf: bytes | mmap.mmap, base: int, pos: int, size: int, last: int
) -> None: ...
def common_dns_entry(
    message: bytes, rules: LoopRules
) -> tuple[bool, tuple[tuple[str, int, str], ...]] | None: ...
def ipv6_text(raw: bytes) -> str: ...
def walk_frames(walk: RecordWalk, frames: list[Frame]) -> None: ...
def merge_lines(
    frames_a: list[int], lines_a: list[str], frames_b: list[int], lines_b: list[str]
) -> tuple[list[int], list[str]]: ...
