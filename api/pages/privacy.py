"""The privacy notice: what Hall Monitor keeps, for how long and who can see it.

Generated from the configuration, so it cannot drift from what the monitor really does: the
school's name, the retention settings, the segments watched and the categories flagged on each.
Public (no sign-in), so that the school can link it from its staff handbook and pupils' IT
agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep, VisitorDep
from api.pages import ALL_ROLES, NavLink, render_page
from monitor.confidence import HIGH_FROM, MEDIUM_FROM, SEVERAL_MINUTES, Floor

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Privacy",
        "privacy_notice",
        ALL_ROLES,
        "The privacy notice for staff and pupils: what is kept, for how long, who sees it.",
    ),
)


@dataclass(frozen=True, slots=True)
class WatchedSegment:
    """A network segment and the categories of platform flagged on it."""

    name: str
    role: str
    categories: tuple[str, ...]
    """Empty: nothing is flagged on this segment (it is only counted)."""


@dataclass(frozen=True, slots=True)
class PrivacyNotice:
    """Everything the notice says that comes from the configuration."""

    school: str
    observations_days: int
    """How long a matched name (with the device that looked it up) is kept."""
    incidents_days: int
    false_positive_days: int
    """How long an incident the reviewer marked a false positive is kept."""
    segments: tuple[WatchedSegment, ...]
    timezone: str
    floor: Floor
    """The confidence floor of the settings; the formula's figures are ``monitor.confidence``'s."""

    high_from = HIGH_FROM
    medium_from = MEDIUM_FROM
    several_minutes = SEVERAL_MINUTES


@router.get("/privacy", name="privacy_notice")
def privacy_notice(request: Request, settings: SettingsDep, visitor: VisitorDep) -> Response:
    """The notice, for anyone (no sign-in needed; a signed-in visitor gets the navigation)."""
    del visitor  # worked out so that the layout shows a signed-in user's navigation
    retention = settings.retention
    page = PrivacyNotice(
        school=settings.site.name,
        observations_days=retention.observations_days,
        incidents_days=retention.incidents_days,
        false_positive_days=retention.false_positive_days,
        segments=tuple(
            WatchedSegment(
                segment.name,
                segment.role.value,
                tuple(sorted(category.value for category in segment.flags())),
            )
            for segment in settings.segments
        ),
        timezone=settings.calendar.timezone,
        floor=settings.incidents.floor(),
    )
    return render_page(request, "pages/privacy/notice.html", page)
