"""How sure an incident is, and why, in plain English (``monitor.confidence``)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.confidence import (
    DEFAULT_FLOOR,
    Floor,
    Level,
    basis_from_evidence,
    explain,
    level_of,
    score,
)
from monitor.values import Attribution, Basis

LONDON = ZoneInfo("Europe/London")
MORNING = datetime(2026, 11, 24, 10, 12, tzinfo=LONDON)
LATER = datetime(2026, 11, 24, 10, 31, tzinfo=LONDON)


def explained(basis: Basis, minutes: float, floor: Floor = DEFAULT_FLOOR) -> tuple[Level, str, str]:
    result = explain(
        basis,
        active_minutes=minutes,
        stored_score=score(basis, minutes),
        floor=floor,
        platform="Instagram",
        device="this laptop",
        start=MORNING,
        end=LATER,
    )
    return result.level, result.seen, result.limits


@pytest.mark.parametrize(
    ("basis", "minutes", "expected"),
    [
        pytest.param(Basis(lookups=1), 1, 0.5, id="one lookup"),
        pytest.param(Basis(connections=1), 1, 0.65, id="one connection"),
        pytest.param(Basis(connections=14), 19, 0.95, id="sustained connections"),
        pytest.param(Basis(lookups=3), 5, 0.8, id="sustained lookups"),
        pytest.param(
            Basis(connections=1, attribution=Attribution.ADDRESS), 1, 0.45, id="only by address"
        ),
        pytest.param(Basis(lookups=1, attribution=Attribution.CNAME), 1, 0.4, id="via a CNAME"),
    ],
)
def test_the_score(basis: Basis, minutes: float, expected: float) -> None:
    assert score(basis, minutes) == expected


def test_one_connection_for_a_moment_is_low_however_it_scores() -> None:
    basis = Basis(connections=1)
    assert score(basis, 1) == 0.65
    assert level_of(basis, 1, 0.65, DEFAULT_FLOOR) is Level.LOW


def test_lookups_only_for_a_moment_are_low() -> None:
    assert level_of(Basis(lookups=3), 1, score(Basis(lookups=3), 1), DEFAULT_FLOOR) is Level.LOW


def test_lookups_only_are_never_high_however_long() -> None:
    basis = Basis(lookups=3)
    assert level_of(basis, 20, score(basis, 20), DEFAULT_FLOOR) is Level.MEDIUM


def test_a_floor_of_zero_keeps_nothing_back() -> None:
    basis = Basis(connections=1)
    assert level_of(basis, 1, score(basis, 1), Floor(0, 0)) is Level.MEDIUM


def test_sustained_connections_say_what_was_seen_and_what_it_does_not_show() -> None:
    level, seen, limits = explained(Basis(connections=14), 19)
    assert level is Level.HIGH
    assert seen == (
        "14 connections to Instagram's own servers between 10:12 and 10:31 from this laptop."
    )
    assert (
        "Apps on a phone can look names up in the background; a connection to Instagram's "
        "servers is stronger evidence than a lookup." in limits
    )
    assert "not who was using it" in limits


def test_lookups_only_say_that_no_connection_was_seen() -> None:
    _, seen, limits = explained(Basis(lookups=2), 1)
    assert seen.startswith("2 lookups of Instagram's names, and no connection to its servers,")
    assert "a lookup alone does not show that anyone opened Instagram" in limits


def test_an_address_only_incident_says_no_name_was_seen() -> None:
    _, _, limits = explained(Basis(connections=3, attribution=Attribution.ADDRESS), 5)
    assert "No Instagram name was seen" in limits


def test_the_reasons_name_the_floor_when_it_holds_an_incident_back() -> None:
    basis = Basis(connections=1)
    result = explain(
        basis,
        active_minutes=1,
        stored_score=0.65,
        floor=DEFAULT_FLOOR,
        platform="TikTok",
        device="a tablet",
        start=MORNING,
        end=MORNING,
    )
    assert result.held_back
    assert result.seen == "1 connection to TikTok's own servers at 10:12 from a tablet."
    assert result.reasons[-1].startswith("Below the floor (fewer than 2 connections and under 2")


def test_a_negative_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Floor(-1, 2)


def test_the_basis_of_an_incident_stored_before_is_estimated_from_its_evidence() -> None:
    evidence = [
        {"ts": 1.0, "proto": "dns", "name": "i.instagram.com", "via": "name"},
        {"ts": 2.0, "proto": "tls", "name": "i.instagram.com", "via": "name"},
        {"ts": 3.0, "proto": "quic", "name": "", "via": "address"},
        {"ts": 4.0, "proto": "nonsense", "name": "", "via": "name"},
    ]
    assert basis_from_evidence(evidence) == Basis(connections=2, lookups=1)
    assert basis_from_evidence([]) == Basis(lookups=1)
