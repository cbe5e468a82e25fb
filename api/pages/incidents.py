"""The review queue, one incident's page, the review form and the queue's CSV export.

The queue's filters are a GET form, so a filtered queue is a URL that can be shared or
bookmarked; the CSV link carries the same query. Every view of an incident writes one
``view_incident`` audit row, every review change one ``review`` row and every export one
``export`` row, each in the transaction of what it records. A reviewer limited to one site
gets 404 for another site's incident, exactly as for one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import QueryParams

from api.auth import client_address
from api.deps import CurrentUser, SessionDep, SettingsDep, require_role, session_factory, utcnow
from api.pages import NavLink, path_for, redirect_to, render_page
from api.params import MAX_PAGE, IncidentId, Text, sentence
from api.queue import IncidentQuery, page_message
from api.reads import INCIDENT, read_viewed
from monitor.confidence import Explanation, Floor
from monitor.config.settings import Settings
from monitor.store.audit import AuditAction, list_read_detail, record_bulk_read, record_review
from monitor.store.queries import (
    IncidentDetail,
    IncidentFilters,
    IncidentPage,
    incident_sites,
    incidents_csv,
    list_incidents,
    review_incident,
)
from monitor.store.queries.incidents import DEFAULT_SORT, sort_label
from monitor.store.workflow import Outcome, ReviewStatus, UserRole, moves_from

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Incidents",
        "incident_queue",
        frozenset({UserRole.REVIEWER, UserRole.ADMIN}),
        "The review queue: incidents waiting for a decision, with their evidence.",
    ),
)

Reviewer = Annotated[CurrentUser, Depends(require_role(UserRole.REVIEWER, UserRole.ADMIN))]

PER_PAGE = 50
SORT_CHOICES = ("-start", "start", "status", "platform", "device", "-confidence")
"""The orders the queue's form offers (the API takes every key, each way)."""
SORT_LABELS = {name: sort_label(name) for name in SORT_CHOICES}
CONFIDENCE_LABELS = {
    "": "High and medium",
    "all": "All, low too",
    "high": "High only",
    "medium": "Medium only",
    "low": "Low only",
}
"""The queue's confidence choices: by default low-confidence incidents are left out."""
FILTER_KEYS = (
    "status", "site", "platform", "segment", "date_from", "date_to", "device", "confidence", "sort"
)  # fmt: skip
"""The query parameters the queue and its CSV export share."""


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """The queue's filters as the visitor typed them (echoed back into the form)."""

    statuses: tuple[str, ...] = ()
    site: str = ""
    platform: str = ""
    segment: str = ""
    date_from: str = ""
    date_to: str = ""
    device: str = ""
    confidence: str = ""
    """A key of ``CONFIDENCE_LABELS``: empty for high and medium."""
    sort: str = DEFAULT_SORT
    page: int = 1
    bad_page: str = ""
    """The page as typed when it is not a page number (``build_filters`` reports it)."""

    def audit_detail(self) -> dict[str, object]:
        """The filters for an audit row: statuses as a list, other keys as typed."""
        detail: dict[str, object] = {"statuses": list(self.statuses)} if self.statuses else {}
        return detail | {key: value for key, value in self.filter_query() if key != "status"}

    def filter_query(self) -> list[tuple[str, str]]:
        """The non-empty filters and the sort, as query pairs (no page)."""
        pairs = [("status", status) for status in self.statuses]
        for key in ("site", "platform", "segment", "date_from", "date_to", "device", "confidence"):
            value = getattr(self, key)
            if value:
                pairs.append((key, value))
        if self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        return pairs


