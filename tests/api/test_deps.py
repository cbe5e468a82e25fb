"""Who may do what: anonymous redirects and 401s, roles enforced with 403."""

from __future__ import annotations

import pytest
from fastapi import Request

from api.deps import CurrentUser, Visitor, require_role, route_path
from monitor.store.workflow import UserRole
from tests.api.conftest import AppFactory, AppHarness, probe_router


@pytest.fixture
def harness(app_client: AppFactory) -> AppHarness:
    return app_client(routers=(probe_router(),))


def test_an_anonymous_page_request_is_sent_to_login_with_next(harness: AppHarness) -> None:
    response = harness.client.get("/test/admin-only?x=1&y=2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Ftest%2Fadmin-only%3Fx%3D1%26y%3D2"


def test_signing_in_from_the_redirect_returns_to_the_page(harness: AppHarness) -> None:
    user = harness.add_user(UserRole.ADMIN, "tech")
    response = harness.post_login(
        user.username, "correct horse battery staple", next_path="/test/admin-only"
    )
    assert response.headers["location"] == "/test/admin-only"
    assert harness.client.get("/test/admin-only").text == "hello tech"


def test_an_anonymous_api_request_gets_401_json(harness: AppHarness) -> None:
    response = harness.client.get("/api/test/probe")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Sign in, or send an API token: Authorization: Bearer hm_..."
    }
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("role", "page_status", "api_status"),
    [
        (UserRole.ADMIN, 200, 200),
        (UserRole.REVIEWER, 403, 200),
        (UserRole.GOVERNOR, 403, 403),
    ],
)
def test_require_role_admits_only_the_named_roles(
    harness: AppHarness, role: UserRole, page_status: int, api_status: int
) -> None:
    harness.sign_in(role)
    page = harness.client.get("/test/admin-only")
    api = harness.client.get("/api/test/reviewers")
    assert (page.status_code, api.status_code) == (page_status, api_status)
    if page_status == 403:
        assert page.template.name == "pages/errors/403.html"  # type: ignore[attr-defined]
        assert "Your role does not give access to this." in page.text
    if api_status == 403:
        assert api.json() == {"detail": "Your role does not give access to this."}


def test_require_role_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_role()


def test_require_role_names_its_dependency() -> None:
    assert require_role(UserRole.REVIEWER, UserRole.ADMIN).__name__ == "require_admin_or_reviewer"


def test_current_user_is_frozen() -> None:
    user = CurrentUser(1, "head", "Mrs Head", UserRole.REVIEWER, None)
    with pytest.raises(AttributeError):
        user.role = UserRole.ADMIN  # type: ignore[misc]
    assert Visitor(None).user is None


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/login", "", "/login"),
        ("/monitor/login", "/monitor", "/login"),
        ("/monitor", "/monitor", "/"),
        ("/monitoring/x", "/monitor", "/monitoring/x"),
        ("/other", "/monitor", "/other"),
    ],
)
def test_route_path_strips_the_prefix(path: str, root_path: str, expected: str) -> None:
    scope = {"type": "http", "path": path, "root_path": root_path, "headers": []}
    assert route_path(Request(scope)) == expected
