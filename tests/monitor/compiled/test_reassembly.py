"""The compiled TCP stream reassembler (monitor/extract/reassembly.py compiled as it is, typed by
monitor/compiled/reassembly.pxd: Cython's pure-Python mode) takes every step its
Python original took over the golden captures to the same bytes and the same state.

(The reassembler's own tests, run on both, are in tests/monitor/extract/test_reassembly.py.)"""

from __future__ import annotations

import pytest

from monitor.extract.compiled import ORIGINALS
from tests.compiled import compiled_or_skip
from tests.compiled_agreement import GOLDEN, reassembler_state, recorded, replay

TWIN = "monitor.compiled.reassembly"


def test_the_reassembler_is_registered_with_its_python_original() -> None:
    assert ORIGINALS[f"{TWIN}.StreamReassembler"] == "monitor.extract.reassembly.StreamReassembler"


@pytest.mark.slow
def test_the_twin_takes_every_step_of_the_golden_captures_as_python_did() -> None:
    twin = compiled_or_skip(TWIN)
    steps = recorded().reassembler_steps
    assert sum(map(len, steps)) > 1000, "the golden captures should feed it"
    for path, file_steps in zip(GOLDEN, steps, strict=True):
        try:
            replay(file_steps, twin.StreamReassembler(), reassembler_state)
        except AssertionError as e:
            raise AssertionError(f"{path.name}: {e}") from e