@dataclass(frozen=True, slots=True)
class QueuePage:
    """The review queue page."""

    query: QueueQuery
    result: IncidentPage | None
    """None when the filters could not be used (``error`` says why)."""
    error: str | None
    segments: tuple[str, ...]
    """The configured segment names, for the segment filter."""
    sites: tuple[str, ...]
    """The sites with incidents, for the site filter and column: empty for a user limited to
    one site, and for a single school (a site column would say the same on every row)."""
    export_href: str
    """The CSV export of the same filters."""
    previous_href: str | None
    next_href: str | None
    low_href: str
    """The same filters with low-confidence incidents too."""
    floor: Floor
    tz: ZoneInfo

    statuses = tuple(ReviewStatus)
    confidence_labels = CONFIDENCE_LABELS
    sort_labels = SORT_LABELS


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident's page, with its review form."""

    detail: IncidentDetail
    actions: tuple[ReviewStatus, ...]
    """The review states the incident can move to now (``monitor.store.workflow``)."""
    explanation: Explanation
    error: str | None = None
    """Why the last review change was refused (the form is shown again)."""
    form: ReviewForm | None = None
    """What was entered, when the change was refused."""

    outcomes = tuple(Outcome)


class ReviewForm(BaseModel):
    """The review form: the state to move to, and for closing an outcome and a note."""

    to_status: Text = Field(max_length=20)
    outcome: Text = Field(default="", max_length=40)
    note: Text = Field(default="", max_length=4000)
    second_reviewer: Text = Field(default="", max_length=150)
    confirm_growing: bool = False
    """Ticked to close an incident that is still growing."""


def parse_query(params: QueryParams) -> QueueQuery:
    """The queue's filters from the URL; unknown keys are ignored, bad values are kept as
    typed (``build_filters`` reports them)."""
    typed = params.get("page", "").strip()
    page = _page_number(typed)
    return QueueQuery(
        statuses=tuple(s for s in params.getlist("status") if s),
        site=params.get("site", "").strip(),
        platform=params.get("platform", "").strip(),
        segment=params.get("segment", "").strip(),
        date_from=params.get("date_from", "").strip(),
        date_to=params.get("date_to", "").strip(),
        device=params.get("device", "").strip(),
        confidence=params.get("confidence", "").strip(),
        sort=params.get("sort", "").strip() or DEFAULT_SORT,
        page=page or 1,
        bad_page="" if page or not typed else typed[:20],
    )


def _page_number(typed: str) -> int | None:
    """The page number typed, or None when it is not a whole number from 1 to ``MAX_PAGE``."""
    if not typed.isdecimal() or len(typed) > len(str(MAX_PAGE)):
        return None
    number = int(typed)
    return number if 1 <= number <= MAX_PAGE else None


def build_filters(
    query: QueueQuery, params: QueryParams, tz: ZoneInfo, floor: Floor
) -> IncidentFilters:
    """``IncidentFilters`` for the URL's query (``IncidentQuery``, as the API takes it);
    ``ValueError`` with a message for the page."""
    if query.bad_page:
        raise ValueError(f"Page {query.bad_page!r}: use a whole number from 1 to {MAX_PAGE}.")
    try:
        return IncidentQuery.from_params(params).filters(tz, floor)
    except ValidationError as e:
        raise ValueError(page_message(e.errors())) from None


def _site_choices(db: SessionDep, user: CurrentUser, query: QueueQuery) -> tuple[str, ...]:
    if user.site is not None:
        return ()
    sites = incident_sites(db, None)
    if query.site and query.site not in sites:
        sites = (*sites, query.site)
    return sites if len(sites) > 1 or query.site else ()


def _queue_href(request: Request, route: str, pairs: list[tuple[str, str]]) -> str:
    url = path_for(request, route)
    return url + "?" + urlencode(pairs) if pairs else url


