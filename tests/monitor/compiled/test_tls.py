"""The compiled ClientHello readers (monitor/compiled/tls.pyx) answer every call their Python
originals answered over the golden captures, errors included.

(Their parser tests, run on both, are in tests/monitor/extract/test_tls.py.)"""

from __future__ import annotations

import pytest

from monitor.extract.compiled import ORIGINALS
from tests.compiled import compiled_or_skip
from tests.compiled_agreement import HELLO_READERS, answer, recorded

TWIN = "monitor.compiled.tls"


def test_every_reader_is_registered_with_its_python_original() -> None:
    assert {f"{TWIN}.{name}": f"monitor.extract.tls.{name}" for name in HELLO_READERS} == {
        twin: original for twin, original in ORIGINALS.items() if twin.startswith(TWIN)
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", HELLO_READERS)
def test_the_twin_answers_every_call_of_the_golden_captures_as_python_did(name: str) -> None:
    twin = getattr(compiled_or_skip(TWIN), name)
    calls = recorded().hello_calls[name]
    assert calls, "the golden captures should call it"
    for args, expected in calls:
        assert answer(twin, *args) == expected, args
