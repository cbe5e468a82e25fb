"""Choosing a new password: a one-time password leads here first; the change is checked,
audited, and keeps this browser signed in while every other session ends."""

from __future__ import annotations

import httpx2 as httpx
from bs4 import BeautifulSoup
from sqlalchemy import select, update

from api.pages.password import PasswordPage, password_problem
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import PASSWORD, AppHarness, csrf_token_in

NEW = "a brand new passphrase"


def one_time(harness: AppHarness, username: str) -> None:
    with harness.db() as db:
        db.execute(
            update(UserRecord)
            .where(UserRecord.username == username)
            .values(must_change_password=True)
        )
        db.commit()


def post_change(
    harness: AppHarness, current: str, new: str, confirm: str, next_path: str = "/"
) -> httpx.Response:
    token = csrf_token_in(harness.client.get("/password").text)
    return harness.client.post(
        "/password",
        data={
            "csrf_token": token,
            "current": current,
            "new": new,
            "confirm": confirm,
            "next": next_path,
        },
        follow_redirects=False,
    )


def problem_text(html: str) -> str:
    problem = BeautifulSoup(html, "html.parser").find(id="password-problem")
    return problem.get_text(" ", strip=True) if problem else ""


def test_a_user_with_a_one_time_password_is_sent_to_the_password_form_from_every_page(
    harness: AppHarness,
) -> None:
    user = harness.add_user(UserRole.ADMIN, "admin")
    one_time(harness, "admin")
    login = harness.post_login("admin", PASSWORD, next_path="/incidents")
    assert login.headers["location"] == "/incidents"
    for path in ("/incidents", "/", "/admin/users"):
        response = harness.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/password?next=")
    page = harness.client.get("/password?next=/incidents")
    assert page.context["page"] == PasswordPage(user.username, True, "/incidents", None)  # type: ignore[attr-defined]
    assert "one-time password" in page.text


def test_the_api_refuses_a_one_time_password_session_with_403(harness: AppHarness) -> None:
    harness.add_user(UserRole.ADMIN, "admin")
    one_time(harness, "admin")
    harness.post_login("admin", PASSWORD)
    response = harness.client.get("/api/v1/incidents")
    assert response.status_code == 403
    assert "new password" in response.json()["detail"]


def test_choosing_a_password_clears_the_one_time_flag_and_goes_on_to_next(
    harness: AppHarness,
) -> None:
    harness.add_user(UserRole.ADMIN, "admin")
    one_time(harness, "admin")
    harness.post_login("admin", PASSWORD)
    response = post_change(harness, PASSWORD, NEW, NEW, next_path="/admin/users")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users"
    assert harness.client.get("/admin/users").status_code == 200
    with harness.db() as db:
        assert db.scalar(select(UserRecord.must_change_password)) is False
    harness.client.cookies.clear()
    assert harness.post_login("admin", PASSWORD).headers["location"].startswith("/login")
    assert harness.post_login("admin", NEW).headers["location"] == "/"


def test_the_change_ends_every_other_session_and_is_audited(harness: AppHarness) -> None:
    user = harness.sign_in(UserRole.REVIEWER, "head")
    with harness.db() as db:
        db.add(
            WebSessionRecord(
                token_hash="other-browser",
                user_id=user.id,
                csrf_token="x" * 43,
                created_at=user.created_at,
                last_seen_at=user.created_at,
            )
        )
        db.commit()
    assert post_change(harness, PASSWORD, NEW, NEW).status_code == 303
    with harness.db() as db:
        hashes = list(db.scalars(select(WebSessionRecord.token_hash)))
    assert len(hashes) == 1 and hashes != ["other-browser"]
    assert harness.client.get("/").status_code == 200
    [row] = [r for r in harness.audit_rows() if r.action == "change_user"]
    assert (row.user_id, row.target_id) == (user.id, str(user.id))
    assert row.detail == {"change": "password", "one_time": False, "tokens_revoked": 0}


def test_a_wrong_current_password_is_refused_and_counts_towards_the_lockout(
    harness: AppHarness,
) -> None:
    harness.sign_in(UserRole.REVIEWER, "head")
    response = post_change(harness, "not the password", NEW, NEW)
    assert response.status_code == 400
    assert "current password is wrong" in problem_text(response.text)
    with harness.db() as db:
        assert db.scalar(select(UserRecord.failed_logins)) == 1


def test_mismatched_short_or_unchanged_new_passwords_are_refused_with_the_reason(
    harness: AppHarness,
) -> None:
    harness.sign_in(UserRole.REVIEWER, "head")
    response = post_change(harness, PASSWORD, NEW, NEW + "!")
    assert response.status_code == 400
    assert "not the same" in problem_text(response.text)
    assert "too short" in problem_text(post_change(harness, PASSWORD, "short", "short").text)
    assert "must differ" in problem_text(post_change(harness, PASSWORD, PASSWORD, PASSWORD).text)


def test_password_problem_names_each_rule() -> None:
    assert password_problem("old password", NEW, NEW) is None
    assert password_problem("old", "a", "b") == "The two new passwords are not the same."
    assert password_problem(NEW, NEW, NEW) == "The new password must differ from the current one."
    short = password_problem("old", "tiny", "tiny")
    assert short is not None and short.startswith("Password too short (4 characters)")


def test_anonymous_visitors_are_sent_to_sign_in(harness: AppHarness) -> None:
    response = harness.client.get("/password", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
