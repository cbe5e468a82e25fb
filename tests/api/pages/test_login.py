"""The login form and logout: Post/Redirect/Get, throttling, no user enumeration, one audit
row per attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select, update

from api.pages.login import LoginPage, safe_next
from monitor.store.models import UserRecord, WebSessionRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import PASSWORD, AppFactory, AppHarness


def login_problem(harness: AppHarness, response_location: str) -> str:
    page = harness.client.get(response_location)
    problem = BeautifulSoup(page.text, "html.parser").find(id="login-problem")
    return problem.get_text(" ", strip=True) if problem else ""


def test_login_page_renders_the_form_with_a_csrf_token(harness: AppHarness) -> None:
    response = harness.client.get("/login?next=/incidents/4")
    assert response.status_code == 200
    assert response.template.name == "pages/login/form.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, LoginPage)
    assert (page.next, page.failed, page.site_name) == ("/incidents/4", False, "school")
    soup = BeautifulSoup(response.text, "html.parser")
    form = soup.find("form", attrs={"action": "/login"})
    assert form is not None and form.get("method") == "post"
    assert soup.find("input", attrs={"name": "csrf_token"})["value"] == page.csrf_token  # type: ignore[index]
    assert harness.client.cookies["hm_login_csrf"] == page.csrf_token
    for name in ("username", "password"):
        assert soup.find("label", attrs={"for": name}) is not None


def test_login_success_redirects_to_next_and_starts_a_session(harness: AppHarness) -> None:
    user = harness.add_user(UserRole.REVIEWER, "head")
    response = harness.post_login("HEAD", PASSWORD, next_path="/?tab=week")
    assert response.status_code == 303
    assert response.headers["location"] == "/?tab=week"
    assert "hm_session" in harness.client.cookies
    with harness.db() as db:
        [session] = db.scalars(select(WebSessionRecord)).all()
        assert session.user_id == user.id
        assert session.token_hash != harness.client.cookies["hm_session"]
        assert session.address == "testclient"
        last_login = db.scalar(select(UserRecord.last_login_at))
        assert last_login is not None


def test_login_success_writes_one_audit_row(harness: AppHarness) -> None:
    user = harness.add_user(UserRole.GOVERNOR, "gov")
    harness.post_login("gov", PASSWORD)
    [row] = harness.audit_rows()
    assert (row.action, row.user_id, row.username, row.address) == (
        "login", user.id, "gov", "testclient",
    )  # fmt: skip


def test_login_failure_redirects_back_with_one_message(harness: AppHarness) -> None:
    harness.add_user(UserRole.REVIEWER, "head")
    response = harness.post_login("head", "not the password", next_path="/x")
    assert response.status_code == 303
    location = response.headers["location"]
    assert urlsplit(location).path == "/login"
    assert parse_qs(urlsplit(location).query) == {"failed": ["1"], "next": ["/x"]}
    assert "hm_session" not in harness.client.cookies
    assert "username or password is wrong" in login_problem(harness, location)


def test_login_failure_writes_one_audit_row_with_the_reason(harness: AppHarness) -> None:
    user = harness.add_user(UserRole.REVIEWER, "head")
    harness.post_login("head", "not the password")
    [row] = harness.audit_rows()
    assert (row.action, row.user_id, row.username) == ("login_failed", None, "head")
    assert (row.target_type, row.target_id) == ("user", str(user.id))
    assert row.detail == {"reason": "wrong_password"}


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(harness: AppHarness) -> None:
    harness.add_user(UserRole.REVIEWER, "head")
    known = harness.post_login("head", "not the password")
    unknown = harness.post_login("nobody", "not the password")
    assert (known.status_code, known.headers["location"], known.content) == (
        unknown.status_code, unknown.headers["location"], unknown.content,
    )  # fmt: skip
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())
    assert [r.detail["reason"] for r in harness.audit_rows()] == ["wrong_password", "unknown_user"]


def test_a_locked_or_disabled_account_gets_the_same_answer_too(
    app_client: AppFactory,
) -> None:
    harness = app_client(login_max_failures=2)
    harness.add_user(UserRole.REVIEWER, "head")
    answers = {harness.post_login("head", "wrong password!").headers["location"] for _ in range(2)}
    answers.add(harness.post_login("head", PASSWORD).headers["location"])  # locked now
    harness.add_user(UserRole.REVIEWER, "gone")
    with harness.db() as db:
        db.execute(update(UserRecord).where(UserRecord.username == "gone").values(disabled=True))
        db.commit()
    answers.add(harness.post_login("gone", PASSWORD).headers["location"])
    assert answers == {"/login?failed=1&next=%2F"}
    reasons = [r.detail["reason"] for r in harness.audit_rows()]
    assert reasons == ["wrong_password", "wrong_password", "locked", "disabled"]


def test_lockout_after_max_failures_and_unlock_after_the_lockout(app_client: AppFactory) -> None:
    harness = app_client(login_max_failures=3, login_lockout_minutes=15)
    harness.add_user(UserRole.REVIEWER, "head")
    for _ in range(3):
        harness.post_login("head", "wrong password!")
    with harness.db() as db:
        locked_until = db.scalar(select(UserRecord.locked_until))
    assert locked_until is not None
    assert timedelta(minutes=14) < locked_until - datetime.now(UTC) <= timedelta(minutes=15)
    assert harness.audit_rows()[-1].detail["locked_until"] == locked_until.isoformat()
    assert harness.post_login("head", PASSWORD).headers["location"].startswith("/login?failed")
    with harness.db() as db:  # the lock ran out a second ago
        db.execute(update(UserRecord).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
        db.commit()
    assert harness.post_login("head", PASSWORD).headers["location"] == "/"


def test_login_without_or_with_a_wrong_csrf_token_is_refused(harness: AppHarness) -> None:
    harness.add_user(UserRole.REVIEWER, "head")
    harness.client.get("/login")
    form = {"username": "head", "password": PASSWORD}
    missing = harness.client.post("/login", data=form, follow_redirects=False)
    wrong = harness.client.post(
        "/login", data={**form, "csrf_token": "x" * 43}, follow_redirects=False
    )
    harness.client.cookies.clear()
    no_cookie = harness.client.post(
        "/login", data={**form, "csrf_token": "x" * 43}, follow_redirects=False
    )
    assert [r.status_code for r in (missing, wrong, no_cookie)] == [403, 403, 403]
    assert "hm_session" not in harness.client.cookies
    assert harness.audit_count() == 0


def test_a_signed_in_browser_skips_the_login_form(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    response = harness.client.get("/login?next=/somewhere", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/somewhere")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/incidents/4?status=new", "/incidents/4?status=new"),
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("incidents", "/"),
        ("/login?next=/", "/"),
        ("/logout", "/"),
        ("/a\nb", "/"),
        ("/" + "a" * 2001, "/"),
    ],
)
def test_safe_next_keeps_only_paths_inside_the_app(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_next_is_escaped_in_the_form(harness: AppHarness) -> None:
    response = harness.client.get('/login?next=/"><script>alert(1)</script>')
    assert "<script>" not in response.text
    assert response.context["page"].next == '/"><script>alert(1)</script>'  # type: ignore[attr-defined]


def test_over_long_fields_are_a_bad_request(harness: AppHarness) -> None:
    token = harness.login_token()
    response = harness.client.post(
        "/login", data={"username": "u" * 151, "password": "p", "csrf_token": token}
    )
    assert response.status_code == 400
    assert harness.audit_count() == 0


# --- logout ----------------------------------------------------------------------------------


def test_logout_deletes_the_session_and_writes_one_audit_row(harness: AppHarness) -> None:
    user = harness.sign_in(UserRole.REVIEWER)
    old_cookie = harness.client.cookies["hm_session"]
    response = harness.client.post(
        "/logout", data={"csrf_token": harness.session_csrf()}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/login?signed_out=1")
    assert 'hm_session=""' in response.headers["set-cookie"]
    with harness.db() as db:
        assert db.scalars(select(WebSessionRecord)).all() == []
    assert [(r.action, r.user_id) for r in harness.audit_rows()] == [
        ("login", user.id), ("logout", user.id),
    ]  # fmt: skip
    harness.client.cookies.clear()
    harness.client.cookies.set("hm_session", old_cookie)  # replaying the old cookie fails
    assert harness.client.get("/", follow_redirects=False).status_code == 303


def test_logout_without_the_csrf_token_is_refused(harness: AppHarness) -> None:
    harness.sign_in(UserRole.REVIEWER)
    missing = harness.client.post("/logout", follow_redirects=False)
    wrong = harness.client.post("/logout", data={"csrf_token": "nope"}, follow_redirects=False)
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert harness.client.get("/", follow_redirects=False).status_code == 200
    assert harness.audit_count("logout") == 0


def test_signed_out_page_says_so(harness: AppHarness) -> None:
    response = harness.client.get("/login?signed_out=1")
    assert "You are signed out." in response.text
