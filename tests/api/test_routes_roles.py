"""Every route × every role × a site-limited user of each role × two schools: the status of each.

Two schools share one database (SQLite, and PostgreSQL when ``HALLMONITOR_TEST_POSTGRES_URL``
is set). Each case signs in a user of a role, either of every school (no site) or limited to
``school-a``, and asks for an item of ``school-a`` ("own") or of ``school-b`` ("other"): an
incident, a device, a person, an API token. Each row names the route's site decision
(``api.access.SiteRule``), from which the site-limited statuses follow:

- ``NONE``: no school's data; a site-limited user gets what their role gets;
- ``SCOPED``: their own school's items as their role; another school's item 404 (``other``
  overrides, e.g. 403 for granting another site);
- ``TRUST_WIDE``: shared by every school: 403.

Whatever the status, nothing of ``school-b`` (its devices' MACs and host names, its people's
names, its tokens, and for scoped and trust-wide routes its name) appears in an answer to a user
limited to ``school-a``, unless the request itself carried it.

To add routes: append ``RouteCase`` rows to ``ROUTES`` (path templates as the router declares
them, e.g. ``/incidents/{incident_id}``; the values come from ``School``) with the route's
``site`` rule, and add the router's module to ``COVERED_MODULES`` so that
``test_the_table_covers_every_route`` keeps the table complete for it. POST rows send the right
CSRF token for the role (the session's, or the login form's for anonymous), so the status shows
the role and site checks, not the CSRF check.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.access import SiteRule
from api.app import API_ROUTERS, PAGE_MODULES, create_app
from monitor.store.api_tokens import create_api_token
from monitor.store.models import ApiTokenRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness, csrf_token_in, make_settings
from tests.monitor import conftest as databases
from tests.monitor.store.queries.factories import add_device, add_incident

postgres_test_url = databases.postgres_test_url
postgres_server = databases.postgres_server
"""The PostgreSQL server fixtures of the store tests (a template database per session)."""

ANONYMOUS = "anonymous"
ROLES = (UserRole.ADMIN.value, UserRole.REVIEWER.value, UserRole.GOVERNOR.value, ANONYMOUS)
OWN, OTHER = "school-a", "school-b"
MARKS = {OWN: "alpha", OTHER: "bravo"}
"""Spelled into each school's host names, people's names and token names."""
MAC_PREFIX = {OWN: "0a:aa:aa", OTHER: "0b:bb:bb"}

OK, REDIRECT, BAD, FORBIDDEN, MISSING = 200, 303, 400, 403, 404
"""Short names for the table: 303 is the login redirect for anonymous pages (and PRG)."""
NONE, SCOPED, TRUST_WIDE = SiteRule.NONE, SiteRule.SCOPED, SiteRule.TRUST_WIDE


@dataclass(frozen=True)
class RouteCase:
    """One route, the status per role, and what a user limited to one school gets."""

    method: str
    path: str
    """The route's path template; ``{incident_id}`` and friends are filled from ``School``."""
    admin: int
    reviewer: int
    governor: int
    anonymous: int
    site: SiteRule
    """The route's site decision: every route must have one."""
    data: dict[str, str] = field(default_factory=dict)
    """The form body of a POST (the CSRF token is added; ``{site}`` and friends are filled);
    under ``/api/`` the JSON body, with the CSRF token in ``X-CSRF-Token``."""
    other: int | None = None
    """A site-limited user's status for another school's item, when not 404 (or the role's
    status, for a route naming no item)."""

    def expected(self, role: str, limited: bool, target: str) -> int:
        status: int = getattr(self, role)
        if role == ANONYMOUS or not limited or self.site is NONE or status == FORBIDDEN:
            return status
        if self.site is TRUST_WIDE:
            return FORBIDDEN
        if target == OWN:
            return status
        if self.other is not None:
            return self.other
        return MISSING if "{" in self.path else status


