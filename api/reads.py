"""Reading one incident or device for someone, with the audit row of that view.

Every view of an incident or a device writes one audit row in the same transaction as the
read, then commits (pages and API alike): ``read_viewed(request, db, user, INCIDENT, 42)``. A
missing item, or another site's, raises ``NotFound`` from the query, which the app answers with
404 ("No incident 42.") before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from api.auth import client_address
from api.deps import CurrentUser
from monitor.store.audit import AuditAction, record_event
from monitor.store.queries import DeviceDetail, IncidentDetail, get_device, get_incident

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Viewed(Generic[T]):
    """A kind of item whose views are audited: how to read one and how its view is recorded."""

    action: AuditAction
    target_type: str
    read: Callable[[Session, int, str | None], T]
    """``(db, id, site_scope)`` -> the item; ``NotFound`` when missing or out of scope."""
    site_of: Callable[[T], str | None]
    """The school the item belongs to (the audit row's ``site``)."""


INCIDENT: Viewed[IncidentDetail] = Viewed(
    AuditAction.VIEW_INCIDENT, "incident", get_incident, lambda found: found.incident.site
)
DEVICE: Viewed[DeviceDetail] = Viewed(
    AuditAction.VIEW_DEVICE, "device", get_device, lambda found: found.device.site
)


def read_viewed(
    request: Request,
    db: Session,
    user: CurrentUser,
    kind: Viewed[T],
    item_id: int,
    detail: Mapping[str, object] | Callable[[T], Mapping[str, object]] | None = None,
) -> T:
    """Item ``item_id`` as ``user`` may see it (limited to ``user.site``), its view audited
    (``detail`` in the row, or made from the item) and committed."""
    found = kind.read(db, item_id, user.site)
    if callable(detail):
        detail = detail(found)
    record_event(
        db,
        user=user,
        action=kind.action,
        target_type=kind.target_type,
        target_id=item_id,
        detail=detail,
        address=client_address(request),
        site=kind.site_of(found),
    )
    db.commit()
    return found
