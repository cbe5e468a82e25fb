"""The review workflow: ``new`` -> ``in_review`` -> ``closed``, and reopening, with history.

Every change appends an ``incident_reviews`` row in the caller's transaction; the caller
commits and writes the audit event (``IncidentDetail.last_change`` says what changed). The
rules, checked here so that the pages and the API cannot differ:

- only the transitions in ``monitor.store.workflow.TRANSITIONS`` are allowed (anything else
  is ``ValueError``);
- closing needs an ``Outcome`` and a note; other changes take no outcome;
- reopening a closed incident (back to ``in_review``) clears its outcome, which stays in the
  history;
- closing an incident that is still growing (``state`` open: the activity has not ended) needs
  ``confirm_growing``: the incident stays as it is when closed, and the activity's later hits
  become a new incident that continues it (the writer never grows a decided incident);
- only admins and reviewers review (``PermissionError`` otherwise), and a user limited to one
  site cannot see another site's incident (``LookupError``, as for a missing one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.store.audit import Actor
from monitor.store.models import IncidentRecord, IncidentReviewRecord
from monitor.store.queries.incident_page import IncidentDetail, build_detail
from monitor.store.queries.scope import site_condition
from monitor.store.workflow import TRANSITIONS, Outcome, ReviewStatus, UserRole, moves_from

REVIEW_ROLES = frozenset({UserRole.ADMIN, UserRole.REVIEWER})
"""User roles that may change an incident's review state."""
STILL_GROWING = (
    "this incident is still growing: the device's activity on this platform has not ended. "
    "Closing it now keeps it as it is; later activity becomes a new incident linked to it. "
    "Confirm that you want to close it now"
)
"""Why closing an incident whose activity goes on needs a confirmation."""


class ReviewingUser(Actor, Protocol):
    """Who changes a review state: an audit ``Actor`` (id, username) with a role and a site
    (the app passes its signed-in ``api.deps.CurrentUser``)."""

    @property
    def role(self) -> str:
        """``admin``, ``reviewer`` or ``governor``."""
        ...

    @property
    def site(self) -> str | None:
        """The one site the user is limited to, or None for every site."""
        ...


def review_incident(
    db: Session,
    incident_id: int,
    *,
    user: ReviewingUser,
    to_status: str,
    outcome: str | None = None,
    note: str = "",
    second_reviewer: str | None = None,
    confirm_growing: bool = False,
    now: datetime,
) -> IncidentDetail:
    """Move an incident to ``to_status`` and record the change; see the module docstring."""
    if user.role not in REVIEW_ROLES:
        raise PermissionError(f"a {user.role} cannot review incidents")
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now.isoformat()}: pass a timezone-aware value")
    record = db.scalars(
        select(IncidentRecord)
        .where(IncidentRecord.id == incident_id, site_condition(IncidentRecord.site, user.site))
        .with_for_update()
    ).one_or_none()
    if record is None:
        raise NotFound(f"no incident {incident_id}")
    note = note.strip()
    second = (second_reviewer or "").strip() or None
    _check(record.status, to_status, outcome, note, second, user)
    if to_status == ReviewStatus.CLOSED and record.state == "open" and not confirm_growing:
        raise ValueError(STILL_GROWING)
    db.add(
        IncidentReviewRecord(
            incident_id=record.id,
            at=now,
            user_id=user.id,
            username=user.username,
            from_status=record.status,
            to_status=ReviewStatus(to_status).value,
            outcome=None if outcome is None else Outcome(outcome).value,
            note=note,
            second_reviewer=second,
        )
    )
    record.status = ReviewStatus(to_status).value
    record.outcome = None if outcome is None else Outcome(outcome).value
    db.flush()
    return build_detail(db, record, user.site)


def _check(
    from_status: str,
    to_status: str,
    outcome: str | None,
    note: str,
    second_reviewer: str | None,
    user: ReviewingUser,
) -> None:
    if to_status not in set(ReviewStatus):
        raise ValueError(f"status {to_status!r}: allowed {', '.join(ReviewStatus)}")
    if (from_status, to_status) not in TRANSITIONS:
        allowed = sorted(moves_from(from_status))
        raise ValueError(
            f"an incident that is {from_status.replace('_', ' ')} cannot move to "
            f"{to_status.replace('_', ' ')}; it can move to {' or '.join(allowed) or 'nothing'}"
        )
    if to_status == ReviewStatus.CLOSED:
        if outcome not in set(Outcome):
            raise ValueError(
                f"closing needs an outcome: one of {', '.join(Outcome)} (got {outcome!r})"
            )
        if not note:
            raise ValueError("closing needs a note saying what was decided and why")
    elif outcome is not None:
        raise ValueError(
            f"an outcome is recorded only when closing, not when moving to {to_status}"
        )
    if second_reviewer is not None and second_reviewer == user.username:
        raise ValueError("the second reviewer must be someone else")