ROUTES: tuple[RouteCase, ...] = (
    # api/pages/login.py
    RouteCase("GET", "/login", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=OK, site=NONE),
    RouteCase(
        "POST", "/login", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT, site=NONE,
        data={"username": "nobody-{n}", "password": "not the password", "next": "/"},
    ),
    RouteCase("POST", "/logout", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT, site=NONE),
    # api/pages/password.py
    RouteCase("GET", "/password", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT, site=NONE),
    RouteCase(
        "POST", "/password", admin=REDIRECT, reviewer=REDIRECT, governor=REDIRECT, anonymous=REDIRECT, site=NONE,
        data={"current": PASSWORD, "new": "a new long passphrase", "confirm": "a new long passphrase"},
    ),
    # api/pages/home.py
    RouteCase("GET", "/", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT, site=NONE),
    # api/pages/dashboard.py
    RouteCase("GET", "/dashboard", admin=OK, reviewer=OK, governor=OK, anonymous=REDIRECT, site=SCOPED),
    # api/pages/incidents.py
    RouteCase("GET", "/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase("GET", "/incidents.csv", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase("GET", "/incidents/{incident_id}", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase(
        "POST", "/incidents/{incident_id}/review",
        admin=REDIRECT, reviewer=REDIRECT, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"to_status": "in_review"},
    ),
    # api/routes/*.py: the JSON API as a signed-in browser calls it (anonymous: 401 JSON, a
    # write too: refused before its body is read). tests/api/routes/test_roles.py
    # drives it with bearer tokens.
    RouteCase("GET", "/api/v1/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase("GET", "/api/v1/incidents/{incident_id}", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase(
        "POST", "/api/v1/incidents/{incident_id}/review",
        admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED,
        data={"to_status": "in_review"},
    ),
    RouteCase("GET", "/api/v1/devices", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase("GET", "/api/v1/devices/{device_id}", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase(
        "PUT", "/api/v1/devices/{device_id}/label",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=401, site=SCOPED,
        data={"label": "Room 4"},
    ),
    RouteCase("GET", "/api/v1/stats/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase("GET", "/api/v1/stats/capture", admin=OK, reviewer=OK, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    RouteCase("GET", "/api/v1/stats/governors", admin=OK, reviewer=OK, governor=OK, anonymous=401, site=SCOPED),
    RouteCase("GET", "/api/v1/audit", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=401, site=SCOPED),
    # api/pages/devices.py
    RouteCase("GET", "/devices", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase("GET", "/devices/{device_id}", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase("GET", "/devices/{device_id}/erase", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase(
        "POST", "/devices/{device_id}/label",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"label": "Mr Lee, B12"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/merge",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"new_mac": "{new_mac}", "reason": "new network card"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/export",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"format": "json"},
    ),
    RouteCase(
        "POST", "/devices/{device_id}/erase",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"reason": "erasure request", "confirm": "{mac}"},
    ),
    # api/pages/lists.py (the admin's change is refused before any file is written: 400;
    # the lists are every school's)
    RouteCase("GET", "/admin/lists", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=TRUST_WIDE),
    RouteCase(
        "POST", "/admin/lists/changes",
        admin=BAD, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=TRUST_WIDE,
        data={"action": "add", "list_name": "allowlist", "suffix": "gov.uk", "reason": "r", "approved_by": "Head"},
    ),
    # api/pages/admin.py (a new user of another school, by an admin of one: 403)
    RouteCase("GET", "/admin/users", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase(
        "POST", "/admin/users",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED, other=FORBIDDEN,
        data={"username": "newbie-{n}", "display_name": "New", "role": "reviewer", "password": "a long enough passphrase", "site": "{site}"},
    ),
    RouteCase(
        "POST", "/admin/users/{username}/disabled",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"disabled": "true"},
    ),
    RouteCase(
        "POST", "/admin/users/{username}/password",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
        data={"password": "a long enough passphrase"},
    ),
    RouteCase("GET", "/admin/settings", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=TRUST_WIDE),
    RouteCase("GET", "/admin/audit", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    # api/pages/privacy.py (public)
    RouteCase("GET", "/privacy", admin=OK, reviewer=OK, governor=OK, anonymous=OK, site=NONE),
    # api/pages/health.py (public up/down; an admin's checks are of their school)
    RouteCase("GET", "/healthz", admin=OK, reviewer=OK, governor=OK, anonymous=OK, site=SCOPED),
    # api/pages/metrics.py (public without web.metrics_token: counts by site only)
    RouteCase("GET", "/metrics", admin=OK, reviewer=OK, governor=OK, anonymous=OK, site=NONE),
    # api/pages/tokens.py (creating answers 200: the new token is shown once, not redirected;
    # a token for another school's user, by an admin of one: 404 like a missing user)
    RouteCase("GET", "/admin/tokens", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED),
    RouteCase(
        "POST", "/admin/tokens",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED, other=MISSING,
        data={"username": "{username}", "name": "nightly export"},
    ),
    RouteCase(
        "POST", "/admin/tokens/{token_id}/revoke",
        admin=REDIRECT, reviewer=FORBIDDEN, governor=FORBIDDEN, anonymous=REDIRECT, site=SCOPED,
    ),
)  # fmt: skip
"""The table: add rows for new routes here."""

COVERED_MODULES = (
    frozenset({"api.pages.login", "api.pages.home", "api.pages.dashboard", "api.pages.incidents"})
    | frozenset({"api.pages.devices", "api.pages.lists", "api.pages.admin", "api.pages.privacy"})
    | frozenset({"api.pages.health", "api.pages.tokens", "api.pages.password"})
    | frozenset({"api.pages.metrics"})
    | frozenset(
        {"api.routes.incidents", "api.routes.devices", "api.routes.stats", "api.routes.audit"}
    )
)
"""Router modules whose every route must have a row in ``ROUTES``."""


_numbers = itertools.count(1)


@dataclass(frozen=True)
class School:
    """One school's items, made afresh for each case (the values the path templates name)."""

    site: str
    n: int
    incident_id: int
    device_id: int
    mac: str
    new_mac: str
    username: str
    """A reviewer of this school (with an API token)."""
    token_id: int

    def values(self) -> dict[str, object]:
        return {
            "site": self.site, "n": self.n, "incident_id": self.incident_id,
            "device_id": self.device_id, "mac": self.mac, "new_mac": self.new_mac,
            "username": self.username, "token_id": self.token_id,
        }  # fmt: skip


def seed_school(harness: AppHarness, site: str) -> School:
    """An incident, a device, a reviewer and their API token at ``site``, all marked with the
    school's spelling (``MARKS``) where a person or device is named."""
    n = next(_numbers)
    mark = MARKS[site]
    mac = f"{MAC_PREFIX[site]}:{n // 256 % 256:02x}:{n % 256:02x}:01"
    device = (f"10.{n // 256 % 256}.{n % 256}.7", mac)
    with harness.db() as db:
        incident = add_incident(db, site=site, device=device, host_name=f"{mark}-laptop-{n}")
        added = add_device(db, site=site, device=device, host_name=f"{mark}-laptop-{n}")
        person = create_user(
            db, f"{site}-person-{n}", f"{mark.title()} Person {n}", UserRole.REVIEWER,
            PASSWORD, email=f"{mark}{n}@example.org", site=site, hasher=FAST_HASHER,
        )  # fmt: skip
        create_api_token(db, person.id, f"{mark} script {n}")
        token_id = db.scalar(select(ApiTokenRecord.id).where(ApiTokenRecord.user_id == person.id))
        assert token_id is not None
        db.commit()
        return School(
            site, n, incident.id, added.id, mac, mac[:-2] + "99", person.username, token_id
        )


def leaks(text: str, request_text: str, *, site_name: bool) -> list[str]:
    """What of ``school-b`` an answer shows, leaving out what the request itself carried."""
    marks = [MARKS[OTHER], MAC_PREFIX[OTHER]] + ([OTHER] if site_name else [])
    return [mark for mark in marks if mark in text.lower() and mark not in request_text.lower()]


@pytest.fixture(scope="module", params=databases.BACKENDS)
def shared_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """One review app over one database holding both schools, per backend (each case makes its
    own items and users, so the cases stay independent)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("api_sqlite_template")
        path = tmp_path_factory.mktemp("trust") / "trust.sqlite3"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
        dropped = None
    else:
        server: databases.PostgresServer = request.getfixturevalue("postgres_server")
        dropped = server.create_database(template=server.template)
        url = dropped.render_as_string(hide_password=False)
    app = create_app(make_settings(url), password_hasher=FAST_HASHER)
    with TestClient(app):
        yield app
    if dropped is not None:
        server.drop_database(dropped)


_addresses = itertools.count(1)


def fresh_harness(app: FastAPI) -> AppHarness:
    """A new browser (its own cookies and client address) on the shared app."""
    n = next(_addresses)
    client = TestClient(app, client=(f"10.99.{n // 256 % 256}.{n % 256}", 50000))
    return AppHarness(client, app, app.state.settings)


def request_as(
    harness: AppHarness, role: str, site: str | None, case: RouteCase, target: str
) -> tuple[int, str, str]:
    """Sign in (as ``role`` limited to ``site``), ask, and return the status, the answer's text
    and the request's own text (path and form)."""
    own, other = seed_school(harness, OWN), seed_school(harness, OTHER)
    school = own if target == OWN else other
    if role != ANONYMOUS:
        name = f"{role}-{site or 'trust'}-{school.n}"
        harness.sign_in(UserRole(role), name, site=site)
    values = school.values()
    path = case.path.format(**values)
    data = {key: value.format(**values) for key, value in case.data.items()}
    if case.method == "GET":
        response = harness.client.get(path, follow_redirects=False)
    elif path.startswith("/api/"):
        headers = {} if role == ANONYMOUS else {"X-CSRF-Token": harness.session_csrf()}
        response = harness.client.request(case.method, path, json=data, headers=headers)
    else:
        token = (
            harness.login_token()
            if role == ANONYMOUS
            else csrf_token_in(harness.client.get("/").text)
        )
        response = harness.client.request(
            case.method, path, data={"csrf_token": token, **data}, follow_redirects=False
        )
    return response.status_code, response.text, path + " " + " ".join(data.values())


REQUESTERS = [(role, site) for role in ROLES[:-1] for site in (None, OWN)] + [(ANONYMOUS, None)]
"""Each role of every school and limited to ``school-a``, and anonymous."""


@pytest.mark.parametrize("target", [OWN, OTHER])
@pytest.mark.parametrize(
    ("role", "site"), REQUESTERS, ids=[f"{role}@{site or 'all'}" for role, site in REQUESTERS]
)
@pytest.mark.parametrize("case", ROUTES, ids=lambda case: f"{case.method} {case.path}")
def test_route_gives_each_role_and_site_its_status(
    shared_app: FastAPI, case: RouteCase, role: str, site: str | None, target: str
) -> None:
    harness = fresh_harness(shared_app)
    status, text, asked = request_as(harness, role, site, case, target)
    assert status == case.expected(role, site is not None, target), text[:500]
    if site is not None:
        assert leaks(text, asked, site_name=case.site is not NONE) == []


def test_a_user_of_every_school_sees_the_other_school_where_one_limited_does_not(
    shared_app: FastAPI,
) -> None:
    """The leak check above finds something when it is there."""
    harness = fresh_harness(shared_app)
    seed_school(harness, OTHER)
    harness.sign_in(UserRole.ADMIN, f"admin-trust-{next(_numbers)}")
    for path in ("/devices", "/admin/users", "/admin/tokens", "/incidents"):
        assert leaks(harness.client.get(path).text, path, site_name=True), path


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
