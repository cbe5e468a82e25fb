"""Types of the compiled record loop (monitor/_scanloop.pyx) for mypy."""

import mmap

from monitor.fastscan import RecordWalk

def walk_records(
    walk: RecordWalk, buf: bytes | mmap.mmap, base: int, pos: int, size: int, last: int
) -> None: ...
