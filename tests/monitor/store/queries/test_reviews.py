"""The review workflow: legal and illegal transitions, outcome and note rules, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import IncidentRecord, IncidentReviewRecord
from monitor.store.queries.incident_page import get_incident
from monitor.store.queries.reviews import review_incident
from monitor.store.workflow import Outcome
from tests.monitor.store.queries.factories import OTHER_SITE, SITE, T0, add_incident


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in user as the app passes one (``ReviewingUser``)."""

    id: int
    username: str
    role: str
    site: str | None = None


HEAD = Person(id=1, username="head", role="reviewer")
IT = Person(id=2, username="it", role="admin")
NOW = T0 + timedelta(days=1)

# fmt: off
TRANSITIONS = [
    # from         to            outcome            note       allowed
    ("new",       "in_review",  None,              "",        True),
    ("in_review", "closed",     "no_action",       "checked", True),
    ("closed",    "in_review",  None,              "",        True),
    ("new",       "closed",     "no_action",       "checked", False),
    ("new",       "new",        None,              "",        False),
    ("in_review", "new",        None,              "",        False),
    ("in_review", "in_review",  None,              "",        False),
    ("closed",    "new",        None,              "",        False),
    ("closed",    "closed",     "no_action",       "checked", False),
]
# fmt: on


@pytest.mark.parametrize(("from_status", "to_status", "outcome", "note", "allowed"), TRANSITIONS)
def test_transitions(
    db: Session, from_status: str, to_status: str, outcome: str | None, note: str, allowed: bool
) -> None:
    incident = add_incident(db, status=from_status, outcome="no_action" if from_status == "closed" else None)  # fmt: skip
    change = {"user": HEAD, "to_status": to_status, "outcome": outcome, "note": note, "now": NOW}
    if not allowed:
        with pytest.raises(ValueError, match="cannot move to"):
            review_incident(db, incident.id, **change)  # type: ignore[arg-type]
        assert db.scalars(select(IncidentReviewRecord)).all() == []
        return
    detail = review_incident(db, incident.id, **change)  # type: ignore[arg-type]
    assert (detail.incident.status, detail.incident.outcome) == (to_status, outcome)
    assert detail.last_change is not None
    assert (detail.last_change.from_status, detail.last_change.to_status) == (
        from_status,
        to_status,
    )
    assert (detail.last_change.at, detail.last_change.username) == (NOW, "head")


def test_a_whole_review_is_kept_as_history(db: Session) -> None:
    incident = add_incident(db)
    review_incident(db, incident.id, user=HEAD, to_status="in_review", now=NOW)
    review_incident(db, incident.id, user=HEAD, to_status="closed", outcome="informal_conversation",
                    note="  Spoke to Ms Smith.  ", second_reviewer="deputy", now=NOW + timedelta(hours=1))  # fmt: skip
    detail = review_incident(db, incident.id, user=IT, to_status="in_review", note="new evidence", now=NOW + timedelta(days=1))  # fmt: skip
    assert [
        (h.username, h.from_status, h.to_status, h.outcome, h.note, h.second_reviewer)
        for h in detail.history
    ] == [  # fmt: skip
        ("head", "new", "in_review", None, "", None),
        ("head", "in_review", "closed", "informal_conversation", "Spoke to Ms Smith.", "deputy"),
        ("it", "closed", "in_review", None, "new evidence", None),
    ]
    # reopening clears the decision; the history keeps it
    assert (detail.incident.status, detail.incident.outcome) == ("in_review", None)
    stored = db.get(IncidentRecord, incident.id)
    assert stored is not None
    assert (stored.status, stored.outcome) == ("in_review", None)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_closes(db: Session, outcome: str) -> None:
    incident = add_incident(db, status="in_review")
    detail = review_incident(db, incident.id, user=HEAD, to_status="closed", outcome=outcome, note="why", now=NOW)  # fmt: skip
    assert detail.incident.outcome == outcome


