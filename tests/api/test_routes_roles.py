"""Every route × every role (and anonymous): the status each one gets.

To add routes: append ``RouteCase`` rows to ``ROUTES`` (path templates as the router declares
them, e.g. ``/incidents/{incident_id}``; the ids come from ``seed``), and add the router's
module to ``COVERED_MODULES`` so that ``test_the_table_covers_every_route`` keeps the table
complete for it. POST rows send the right CSRF token for the role (the session's, or the
login form's for anonymous), so the status shows the role check, not the CSRF check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi.routing import APIRoute

from api.app import API_ROUTERS, PAGE_MODULES
from monitor.store.users import UserRole, create_api_token, create_user, list_api_tokens
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness, csrf_token_in
from tests.monitor.store.queries.factories import add_device, add_incident

ANONYMOUS = "anonymous"
ROLES = (UserRole.ADMIN.value, UserRole.REVIEWER.value, UserRole.GOVERNOR.value, ANONYMOUS)

OK, REDIRECT, BAD, FORBIDDEN, MISSING = 200, 303, 400, 403, 404
"""Short names for the table: 303 is the login redirect for anonymous pages (and PRG)."""


@dataclass(frozen=True)
class RouteCase:
    """One route and the status per role."""

    method: str
    path: str
    """The route's path template; ``{incident_id}`` and friends are filled by ``seed``."""
    admin: int
    reviewer: int
    governor: int
    anonymous: int
    data: dict[str, str] = field(default_factory=dict)
    """The form body of a POST (the CSRF token is added)."""

    def expected(self, role: str) -> int:
        status: int = getattr(self, role)
        return status


