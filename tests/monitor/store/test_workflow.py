"""The review workflow's vocabulary: stored values, the labels people read, allowed moves."""

from __future__ import annotations

import pytest

from monitor.store.workflow import (
    TRANSITIONS,
    WAITING,
    Outcome,
    ReviewStatus,
    label_of,
    moves_from,
)


def test_labels_are_the_stored_values_in_words() -> None:
    assert [status.label for status in ReviewStatus] == ["New", "In review", "Closed"]
    assert [outcome.label for outcome in Outcome] == [
        "No action", "Informal conversation", "Formal process", "False positive",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stored", "label"),
    [("in_review", "In review"), ("false_positive", "False positive"),
     ("awaiting_review", "Awaiting review"), ("not reviewed yet", "Not reviewed yet")],
)  # fmt: skip
def test_a_stored_value_reads_as_its_label_and_any_other_key_in_words(
    stored: str, label: str
) -> None:
    assert label_of(stored) == label


@pytest.mark.parametrize(
    ("status", "moves"),
    [("new", ("in_review",)), ("in_review", ("closed",)), ("closed", ("in_review",)),
     ("archived", ())],
)  # fmt: skip
def test_an_incident_may_move_only_along_the_transition_table(
    status: str, moves: tuple[str, ...]
) -> None:
    assert moves_from(status) == moves
    assert all((status, to) in TRANSITIONS for to in moves)


def test_incidents_wait_for_a_decision_until_closed() -> None:
    assert set(WAITING) == set(ReviewStatus) - {ReviewStatus.CLOSED}
