"""The review workflow's vocabulary: review statuses, outcomes, the allowed changes and the
users' roles.

One ``StrEnum`` per concept; the stored value is the member's value (``in_review``) and what
people read is its ``label`` (``In review``), derived from the value, so that the pages, the API,
the queries and the reports say the same thing. Pure: no database here (the rules that use the
database are ``monitor.store.queries.reviews``).
"""

from __future__ import annotations

from enum import StrEnum


def in_words(value: str) -> str:
    """A stored name as people read it: ``in_review`` -> ``In review``."""
    return value.replace("_", " ").capitalize()


class ReviewStatus(StrEnum):
    """Where an incident is in the review workflow (``incidents.status``), in workflow order."""

    NEW = "new"
    IN_REVIEW = "in_review"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        """``New``, ``In review``, ``Closed``."""
        return in_words(self.value)


class Outcome(StrEnum):
    """What a reviewer concluded when closing an incident (``incidents.outcome``)."""

    NO_ACTION = "no_action"
    INFORMAL_CONVERSATION = "informal_conversation"
    FORMAL_PROCESS = "formal_process"
    FALSE_POSITIVE = "false_positive"
    """The incident was not real use of the platform."""

    @property
    def label(self) -> str:
        """``No action``, ``Informal conversation``, ``Formal process``, ``False positive``."""
        return in_words(self.value)


WAITING = (ReviewStatus.NEW, ReviewStatus.IN_REVIEW)
"""The statuses of incidents still waiting for a decision."""

TRANSITIONS: frozenset[tuple[ReviewStatus, ReviewStatus]] = frozenset(
    {
        (ReviewStatus.NEW, ReviewStatus.IN_REVIEW),
        (ReviewStatus.IN_REVIEW, ReviewStatus.CLOSED),
        (ReviewStatus.CLOSED, ReviewStatus.IN_REVIEW),  # reopening
    }
)
"""The (from, to) review changes that are allowed; nothing else is."""


def moves_from(status: str) -> tuple[ReviewStatus, ...]:
    """The statuses an incident in ``status`` may move to, in workflow order."""
    return tuple(to for to in ReviewStatus if (status, to) in TRANSITIONS)


def label_of(value: str) -> str:
    """The label of a stored status or outcome; any other key (``awaiting_review``) in words."""
    for vocabulary in (ReviewStatus, Outcome):
        try:
            return vocabulary(value).label
        except ValueError:
            continue
    return in_words(value)


class UserRole(StrEnum):
    """What a person may see and do; enforced on the server (``api.deps.require_role``)."""

    ADMIN = "admin"
    """The IT technician: settings, lists, devices, users, audit log."""
    REVIEWER = "reviewer"
    """Headteacher or deputy: incidents, outcomes, exports."""
    GOVERNOR = "governor"
    """Aggregate figures only: never a device, address, host name or label."""

    @property
    def label(self) -> str:
        """How the role reads: ``IT administrator``, ``Reviewer``, ``Governor``."""
        return "IT administrator" if self is UserRole.ADMIN else in_words(self.value)
