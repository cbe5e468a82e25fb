"""``/api/v1/incidents``: the review queue as JSON, one incident, and review changes.

The list takes the queue page's filters (status, platform, segment, role, device text, local
dates, site), its sort names and pagination. Reading one incident, every review change and every
page of the list that returns incidents (identities in bulk: one row naming the query, as the
CSV export does) write one audit row in the same transaction. A user limited to a site sees only that site: another
site's incident is a 404, exactly like a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query, Request

from api.auth import client_address
from api.deps import SessionDep, SettingsDep
from api.params import IncidentId, Page, sentence
from api.queue import IncidentQuery
from api.reads import INCIDENT, read_viewed
from api.routes import (
    BAD_BODY,
    CONFLICT,
    NOT_FOUND,
    PerPage,
    Reviewer,
    api_router,
    check_range,
    school_zone,
)
from api.schemas import (
    IncidentDetailOut,
    IncidentListOut,
    ReviewIn,
)
from monitor.config.settings import Settings
from monitor.store.audit import AuditAction, list_read_detail, record_bulk_read, record_review
from monitor.store.queries import (
    list_incidents,
    review_incident,
)

router = api_router("incidents")

Texts = Query(max_length=50, description="Any of these (repeat the parameter for several).")


@router.get("", summary="List incidents (the review queue)")
def incidents_list(
    request: Request,
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
    query: Annotated[IncidentQuery, Query()],
    page: Page = 1,
    per_page: PerPage = 50,
) -> IncidentListOut:
    """Incidents matching every filter given, one page at a time (newest first by default).
    Limited to the user's site when the user has one. A page with incidents is audited
    (``view_list``, with the query). Each says its confidence level and why."""
    check_range(query.date_from, query.date_to)
    filters = query.filters(school_zone(settings), settings.incidents.floor())
    found = list_incidents(
        db, filters, sort=query.sort, page=page, per_page=per_page, site_scope=user.site
    )
    if found.items:
        record_bulk_read(
            db, user=user, action=AuditAction.VIEW_LIST, target_type="incidents",
            filters=query.audit_filters(filters),
            detail=list_read_detail("api", page, per_page, len(found.items), found.total),
            address=client_address(request), site=user.site or query.site,
        )  # fmt: skip
        db.commit()
    return IncidentListOut.model_validate(found, context=explanation_context(settings))


@router.get("/{incident_id}", summary="Get one incident", responses=NOT_FOUND)
def incident_get(
    incident_id: IncidentId,
    request: Request,
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
) -> IncidentDetailOut:
    """An incident with its evidence timeline, review history, the device's earlier incidents
    and the policy point it relates to. Audited (``view_incident``)."""
    detail = read_viewed(request, db, user, INCIDENT, incident_id, {"via": "api"})
    return IncidentDetailOut.model_validate(detail, context=explanation_context(settings))


@router.post(
    "/{incident_id}/review",
    summary="Change an incident's review state",
    responses={**BAD_BODY, **NOT_FOUND, **CONFLICT},
)
def incident_review(
    incident_id: IncidentId,
    body: ReviewIn,
    request: Request,
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
) -> IncidentDetailOut:
    """Move the incident ``new`` -> ``in_review`` -> ``closed`` (closing needs an outcome and a
    note), or reopen a closed one (``in_review``). Kept in the history; audited (``review``).
    409 when the change is not allowed from the incident's current state, and when closing an
    incident that is still growing without ``confirm_growing``. Once in review or closed, an
    incident no longer grows: later activity becomes a new incident linked to it."""
    try:
        detail = review_incident(
            db,
            incident_id,
            user=user,
            to_status=body.to_status,
            outcome=body.outcome,
            note=body.note,
            second_reviewer=body.second_reviewer,
            confirm_growing=body.confirm_growing,
            now=datetime.now(UTC),
        )
    except ValueError as e:
        db.rollback()
        raise HTTPException(409, sentence(str(e))) from None
    record_review(
        db,
        user=user,
        incident_id=incident_id,
        change=detail.last_change,
        address=client_address(request),
        site=detail.incident.site,
    )
    db.commit()
    return IncidentDetailOut.model_validate(detail, context=explanation_context(settings))


def explanation_context(settings: Settings) -> dict[str, object]:
    """What ``IncidentOut`` needs to explain each incident's confidence."""
    return {"floor": settings.incidents.floor(), "tz": school_zone(settings)}
