"""Cookie sessions (flags, idle time-out, maximum age) and bearer tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import select, update

from api.auth import SESSION_COOKIE
from monitor.store.api_tokens import create_api_token, revoke_api_token
from monitor.store.models import ApiTokenRecord, UserRecord, WebSessionRecord
from monitor.store.workflow import UserRole
from tests.api.conftest import PASSWORD, AppFactory, AppHarness, probe_router


def session_cookie(response_headers: list[str]) -> SimpleCookie:
    [header] = [h for h in response_headers if h.startswith(SESSION_COOKIE + "=")]
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(header)
    return cookie


def login_set_cookie(harness: AppHarness, **headers: str) -> tuple[str, SimpleCookie]:
    harness.add_user(UserRole.REVIEWER, "head")
    token = harness.login_token()
    response = harness.client.post(
        "/login",
        data={"username": "head", "password": PASSWORD, "csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 303
    headers_list = response.headers.get_list("set-cookie")
    return next(h for h in headers_list if h.startswith(SESSION_COOKIE)), session_cookie(
        headers_list
    )


def age_session(harness: AppHarness, **columns: datetime) -> None:
    with harness.db() as db:
        db.execute(update(WebSessionRecord).values(**columns))
        db.commit()


def is_signed_in(harness: AppHarness) -> bool:
    return harness.client.get("/", follow_redirects=False).status_code == 200


# --- cookie flags ----------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_not_secure_over_http(harness: AppHarness) -> None:
    raw, cookie = login_set_cookie(harness)
    morsel = cookie[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]
    assert "max-age" not in raw.lower() and "expires" not in raw.lower()  # browser session


def test_cookie_is_secure_when_a_trusted_proxy_says_https(app_client: AppFactory) -> None:
    harness = app_client(client=("127.0.0.1", 50000), forwarded_allow_ips=["127.0.0.1"])
    _, cookie = login_set_cookie(harness, **{"X-Forwarded-Proto": "https"})
    assert cookie[SESSION_COOKIE]["secure"] is True


def test_an_untrusted_client_cannot_claim_https(harness: AppHarness) -> None:
    _, cookie = login_set_cookie(harness, **{"X-Forwarded-Proto": "https"})
    assert not cookie[SESSION_COOKIE]["secure"]


@pytest.mark.parametrize(("mode", "secure"), [("always", True), ("never", False)])
def test_secure_cookies_setting_overrides_the_scheme(
    app_client: AppFactory, mode: str, secure: bool
) -> None:
    harness = app_client(secure_cookies=mode, base_url="https://testserver")
    _, cookie = login_set_cookie(harness)
    assert bool(cookie[SESSION_COOKIE]["secure"]) is secure


def test_audit_address_comes_from_x_forwarded_for_of_a_trusted_proxy(
    app_client: AppFactory,
) -> None:
    trusted = app_client(client=("127.0.0.1", 50000), forwarded_allow_ips=["127.0.0.1"])
    login_set_cookie(trusted, **{"X-Forwarded-For": "10.1.4.23"})
    assert [r.address for r in trusted.audit_rows()] == ["10.1.4.23"]


def test_x_forwarded_for_from_an_untrusted_client_is_ignored(harness: AppHarness) -> None:
    login_set_cookie(harness, **{"X-Forwarded-For": "10.1.4.23"})
    assert [r.address for r in harness.audit_rows()] == ["testclient"]


# --- time-outs -------------------------------------------------------------------------------


def test_a_session_idle_for_longer_than_the_limit_is_refused_and_deleted(
    app_client: AppFactory,
) -> None:
    harness = app_client(session_idle_minutes=30)
    harness.sign_in()
    age_session(harness, last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
    response = harness.client.get("/", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2F&ended=1")
    with harness.db() as db:
        assert db.scalars(select(WebSessionRecord)).all() == []


def test_a_session_idle_within_the_limit_is_kept_and_touched(app_client: AppFactory) -> None:
    harness = app_client(session_idle_minutes=30)
    harness.sign_in()
    earlier = datetime.now(UTC) - timedelta(minutes=29)
    age_session(harness, last_seen_at=earlier)
    assert is_signed_in(harness)
    with harness.db() as db:
        seen = db.scalar(select(WebSessionRecord.last_seen_at))
    assert seen is not None and seen > earlier + timedelta(minutes=28)


def test_a_session_older_than_the_maximum_is_refused_even_if_active(
    app_client: AppFactory,
) -> None:
    harness = app_client(session_max_hours=12)
    harness.sign_in()
    now = datetime.now(UTC)
    age_session(harness, created_at=now - timedelta(hours=12, minutes=1), last_seen_at=now)
    assert not is_signed_in(harness)


def test_an_ended_session_is_explained_on_the_login_page(harness: AppHarness) -> None:
    harness.sign_in()
    age_session(harness, created_at=datetime.now(UTC) - timedelta(days=30))
    response = harness.client.get("/")
    assert response.url.path == "/login"
    assert response.context["page"].session_ended  # type: ignore[attr-defined]
    assert "Your session ended" in response.text


def test_a_disabled_users_session_is_refused(harness: AppHarness) -> None:
    harness.sign_in()
    with harness.db() as db:
        db.execute(update(UserRecord).values(disabled=True))
        db.commit()
    assert not is_signed_in(harness)


def test_a_forged_session_cookie_is_refused(harness: AppHarness) -> None:
    harness.sign_in()
    harness.client.cookies.clear()
    harness.client.cookies.set(SESSION_COOKIE, "x" * 43)
    assert not is_signed_in(harness)


# --- bearer tokens ---------------------------------------------------------------------------


def make_token(harness: AppHarness, role: UserRole = UserRole.REVIEWER) -> str:
    user = harness.add_user(role, "sync")
    with harness.db() as db:
        token = create_api_token(db, user.id, "timetable sync")
        db.commit()
    return token


def test_a_bearer_token_acts_as_its_user_on_the_api(app_client: AppFactory) -> None:
    harness = app_client(routers=(probe_router(),))
    token = make_token(harness)
    response = harness.client.get("/api/test/probe", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"username": "sync", "method": "token"}
    with harness.db() as db:
        assert db.scalar(select(ApiTokenRecord.last_used_at)) is not None


def test_a_bearer_token_needs_no_csrf_token(app_client: AppFactory) -> None:
    harness = app_client(routers=(probe_router(),))
    token = make_token(harness)
    response = harness.client.post(
        "/api/test/probe", headers={"Authorization": f"Bearer {token}"}, json={}
    )
    assert (response.status_code, response.json()) == (200, {"changed_by": "sync"})


def test_a_revoked_token_is_refused(app_client: AppFactory) -> None:
    harness = app_client(routers=(probe_router(),))
    token = make_token(harness)
    with harness.db() as db:
        revoke_api_token(db, db.scalar(select(ApiTokenRecord.id)) or 0)
        db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for method in ("GET", "POST"):
        response = harness.client.request(method, "/api/test/probe", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": "That API token is unknown or revoked."}
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer hm_unknown", "Bearer ", "Basic abc", "hm_x"])
def test_bad_authorization_headers_get_401(app_client: AppFactory, header: str) -> None:
    harness = app_client(routers=(probe_router(),))
    response = harness.client.get("/api/test/probe", headers={"Authorization": header})
    assert response.status_code == 401


def test_bearer_tokens_do_not_sign_in_to_pages(harness: AppHarness) -> None:
    token = make_token(harness)
    response = harness.client.get(
        "/", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False
    )
    assert response.status_code == 303


def test_a_browser_session_works_on_the_api_too(app_client: AppFactory) -> None:
    harness = app_client(routers=(probe_router(),))
    harness.sign_in(UserRole.GOVERNOR, "gov")
    response = harness.client.get("/api/test/probe")
    assert response.json() == {"username": "gov", "method": "session"}
