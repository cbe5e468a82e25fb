"""CSRF: every state-changing request carries the session's token (or is a bearer request)."""

from __future__ import annotations

import pytest

from api.csrf import LOGIN_CSRF_COOKIE, new_token, tokens_match
from tests.api.conftest import AppFactory, AppHarness, probe_router


@pytest.fixture
def signed_in(app_client: AppFactory) -> AppHarness:
    harness = app_client(routers=(probe_router(),))
    harness.sign_in()
    return harness


def test_a_form_with_the_sessions_token_is_accepted_and_audited(signed_in: AppHarness) -> None:
    response = signed_in.client.post("/test/form", data={"csrf_token": signed_in.session_csrf()})
    assert (response.status_code, response.text) == (200, "changed by reviewer1")
    assert signed_in.audit_count("test_change") == 1


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"csrf_token": ""},
        {"csrf_token": "not-the-token"},
        {"other": "field"},
    ],
)
def test_a_form_without_the_right_token_is_refused(
    signed_in: AppHarness, data: dict[str, str]
) -> None:
    response = signed_in.client.post("/test/form", data=data)
    assert response.status_code == 403
    assert response.template.name == "pages/errors/403.html"  # type: ignore[attr-defined]
    assert "This form has expired" in response.text
    assert signed_in.audit_count("test_change") == 0


def test_the_login_forms_token_does_not_stand_in_for_the_sessions(
    signed_in: AppHarness,
) -> None:
    signed_in.client.cookies.set(LOGIN_CSRF_COOKIE, "a" * 43)
    response = signed_in.client.post("/test/form", data={"csrf_token": "a" * 43})
    assert response.status_code == 403


def test_another_sessions_token_is_refused(app_client: AppFactory) -> None:
    harness = app_client(routers=(probe_router(),))
    harness.sign_in(username="first")
    first_token = harness.session_csrf()
    harness.client.cookies.clear()
    harness.sign_in(username="second")
    response = harness.client.post("/test/form", data={"csrf_token": first_token})
    assert response.status_code == 403


def test_json_calls_send_the_token_in_a_header(signed_in: AppHarness) -> None:
    token = signed_in.session_csrf()
    refused = signed_in.client.post("/api/test/probe", json={})
    accepted = signed_in.client.post("/api/test/probe", json={}, headers={"X-CSRF-Token": token})
    assert refused.status_code == 403
    assert list(refused.json()) == ["detail"]
    assert "This form has expired" in refused.json()["detail"]
    assert (accepted.status_code, accepted.json()) == (200, {"changed_by": "reviewer1"})


def test_safe_methods_need_no_token(signed_in: AppHarness) -> None:
    assert signed_in.client.get("/api/test/probe").status_code == 200
    assert signed_in.client.get("/").status_code == 200


def test_tokens_match_is_exact() -> None:
    token = new_token()
    assert tokens_match(token, token)
    assert not tokens_match(token, token[:-1])
    assert not tokens_match(None, token)
    assert not tokens_match("", "")
    assert not tokens_match(token, None)
    assert len(token) == 43 and new_token() != token
