"""The queue's confidence filter in SQL says exactly what ``monitor.confidence.level_of`` says."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from monitor.confidence import DEFAULT_FLOOR, LEVELS, Floor, Level, level_of
from monitor.store.queries import IncidentFilters, list_incidents
from monitor.values import Basis
from tests.monitor.store.queries.factories import add_incident

SCORES = (0.3, 0.55, 0.6, 0.65, 0.79, 0.8, 0.95)
CONNECTIONS = (0, 1, 2, 5)
MINUTES = (1.0, 1.5, 2.0, 3.0, 20.0)


@pytest.mark.parametrize("floor", [DEFAULT_FLOOR, Floor(1, 0), Floor(0, 0), Floor(5, 10)], ids=str)
def test_the_level_filter_agrees_with_level_of_on_every_stored_combination(
    db: Session, floor: Floor
) -> None:
    expected: dict[Level, set[int]] = {level: set() for level in Level}
    for score, connections, minutes in itertools.product(SCORES, CONNECTIONS, MINUTES):
        record = add_incident(
            db, confidence=score, connections=connections, lookups=1, minutes=minutes
        )
        basis = Basis(connections=connections, lookups=1)
        expected[level_of(basis, minutes, score, floor)].add(record.id)
    for level in LEVELS:
        found = list_incidents(
            db, IncidentFilters(levels=(level,), floor=floor), per_page=500, site_scope=None
        )
        assert {item.id for item in found.items} == expected[level], level
    default = list_incidents(
        db, IncidentFilters(levels=("high", "medium"), floor=floor), per_page=500, site_scope=None
    )
    assert default.low_hidden == len(expected[Level.LOW])
    assert default.total == len(expected[Level.HIGH]) + len(expected[Level.MEDIUM])


def test_an_unknown_level_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="confidence 'certain': allowed high, medium, low"):
        IncidentFilters(levels=("certain",))
