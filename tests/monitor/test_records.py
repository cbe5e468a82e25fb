"""The engine's item types: plain frozen values that the store imports, never the reverse."""

from __future__ import annotations

import dataclasses
import typing
from datetime import date

import pytest

from monitor.records import (
    CaptureRecorded,
    CounterIncrement,
    DeviceSeen,
    EmbeddedCountRow,
    EngineItem,
    StoredObservation,
)
from monitor.values import Incident

ITEMS = [
    CounterIncrement("school", date(2026, 3, 10), "observations.dns", 3),
    EmbeddedCountRow("school", date(2026, 3, 10), "10.0.0.5", None, "facebook", 2),
    DeviceSeen("school", "aa:bb:cc:00:00:01", "10.0.0.5", "laptop-7", 1.0),
    CaptureRecorded("school", "0" * 64, "day.pcap", 1_000, 12),
]


def test_a_writer_item_is_an_incident_or_one_of_the_record_types() -> None:
    assert set(typing.get_args(EngineItem)) == {
        Incident,
        StoredObservation,
        CounterIncrement,
        EmbeddedCountRow,
        DeviceSeen,
        CaptureRecorded,
    }


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: type(item).__name__)
def test_an_emitted_item_cannot_change_on_its_way_to_the_store(item: object) -> None:
    field = dataclasses.fields(item)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(item, field, "other")
