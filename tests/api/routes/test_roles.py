"""Every ``/api/v1`` route × every role (bearer token) and anonymous: the status each gets.

The table of ``tests/api/test_routes_roles.py`` drives the app as a browser (forms); this one
drives the JSON API as an integration does, with a bearer token and JSON bodies, and covers
every route of ``api.routes``. An anonymous write is asked to sign in (401) before its body is
read (``api.limits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness
from tests.api.routes.conftest import bearer, seeded

ANONYMOUS = "anonymous"
ROLES = (UserRole.ADMIN.value, UserRole.REVIEWER.value, UserRole.GOVERNOR.value, ANONYMOUS)
OK, UNAUTHORISED, FORBIDDEN = 200, 401, 403


@dataclass(frozen=True)
class ApiCase:
    method: str
    path: str
    admin: int
    reviewer: int
    governor: int
    anonymous: int = UNAUTHORISED
    json: dict[str, object] = field(default_factory=dict)


API_ROUTES: tuple[ApiCase, ...] = (
    ApiCase("GET", "/api/v1/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase("GET", "/api/v1/incidents/{incident_id}", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase(
        "POST", "/api/v1/incidents/{incident_id}/review",
        admin=OK, reviewer=OK, governor=FORBIDDEN,
        json={"to_status": "in_review"},
    ),
    ApiCase("GET", "/api/v1/devices", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase("GET", "/api/v1/devices/{device_id}", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase(
        "PUT", "/api/v1/devices/{device_id}/label",
        admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN,
        json={"label": "Room 4"},
    ),
    ApiCase("GET", "/api/v1/stats/incidents", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase("GET", "/api/v1/stats/capture", admin=OK, reviewer=OK, governor=FORBIDDEN),
    ApiCase("GET", "/api/v1/stats/governors", admin=OK, reviewer=OK, governor=OK),
    ApiCase("GET", "/api/v1/audit", admin=OK, reviewer=FORBIDDEN, governor=FORBIDDEN),
)  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", API_ROUTES, ids=lambda case: f"{case.method} {case.path}")
def test_api_route_gives_each_role_its_status(
    harness: AppHarness, case: ApiCase, role: str
) -> None:
    seed = seeded(harness)
    path = case.path.format(incident_id=seed.staff_incident, device_id=seed.staff_device)
    headers = {} if role == ANONYMOUS else bearer(harness, UserRole(role))
    response = harness.client.request(
        case.method, path, headers=headers, json=case.json if case.method != "GET" else None
    )
    assert response.status_code == getattr(case, role), response.text
    if response.status_code != OK:
        assert set(response.json()) == {"detail"}


def test_api_anonymous_gets_401_json_with_the_bearer_challenge(harness: AppHarness) -> None:
    response = harness.client.get("/api/v1/incidents")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"].startswith("Sign in, or send an API token")


def test_api_revoked_or_unknown_token_gets_401(harness: AppHarness) -> None:
    response = harness.client.get(
        "/api/v1/incidents", headers={"Authorization": "Bearer hm_not-a-real-token"}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "That API token is unknown or revoked."}


def test_api_role_table_covers_every_api_route(harness: AppHarness) -> None:
    paths = harness.app.openapi()["paths"]
    declared = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert declared == {(case.method, case.path) for case in API_ROUTES}