ROUTES: tuple[RouteCase, ...] = (
    # api/pages/login.py
    RouteCase("GET", "/login", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=OK),
    RouteCase(
        "POST", "/login", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT,
        data={"username": "nobody", "password": "not the password", "next": "/"},
    ),
    RouteCase("POST", "/logout", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT),
    # api/pages/password.py
    RouteCase("GET", "/password", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT),
    RouteCase(
        "POST", "/password", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT,
        data={"current": PASSWORD, "new": "a new long passphrase", "confirm": "a new long passphrase"},
    ),
    # api/pages/home.py
    RouteCase("GET", "/", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT),
    # api/pages/dashboard.py
    RouteCase("GET", "/dashboard", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT),
    # api/pages/incidents.py
    RouteCase("GET", "/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase("GET", "/incidents.csv", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase("GET", "/incidents/{incident_id}", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase(
        "POST", "/incidents/{incident_id}/review",
        admin=REDIRECT, reviewer=REDIRECT, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"to_status": "in_review"},
    ),
    # api/routes/*.py: the JSON API (anonymous: 401 JSON). Writes and device routes are in
    # tests/api/routes/test_roles.py, with bearer tokens and JSON bodies.
    RouteCase("GET", "/api/v1/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401),
    RouteCase("GET", "/api/v1/incidents/{incident_id}", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401),
    RouteCase("GET", "/api/v1/devices", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401),
    RouteCase("GET", "/api/v1/stats/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401),
    RouteCase("GET", "/api/v1/stats/capture", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401),
    RouteCase("GET", "/api/v1/stats/governors", admin=OK, reviewer=OK, governor=OK, anonymous=401),
    RouteCase("GET", "/api/v1/audit", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=401),
    # api/pages/devices.py
    RouteCase("GET", "/devices", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase("GET", "/devices/{device_id}", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase("GET", "/devices/{device_id}/erase", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase(
        "POST", "/devices/{device_id}/label",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"label": "Mr Lee, B12"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/merge",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"new_mac": "aa:bb:cc:00:00:99", "reason": "new network card"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/export",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, data={"format": "json"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/erase",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"reason": "erasure request", "confirm": "aa:bb:cc:00:00:01"},
    ),
    # api/pages/lists.py (the admin's change is refused before any file is written: 400)
    RouteCase("GET", "/admin/lists", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase(
        "POST", "/admin/lists/changes",
        admin=BAD, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"action": "add", "list_name": "allowlist", "suffix": "gov.uk", "reason": "r", "approved_by": "Head"},
    ),
    # api/pages/admin.py
    RouteCase("GET", "/admin/users", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase(
        "POST", "/admin/users",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"username": "newbie", "display_name": "New", "role": "reviewer", "password": "a long enough passphrase"},
    ),
    RouteCase(
        "POST", "/admin/users/{username}/disabled",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"disabled": "true"},
    ),
    RouteCase(
        "POST", "/admin/users/{username}/password",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"password": "a long enough passphrase"},
    ),
    RouteCase("GET", "/admin/settings", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase("GET", "/admin/audit", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    # api/pages/privacy.py (public)
    RouteCase("GET", "/privacy", admin=OK, reviewer=OK, governor=OK, anonymous=OK),
    # api/pages/health.py (public, no personal data)
    RouteCase("GET", "/healthz", admin=OK, reviewer=OK, governor=OK, anonymous=OK),
    # api/pages/metrics.py (public without web.metrics_token: counts only)
    RouteCase("GET", "/metrics", admin=OK, reviewer=OK, governor=OK, anonymous=OK),
    # api/pages/tokens.py (creating answers 200: the new token is shown once, not redirected)
    RouteCase("GET", "/admin/tokens", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT),
    RouteCase(
        "POST", "/admin/tokens",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
        data={"username": "target", "name": "nightly export"},
    ),
    RouteCase(
        "POST", "/admin/tokens/{token_id}/revoke",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT,
    ),
)  # fmt: skip
"""The table: add rows for new routes here."""

COVERED_MODULES = (
    frozenset({"api.pages.login", "api.pages.home", "api.pages.dashboard", "api.pages.incidents"})
    | frozenset({"api.pages.devices", "api.pages.lists", "api.pages.admin", "api.pages.privacy"})
    | frozenset({"api.pages.health", "api.pages.tokens", "api.pages.password"})
    | frozenset({"api.pages.metrics"})
)
"""Router modules whose every route must have a row in ``ROUTES``."""


def seed(harness: AppHarness) -> dict[str, int | str]:
    """The rows the path templates refer to."""
    with harness.db() as db:
        incident_id = add_incident(db).id
        device_id = add_device(db).id
        target = create_user(
            db, "target", "Target", UserRole.REVIEWER, PASSWORD, hasher=FAST_HASHER
        )
        create_api_token(db, target.id, "a script")
        token_id = list_api_tokens(db)[0].id
        db.commit()
    return {
        "incident_id": incident_id,
        "device_id": device_id,
        "username": "target",
        "token_id": token_id,
    }


def request_as(harness: AppHarness, role: str, case: RouteCase) -> int:
    if role != ANONYMOUS:
        harness.sign_in(UserRole(role))
    path = case.path.format(**seed(harness))
    if case.method == "GET":
        return harness.client.get(path, follow_redirects=False).status_code
    token = (
        harness.login_token() if role == ANONYMOUS else csrf_token_in(harness.client.get("/").text)
    )
    response = harness.client.request(
        case.method, path, data={"csrf_token": token, **case.data}, follow_redirects=False
    )
    return response.status_code


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", ROUTES, ids=lambda case: f"{case.method} {case.path}")
def test_route_gives_each_role_its_status(harness: AppHarness, case: RouteCase, role: str) -> None:
    assert request_as(harness, role, case) == case.expected(role)


def test_anonymous_pages_redirect_to_login_with_next(harness: AppHarness) -> None:
    response = harness.client.get("/incidents?status=new", follow_redirects=False)
    assert response.headers["location"] == "/login?next=%2Fincidents%3Fstatus%3Dnew"


def test_the_table_covers_every_route() -> None:
    routers = [module.router for module in PAGE_MODULES] + list(API_ROUTERS)
    declared = {
        (method, route.path, route.endpoint.__module__)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
        if method != "HEAD"
    }
    in_table = {(case.method, case.path) for case in ROUTES}
    missing = {(m, p) for m, p, module in declared if module in COVERED_MODULES} - in_table
    assert not missing, f"add rows to ROUTES for {sorted(missing)}"
    stale = in_table - {(m, p) for m, p, _ in declared}
    assert not stale, f"ROUTES names routes the app does not have: {sorted(stale)}"