@router.get("/incidents", name="incident_queue")
def incident_queue(
    request: Request, user: Reviewer, db: SessionDep, settings: SettingsDep
) -> Response:
    """The review queue with its filters, sort and pages; a page with incidents is audited
    (``view_list``, with the filters), as the API's list is."""
    query = parse_query(request.query_params)
    tz = ZoneInfo(settings.calendar.timezone)
    result: IncidentPage | None = None
    error: str | None = None
    floor = settings.incidents.floor()
    try:
        filters = build_filters(query, request.query_params, tz, floor)
        result = list_incidents(
            db, filters, sort=query.sort, page=query.page, per_page=PER_PAGE, site_scope=user.site
        )
    except ValueError as e:
        error = str(e)
    if result is not None and result.items:
        record_bulk_read(
            db, user=user, action=AuditAction.VIEW_LIST, target_type="incidents",
            filters=query.audit_detail(),
            detail=list_read_detail("page", result.page, result.per_page, len(result.items),
                                    result.total),
            address=client_address(request), site=user.site or result.filters.site,
        )  # fmt: skip
        db.commit()
    pairs = query.filter_query()
    previous_href = next_href = None
    if result is not None and result.page > 1:
        previous_href = _queue_href(request, "incident_queue", [*pairs, ("page", str(result.page - 1))])  # fmt: skip
    if result is not None and result.page < result.pages:
        next_href = _queue_href(request, "incident_queue", [*pairs, ("page", str(result.page + 1))])  # fmt: skip
    page = QueuePage(
        query=query,
        result=result,
        error=error,
        segments=tuple(segment.name for segment in settings.segments),
        sites=_site_choices(db, user, query),
        export_href=_queue_href(request, "incident_export", pairs),
        previous_href=previous_href,
        next_href=next_href,
        low_href=_queue_href(
            request,
            "incident_queue",
            [*(pair for pair in pairs if pair[0] != "confidence"), ("confidence", "all")],
        ),
        floor=floor,
        tz=tz,
    )
    return render_page(
        request, "pages/incidents/queue.html", page, status_code=400 if error else 200
    )


@router.get("/incidents.csv", name="incident_export")
def incident_export(
    request: Request, user: Reviewer, db: SessionDep, settings: SettingsDep
) -> Response:
    """The filtered queue as CSV (audited as ``export`` with the filters used)."""
    query = parse_query(request.query_params)
    tz = ZoneInfo(settings.calendar.timezone)
    try:
        filters = build_filters(query, request.query_params, tz, settings.incidents.floor())
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    record_bulk_read(
        db,
        user=user,
        action=AuditAction.EXPORT,
        target_type="incidents",
        filters=query.audit_detail(),
        detail={"format": "csv"},
        address=client_address(request),
        site=user.site or filters.site,
    )
    db.commit()
    factory = session_factory(request)

    def lines() -> Iterator[str]:
        # Its own session: the request's session ends before a streamed body is sent.
        with factory() as stream_db:
            yield from incidents_csv(stream_db, filters, user.site, sort=query.sort)

    stamp = utcnow().astimezone(tz).strftime("%Y-%m-%d")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents-{stamp}.csv"'},
    )


def _view(
    detail: IncidentDetail,
    settings: Settings,
    error: str | None = None,
    form: ReviewForm | None = None,
) -> IncidentView:
    explanation = detail.incident.explain(
        settings.incidents.floor(), ZoneInfo(settings.calendar.timezone)
    )
    return IncidentView(detail, moves_from(detail.incident.status), explanation, error, form)


@router.get("/incidents/{incident_id}", name="incident")
def incident(
    request: Request,
    incident_id: IncidentId,
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """One incident: evidence, earlier incidents, policy point, history and the review form."""
    detail = read_viewed(request, db, user, INCIDENT, incident_id)
    page = _view(detail, settings)
    return render_page(request, "pages/incidents/incident.html", page)


@router.post("/incidents/{incident_id}/review", name="review_incident")
def review(
    request: Request,
    incident_id: IncidentId,
    user: Reviewer,
    db: SessionDep,
    settings: SettingsDep,
    form: Annotated[ReviewForm, Form()],
) -> Response:
    """Move the incident on (PRG); a refused change shows the page again with the reason."""
    try:
        detail = review_incident(
            db,
            incident_id,
            user=user,
            to_status=form.to_status,
            outcome=form.outcome or None,
            note=form.note,
            second_reviewer=form.second_reviewer or None,
            confirm_growing=form.confirm_growing,
            now=utcnow(),
        )
    except ValueError as e:
        db.rollback()
        current = read_viewed(request, db, user, INCIDENT, incident_id)
        page = _view(current, settings, sentence(str(e)), form)
        return render_page(request, "pages/incidents/incident.html", page, status_code=400)
    record_review(
        db,
        user=user,
        incident_id=incident_id,
        change=detail.last_change,
        address=client_address(request),
        site=detail.incident.site,
    )
    db.commit()
    return redirect_to(request, "incident", incident_id=incident_id)
