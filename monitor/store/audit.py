"""The append-only audit trail: who did or saw what, when, and from which address.

Every login (success and failure), logout, view of an incident or device, list read that
returns identities, export and change appends one ``AuditEventRecord`` through
``record_event``, in the caller's transaction: the action and its audit row are committed
together or not at all. Each row names the school it concerns (``site``), so that an admin
limited to one school reads only that school's events. Nothing here updates or deletes
audit rows (retention of the audit log is a separate, deliberate decision); the one change
to them is an erasure's (``monitor.store.queries.exports.erase_device``): the erased device's
MAC and addresses in them are replaced by its one-way digest, and the rows stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from monitor.store.models import AuditEventRecord

if TYPE_CHECKING:
    from monitor.store.queries.incident_page import ReviewEntry

USERNAME_MAX_LENGTH = 150
"""A name typed at a failed login is cut to this length before it is stored."""


class AuditAction(StrEnum):
    """The actions written to the audit log (``action`` column); add new ones here."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    VIEW_INCIDENT = "view_incident"
    VIEW_DEVICE = "view_device"
    REVIEW = "review"
    EXPORT = "export"
    VIEW_LIST = "view_list"
    """A page of a list of incidents or devices read through the API (identities in bulk)."""
    LABEL_DEVICE = "label_device"
    MERGE_DEVICES = "merge_devices"
    ERASE_DEVICE = "erase_device"
    CHANGE_LIST = "change_list"
    CHANGE_USER = "change_user"
    CREATE_API_TOKEN = "create_api_token"
    REVOKE_API_TOKEN = "revoke_api_token"


class Actor(Protocol):
    """Who acted: a signed-in user (``api.deps.CurrentUser``) or a name typed at a login."""

    @property
    def id(self) -> int | None: ...

    @property
    def username(self) -> str: ...


@dataclass(frozen=True, slots=True)
class NamedActor:
    """An actor known only by a name, e.g. the name typed at a failed login."""

    id: int | None
    username: str


def record_event(
    db: Session,
    *,
    user: Actor | None,
    action: AuditAction | str,
    target_type: str | None,
    target_id: str | int | None,
    detail: Mapping[str, object] | None,
    address: str | None,
    at: datetime | None = None,
    site: str | None = None,
) -> None:
    """Append one audit row to the caller's transaction (the caller commits).

    ``detail`` must be JSON-serialisable; keep it to what an auditor needs (a reason, an
    outcome, filter values), never a password. ``site`` is the school the event concerns (the
    incident's, the device's, the person's); None for the trust's own events, which only
    admins without a site read.
    """
    db.add(
        AuditEventRecord(
            at=at if at is not None else datetime.now(UTC),
            user_id=None if user is None else user.id,
            username=None if user is None else user.username[:USERNAME_MAX_LENGTH],
            action=str(action),
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            detail=dict(detail or {}),
            address=address,
            site=site,
        )
    )


def record_bulk_read(
    db: Session,
    *,
    user: Actor,
    action: AuditAction,
    target_type: str,
    filters: Mapping[str, object],
    detail: Mapping[str, object],
    address: str | None,
    site: str | None,
) -> None:
    """The one audit row of a read of many items at once (the queue's CSV export, a page of the
    incident queue or the device list, on a page or through the API): the query asked
    (``filters``), never a row per item."""
    record_event(
        db,
        user=user,
        action=action,
        target_type=target_type,
        target_id=None,
        detail={**detail, "filters": dict(filters)},
        address=address,
        site=site,
    )


def list_read_detail(
    via: str, page: int, per_page: int, returned: int, total: int
) -> dict[str, object]:
    """The audit detail of a list page read (``record_bulk_read``): where it was read (``api``
    or ``page``), the page asked for and how many items it held, never the items."""
    return {"via": via, "page": page, "per_page": per_page, "returned": returned, "total": total}


def record_review(
    db: Session,
    *,
    user: Actor,
    incident_id: int,
    change: ReviewEntry | None,
    address: str | None,
    site: str | None,
) -> None:
    """The audit row of a review change, from the change as stored (pages and API alike)."""
    record_event(
        db,
        user=user,
        action=AuditAction.REVIEW,
        target_type="incident",
        target_id=incident_id,
        detail={
            "from": change.from_status if change else None,
            "to": change.to_status if change else None,
            "outcome": change.outcome if change else None,
            "second_reviewer": change.second_reviewer if change else None,
        },
        address=address,
        site=site,
    )
