"""The JSON API under ``/api/v1``: one router module per resource, listed in ``API_ROUTERS``.

Shared here: ``api_router`` (prefix, tag, the documented bearer scheme and error answers), the
role dependencies, page sizes, periods and the checks that turn a bad query value into the usual
422 body with its field location (the bounds of ids, pages, days and text are ``api.params``,
shared with the pages). Handlers query ``monitor.store.queries`` (a missing item's
``NotFound`` is the app's 404, "No incident 42."), read a viewed item with
``api.reads.read_viewed`` and audit changes in the same transaction as they write.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPBearer

from api.deps import CurrentUser, require_role
from api.params import EARLIEST_DAY, LATEST_DAY, Day, day_problem, invalid
from api.schemas import ErrorOut
from monitor.config.settings import Settings
from monitor.store.queries.scope import MAX_PER_PAGE
from monitor.store.workflow import UserRole

API_V1 = "/api/v1"
MAX_PERIOD_DAYS = 400
"""The longest period the statistics cover in one request."""
DEFAULT_PERIOD_DAYS = 7
"""Without dates, statistics cover the last seven local days, today included."""

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API token made by an admin: `Authorization: Bearer hm_...`. "
    "A signed-in browser session (cookie) works too; its writes need `X-CSRF-Token`.",
)

UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in, or the API token is unknown or revoked."},
}  # fmt: skip
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "The user's role does not give access to this, "
          "or a signed-in browser's write came without its CSRF token."},
}  # fmt: skip
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such item, or it belongs to another site."},
}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read as JSON."},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The change is not allowed from the item's state."},
}

Reviewer = Annotated[CurrentUser, Depends(require_role(UserRole.REVIEWER, UserRole.ADMIN))]
"""Reviewers and admins: incidents, devices (read), incident statistics."""
Admin = Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))]
"""Admins only: labels, the audit log."""
AnyRole = Annotated[
    CurrentUser, Depends(require_role(UserRole.ADMIN, UserRole.REVIEWER, UserRole.GOVERNOR))
]
"""Every signed-in role: aggregate figures only."""

PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Items per page.")]
DateFrom = Annotated[
    Day | None,
    Query(description="First local day included (the school's time zone), 2000 to 2099."),
]
DateTo = Annotated[Day | None, Query(description="Last local day included, 2000 to 2099.")]


def api_router(resource: str) -> APIRouter:
    """A router for ``/api/v1/<resource>`` with the bearer scheme and 401/403 documented."""
    return APIRouter(
        prefix=f"{API_V1}/{resource}",
        tags=[resource],
        dependencies=[Depends(BEARER)],
        responses={**UNAUTHORISED, **FORBIDDEN},
    )


def check_day(name: str, day: date | None) -> date | None:
    """``day`` if within ``EARLIEST_DAY``..``LATEST_DAY``; else a 422."""
    problem = None if day is None else day_problem(day)
    if problem is not None:
        raise invalid("query", name, problem, str(day))
    return day


def check_instant(name: str, when: datetime | None) -> datetime | None:
    """``when`` as UTC (naive values are taken as UTC) if within the bounds; else a 422."""
    if when is None:
        return None
    if not EARLIEST_DAY.year <= when.year <= LATEST_DAY.year:
        raise invalid("query", name, f"{when.isoformat()} is outside 2000 to 2099", str(when))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def check_range(date_from: date | None, date_to: date | None) -> None:
    """Both days in bounds and the end not before the start; else a 422."""
    check_day("date_from", date_from)
    check_day("date_to", date_to)
    if date_from is not None and date_to is not None and date_to < date_from:
        raise invalid("query", "date_to", f"{date_to} is before date_from {date_from}", str(date_to))  # fmt: skip


def school_zone(settings: Settings) -> ZoneInfo:
    """The school's time zone (``calendar.timezone``)."""
    return ZoneInfo(settings.calendar.timezone)


def local_period(
    date_from: date | None, date_to: date | None, zone: ZoneInfo, now: datetime
) -> tuple[date, date]:
    """The local days ``[first, last]`` asked for; missing ends default to the last
    ``DEFAULT_PERIOD_DAYS`` up to today. 422 when out of bounds, reversed or too long."""
    check_range(date_from, date_to)
    today = now.astimezone(zone).date()
    span = timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if date_to is not None:
        last = date_to
    elif date_from is not None:
        last = min(date_from + span, LATEST_DAY)
    else:
        last = today
    first = date_from if date_from is not None else max(last - span, EARLIEST_DAY)
    check_range(first, last)
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise invalid(
            "query", "date_to", f"the period is longer than {MAX_PERIOD_DAYS} days", str(last)
        )
    return first, last
