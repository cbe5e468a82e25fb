"""Server-rendered pages: one router module per area, each with its ``*Page`` dataclasses.

A page module defines ``router`` (an ``APIRouter(include_in_schema=False)``) and ``NAV`` (the
``NavLink``s it adds to the navigation, with the roles that see them); ``api/app.py`` lists the
modules in ``PAGE_MODULES``. A handler queries through ``monitor.store.queries``, builds a
frozen ``*Page`` dataclass and returns ``render_page(request, "pages/<area>/<name>.html",
page)``. Templates receive ``page`` plus the layout's ``viewer``, ``nav`` and ``site_name``,
and the globals ``path_for(route, **params)``, ``static_path(file)`` and ``csrf_field()``.
See ``api/README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from monitor.store.workflow import UserRole

ALL_ROLES = frozenset(UserRole)


@dataclass(frozen=True, slots=True)
class NavLink:
    """An entry of the site navigation, shown to the roles that may open it."""

    title: str
    route: str
    """The route's name (``@router.get(..., name=...)``)."""
    roles: frozenset[UserRole]
    description: str
    """One sentence for the home page: what this page is for."""
    trust_wide: bool = False
    """Shared by every school (``api.access.SiteRule.TRUST_WIDE``): not shown to a user
    limited to one site, who would be refused."""


@dataclass(frozen=True, slots=True)
class PageLink:
    """A ``NavLink`` resolved for one request: where it goes and whether it is this page."""

    title: str
    href: str
    description: str
    current: bool


def path_for(request: Request, route: str, /, **params: object) -> str:
    """The path of a named route, with the app's prefix (``web.root_path``)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + str(request.app.url_path_for(route, **params))


def links_for(
    request: Request, role: UserRole | None, site: str | None = None
) -> tuple[PageLink, ...]:
    """The navigation links this role (limited to ``site``, if given) sees; none when signed
    out."""
    if role is None:
        return ()
    nav: tuple[NavLink, ...] = request.app.state.nav
    here = request.scope.get("route")
    here_name = getattr(here, "name", None)
    return tuple(
        PageLink(
            link.title, path_for(request, link.route), link.description, link.route == here_name
        )
        for link in nav
        if role in link.roles and not (link.trust_wide and site is not None)
    )


def templates(request: Request) -> Jinja2Templates:
    """The app's template renderer (built once by ``create_app``)."""
    renderer: Jinja2Templates = request.app.state.templates
    return renderer


def render_page(
    request: Request,
    template: str,
    page: object,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render ``pages/<area>/<name>.html`` with ``{"page": page}`` (tests read it back from
    ``response.context["page"]``)."""
    return templates(request).TemplateResponse(
        request, template, {"page": page}, status_code=status_code, headers=headers
    )


def redirect_to(
    request: Request, route: str, /, *, query: Mapping[str, str] | None = None, **params: object
) -> RedirectResponse:
    """303 See Other to a named route: the Post/Redirect/Get answer to a form."""
    url = path_for(request, route, **params)
    if query:
        url += "?" + urlencode(query)
    return RedirectResponse(url, status_code=303)
