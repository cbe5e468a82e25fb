"""The signed-in landing page: who you are, what your role lets you do, and the pages you can
open. It becomes the dashboard once that exists; it links only to pages that exist (the
``NAV`` entries of the page modules)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from api.deps import UserDep
from api.pages import ALL_ROLES, NavLink, PageLink, links_for, render_page
from monitor.store.workflow import UserRole

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink("Home", "home", ALL_ROLES, "This page: your role and what you can open."),
)

ROLE_SUMMARIES = {
    UserRole.ADMIN: "You look after the monitor: its settings, lists, devices, users and the "
    "audit log.",
    UserRole.REVIEWER: "You review incidents, record what was decided and export what the "
    "school needs to keep.",
    UserRole.GOVERNOR: "You see aggregate figures for the governing body. No device, address "
    "or name ever appears on your pages.",
}


@dataclass(frozen=True, slots=True)
class HomePage:
    """The landing page of a signed-in user."""

    display_name: str
    role: UserRole
    role_label: str
    summary: str
    """What this role is for, in one or two sentences."""
    links: tuple[PageLink, ...]
    """The other pages this role can open (never a page that does not exist)."""


@router.get("/", name="home")
def home(request: Request, user: UserDep) -> Response:
    """Greet the user by role and list the pages their role opens."""
    page = HomePage(
        display_name=user.display_name,
        role=user.role,
        role_label=user.role.label,
        summary=ROLE_SUMMARIES[user.role],
        links=tuple(link for link in links_for(request, user.role, user.site) if not link.current),
    )
    return render_page(request, "pages/home/index.html", page)
