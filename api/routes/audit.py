"""``/api/v1/audit``: the audit log for admins, newest first, filtered and paged.

Reading the log is not itself audited: the log would grow with every look at it. An admin
limited to one school reads that school's events only (``api.access.audit_scope``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query

from api.access import audit_scope
from api.deps import SessionDep
from api.params import Page
from api.routes import Admin, PerPage, api_router, check_instant
from api.schemas import AuditListOut
from monitor.store.queries.audit import list_audit_events

router = api_router("audit")

Exact = Annotated[str | None, Query(max_length=200, description="Exact value to match.")]


@router.get("", summary="List audit events (admin)")
def audit_list(
    admin: Admin,
    db: SessionDep,
    action: Annotated[
        str | None, Query(max_length=50, description="An action, e.g. `view_incident`.")
    ] = None,
    username: Exact = None,
    target_type: Annotated[
        str | None, Query(max_length=50, description="`incident`, `device`...")
    ] = None,
    target_id: Exact = None,
    since: Annotated[
        datetime | None, Query(description="From this instant (included; naive is UTC).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Before this instant.")] = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> AuditListOut:
    """Who did or saw what, when and from which address: logins, views, reviews, labels,
    exports and other changes, newest first; of the admin's own school when limited to one."""
    found = list_audit_events(
        db,
        action=action,
        username=username,
        target_type=target_type,
        target_id=target_id,
        since=check_instant("since", since),
        until=check_instant("until", until),
        page=page,
        per_page=per_page,
        site_scope=audit_scope(admin),
    )
    return AuditListOut.model_validate(found)
