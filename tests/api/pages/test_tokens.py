"""The API tokens page: list, create (the token shown once, in the POST answer), revoke. Each
change is audited once without the token (the roles are in tests/api/test_routes_roles.py)."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup

from api.pages.tokens import TokensPage
from monitor.store.api_tokens import create_api_token, list_api_tokens
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness


def admin(harness: AppHarness) -> str:
    harness.sign_in(UserRole.ADMIN, "boss")
    return harness.session_csrf()


def create(harness: AppHarness, token: str, username: str, name: str) -> Any:
    return harness.client.post(
        "/admin/tokens",
        data={"csrf_token": token, "username": username, "name": name},
        follow_redirects=False,
    )


def test_tokens_page_lists_every_token_without_the_token(harness: AppHarness) -> None:
    admin(harness)
    owner = harness.add_user(UserRole.REVIEWER, "head")
    with harness.db() as db:
        clear = create_api_token(db, owner.id, "nightly export")
        db.commit()
    response = harness.client.get("/admin/tokens")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, TokensPage)
    assert [(t.name, t.username, t.revoked_at) for t in page.tokens] == [
        ("nightly export", "head", None)
    ]
    assert page.created is None
    assert clear not in response.text
    assert "nightly export" in response.text
    assert "never" in response.text  # not used yet


def test_creating_a_token_shows_it_once_and_it_works(harness: AppHarness) -> None:
    token = admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    response = create(harness, token, "head", "  spreadsheet  ")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.context["page"]
    assert page.created is not None
    clear = page.created.token
    assert clear.startswith("hm_")
    shown = BeautifulSoup(response.text, "html.parser").find(id="new-token")
    assert shown is not None and shown.get_text(strip=True) == clear
    assert "will not be shown again" in response.text
    # the list no longer shows it, and it acts as its user on the API (no session cookie)
    assert clear not in harness.client.get("/admin/tokens").text
    harness.client.cookies.clear()
    api = harness.client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {clear}"})
    assert api.status_code == 200
    rows = harness.audit_rows()
    created = [r for r in rows if r.action == "create_api_token"]
    assert len(created) == 1
    assert created[0].detail == {"name": "spreadsheet", "username": "head"}
    with harness.db() as db:
        assert created[0].target_id == str(list_api_tokens(db)[0].id)
    assert all(clear not in str(r.detail) for r in rows)


@pytest.mark.parametrize(
    ("username", "name", "status", "message"),
    [
        ("nobody", "export", 404, "No user"),
        ("head", "   ", 400, "token name"),
    ],
)
def test_creating_a_token_refuses_bad_input(
    harness: AppHarness, username: str, name: str, status: int, message: str
) -> None:
    token = admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    response = create(harness, token, username, name)
    assert response.status_code == status
    assert message in response.text
    assert harness.audit_count("create_api_token") == 0
    with harness.db() as db:
        assert list_api_tokens(db) == []


def test_creating_a_token_needs_the_csrf_token(harness: AppHarness) -> None:
    admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    response = create(harness, "wrong" * 10, "head", "export")
    assert response.status_code == 403
    with harness.db() as db:
        assert list_api_tokens(db) == []


def test_revoking_a_token_refuses_it_from_then_on(harness: AppHarness) -> None:
    token = admin(harness)
    owner = harness.add_user(UserRole.REVIEWER, "head")
    with harness.db() as db:
        clear = create_api_token(db, owner.id, "export")
        db.commit()
        token_id = list_api_tokens(db)[0].id
    response = harness.client.post(
        f"/admin/tokens/{token_id}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/admin/tokens?done=revoked",
    )
    page = harness.client.get("/admin/tokens?done=revoked").context["page"]  # type: ignore[attr-defined]
    assert page.notice is not None and "revoked" in page.notice
    assert page.tokens[0].revoked_at is not None
    harness.client.cookies.clear()
    api = harness.client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {clear}"})
    assert api.status_code == 401
    assert harness.audit_count("revoke_api_token") == 1


def test_revoking_a_missing_token_is_404(harness: AppHarness) -> None:
    token = admin(harness)
    response = harness.client.post(
        "/admin/tokens/999/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 404
    assert harness.audit_count("revoke_api_token") == 0