@pytest.mark.parametrize(
    ("outcome", "note", "message"),
    [
        (None, "why", "closing needs an outcome"),
        ("confirmed", "why", "closing needs an outcome: one of no_action, informal_conversation"),
        ("no_action", "", "closing needs a note"),
        ("no_action", "   \n", "closing needs a note"),
    ],
)
def test_closing_needs_an_outcome_and_a_note(db: Session, outcome: str | None, note: str, message: str) -> None:  # fmt: skip
    incident = add_incident(db, status="in_review")
    with pytest.raises(ValueError, match=message):
        review_incident(db, incident.id, user=HEAD, to_status="closed", outcome=outcome, note=note, now=NOW)  # fmt: skip
    assert db.scalars(select(IncidentReviewRecord)).all() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"to_status": "in_review", "outcome": "no_action"},
            "an outcome is recorded only when closing",
        ),  # fmt: skip
        ({"to_status": "dismissed"}, "status 'dismissed': allowed new, in_review, closed"),
        (
            {"to_status": "in_review", "second_reviewer": "head"},
            "second reviewer must be someone else",
        ),  # fmt: skip
    ],
)
def test_malformed_changes_are_refused(db: Session, kwargs: dict[str, Any], message: str) -> None:
    incident = add_incident(db)
    with pytest.raises(ValueError, match=message):
        review_incident(db, incident.id, user=HEAD, now=NOW, **kwargs)


def test_a_governor_cannot_review(db: Session) -> None:
    incident = add_incident(db)
    governor = Person(id=3, username="gov", role="governor")
    with pytest.raises(PermissionError, match="governor cannot review"):
        review_incident(db, incident.id, user=governor, to_status="in_review", now=NOW)


def test_a_reviewer_of_one_site_cannot_review_another(db: Session) -> None:
    incident = add_incident(db, site=OTHER_SITE)
    limited = Person(id=4, username="deputy", role="reviewer", site=SITE)
    with pytest.raises(LookupError, match="no incident"):
        review_incident(db, incident.id, user=limited, to_status="in_review", now=NOW)
    annex = Person(id=5, username="annex-head", role="reviewer", site=OTHER_SITE)
    detail = review_incident(db, incident.id, user=annex, to_status="in_review", now=NOW)
    assert detail.incident.status == "in_review"


def test_naive_time_is_refused(db: Session) -> None:
    incident = add_incident(db)
    with pytest.raises(ValueError, match="naive"):
        review_incident(db, incident.id, user=HEAD, to_status="in_review", now=NOW.replace(tzinfo=None))  # fmt: skip


def test_closing_an_incident_that_is_still_growing_needs_a_confirmation(db: Session) -> None:
    incident = add_incident(db, status="in_review")
    incident.state = "open"
    close = {"user": HEAD, "to_status": "closed", "outcome": "no_action", "note": "x", "now": NOW}
    with pytest.raises(ValueError, match="still growing.*later activity becomes a new incident"):
        review_incident(db, incident.id, **close)  # type: ignore[arg-type]
    assert db.scalars(select(IncidentReviewRecord)).all() == []
    detail = review_incident(db, incident.id, confirm_growing=True, **close)  # type: ignore[arg-type]
    assert (detail.incident.status, detail.incident.state) == ("closed", "open")


def test_an_ended_incident_closes_without_a_confirmation(db: Session) -> None:
    incident = add_incident(db, status="in_review")
    detail = review_incident(
        db, incident.id, user=HEAD, to_status="closed", outcome="no_action", note="x", now=NOW
    )
    assert detail.incident.status == "closed"


def test_continuations_are_linked_both_ways_on_the_detail(db: Session) -> None:
    decided = add_incident(db, status="closed", outcome="informal_conversation", key="k")
    later = add_incident(db, start=T0 + timedelta(minutes=30), key="k.1")
    later.continues_id, later.source_key = decided.id, "k"
    db.flush()
    assert [item.id for item in get_incident(db, decided.id, None).continued_by] == [later.id]
    continues = get_incident(db, later.id, None).continues
    assert continues is not None and continues.id == decided.id
    assert get_incident(db, decided.id, None).continues is None
