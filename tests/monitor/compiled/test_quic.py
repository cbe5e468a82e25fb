"""The compiled QUIC Initial tracker (monitor/compiled/quic.pyx) answers every datagram its
Python original read over the golden captures as it did, with the same counters.

(The tracker's own tests, run on both, are in tests/monitor/extract/test_quic.py.)"""

from __future__ import annotations

import pytest

from monitor.extract.compiled import ORIGINALS
from tests.compiled import compiled_or_skip
from tests.compiled_agreement import GOLDEN, recorded, replay, tracker_state

TWIN = "monitor.compiled.quic"


def test_the_tracker_is_registered_with_its_python_original() -> None:
    assert ORIGINALS[f"{TWIN}.QuicInitialTracker"] == "monitor.extract.quic.QuicInitialTracker"


@pytest.mark.slow
def test_the_twin_reads_every_datagram_of_the_golden_captures_as_python_did() -> None:
    twin = compiled_or_skip(TWIN)
    steps = recorded().tracker_steps
    found = [step for file_steps in steps for step in file_steps if step.answer[1] is not None]
    assert len(found) > 10, "the golden captures should hold QUIC ClientHellos"
    for path, file_steps in zip(GOLDEN, steps, strict=True):
        try:
            replay(file_steps, twin.QuicInitialTracker(), tracker_state)
        except AssertionError as e:
            raise AssertionError(f"{path.name}: {e}") from e
