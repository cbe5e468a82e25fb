"""Admin pages: users (add, disable, enable, new password), the read-only settings with secrets
hidden, and the audit log with filters and paging. Each change is audited once (the roles are
in tests/api/test_routes_roles.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from api.pages.admin import AuditLogPage, SettingsPage, UsersPage, settings_groups
from monitor.config.settings import Settings
from monitor.first_admin import FIRST_ADMIN, password_file
from monitor.store.audit import NamedActor, record_event
from monitor.store.users import get_user
from monitor.store.workflow import UserRole
from tests.api.conftest import PASSWORD, AppFactory, AppHarness


def admin(harness: AppHarness) -> str:
    harness.sign_in(UserRole.ADMIN, "boss")
    return harness.session_csrf()


# --- users -----------------------------------------------------------------------------------


def test_users_page_lists_every_user(harness: AppHarness) -> None:
    admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    page = harness.client.get("/admin/users").context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, UsersPage)
    assert [u.username for u in page.users] == ["boss", "head"]


def test_adding_a_user_lets_them_sign_in(harness: AppHarness) -> None:
    token = admin(harness)
    response = harness.client.post(
        "/admin/users",
        data={
            "csrf_token": token, "username": "Deputy", "display_name": "Mr D Puty",
            "role": "reviewer", "email": "deputy@school.example", "site": "",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )  # fmt: skip
    assert (response.status_code, response.headers["location"]) == (303, "/admin/users?done=added")
    with harness.db() as db:
        added = get_user(db, "deputy")
    assert (added.role, added.email, added.site) == (UserRole.REVIEWER, "deputy@school.example", None)  # fmt: skip
    assert harness.audit_count("change_user") == 1
    harness.client.cookies.clear()
    assert harness.post_login("deputy", PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("password", "short", "too short"),
        ("username", "boss", "taken"),
        ("username", "no spaces", "username"),
        ("role", "owner", ""),
    ],
)
def test_a_bad_new_user_is_refused(
    harness: AppHarness, field: str, value: str, message: str
) -> None:
    token = admin(harness)
    data = {
        "csrf_token": token, "username": "newbie", "display_name": "New", "role": "reviewer",
        "password": PASSWORD, field: value,
    }  # fmt: skip
    response = harness.client.post("/admin/users", data=data)
    assert response.status_code == 400
    assert message in response.text
    assert harness.audit_count("change_user") == 0


def test_disabling_and_enabling_a_user(harness: AppHarness) -> None:
    token = admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    for disabled, done in (("true", "disabled"), ("false", "enabled")):
        response = harness.client.post(
            "/admin/users/head/disabled",
            data={"csrf_token": token, "disabled": disabled},
            follow_redirects=False,
        )
        assert response.headers["location"] == f"/admin/users?done={done}"
        with harness.db() as db:
            assert get_user(db, "head").disabled is (disabled == "true")
    assert harness.audit_count("change_user") == 2


def test_an_admin_cannot_disable_themselves(harness: AppHarness) -> None:
    token = admin(harness)
    response = harness.client.post(
        "/admin/users/boss/disabled", data={"csrf_token": token, "disabled": "true"}
    )
    assert response.status_code == 400
    assert harness.audit_count("change_user") == 0


def test_an_unknown_user_is_404(harness: AppHarness) -> None:
    token = admin(harness)
    response = harness.client.post(
        "/admin/users/ghost/password", data={"csrf_token": token, "password": PASSWORD}
    )
    assert response.status_code == 404


def test_a_new_password_replaces_the_old_one(harness: AppHarness) -> None:
    token = admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    new = "a brand new long passphrase"
    response = harness.client.post(
        "/admin/users/head/password",
        data={"csrf_token": token, "password": new},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert harness.audit_count("change_user") == 1
    harness.client.cookies.clear()
    assert "failed=1" in harness.post_login("head", PASSWORD).headers["location"]
    assert harness.post_login("head", new).headers["location"] == "/"


def test_an_admin_reset_of_admins_password_removes_the_one_time_password_file(
    app_client: AppFactory, tmp_path: Path
) -> None:
    harness = app_client(data_dir=tmp_path)
    token = admin(harness)
    harness.add_user(UserRole.ADMIN, FIRST_ADMIN)
    left_over = password_file(tmp_path)
    left_over.write_text("the first start's one-time password\n")
    response = harness.client.post(
        f"/admin/users/{FIRST_ADMIN}/password",
        data={"csrf_token": token, "password": "a brand new long passphrase"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert not left_over.exists()


def test_a_short_new_password_is_refused(harness: AppHarness) -> None:
    token = admin(harness)
    harness.add_user(UserRole.REVIEWER, "head")
    response = harness.client.post(
        "/admin/users/head/password", data={"csrf_token": token, "password": "short"}
    )
    assert response.status_code == 400
    assert harness.audit_count("change_user") == 0


# --- settings --------------------------------------------------------------------------------


def test_settings_hide_the_database_and_mail_passwords() -> None:
    settings = Settings.model_validate(
        {
            "database": {"url": "postgresql+psycopg://monitor:s3cret-pw@db.example/hm"},
            "mail": {"password": "mail-secret"},
        }
    )
    text = repr(settings_groups(settings))
    assert "s3cret-pw" not in text and "mail-secret" not in text
    assert "db.example" in text


def test_settings_page_shows_segments_calendar_and_today(app_client: AppFactory) -> None:
    harness = app_client()
    settings = harness.settings.model_copy(
        update={
            "segments": Settings.model_validate(
                {"segments": [{"name": "staff-wifi", "cidrs": ["10.1.0.0/16"], "role": "staff"}]}
            ).segments,
            "calendar": Settings.model_validate(
                {"calendar": {
                    "terms": [{"start": "2026-09-01", "end": "2026-12-18", "name": "autumn"}],
                    "closures": [{"start": "2026-10-23", "reason": "INSET day"}],
                }}
            ).calendar,
        }
    )  # fmt: skip
    harness.app.state.settings = settings
    admin(harness)
    response = harness.client.get("/admin/settings")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, SettingsPage)
    assert [s.name for s in page.segments] == ["staff-wifi"]
    assert page.segments[0].flagged == ("messaging", "social", "video")
    assert [t.name for t in page.terms] == ["autumn"]
    assert page.closures[0].name == "INSET day"
    assert dict(page.week)["monday"] == ("08:00-16:30",)
    assert "INSET day" in response.text and "staff-wifi" in response.text


# --- audit log -------------------------------------------------------------------------------


def add_events(harness: AppHarness, n: int, action: str = "view_device") -> None:
    start = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    with harness.db() as db:
        for i in range(n):
            record_event(
                db, user=NamedActor(None, f"user{i % 2}"), action=action, target_type="device",
                target_id=i, detail={"n": i}, address="10.0.0.9", at=start + timedelta(hours=i),
            )  # fmt: skip
        db.commit()


def test_audit_log_pages_newest_first(harness: AppHarness) -> None:
    add_events(harness, 60)
    admin(harness)
    first = harness.client.get("/admin/audit").context["page"]  # type: ignore[attr-defined]
    assert isinstance(first, AuditLogPage)
    assert (first.total, first.pages, len(first.entries)) == (61, 2, 50)  # 60 + the admin's login
    assert first.entries[0].action == "login"
    assert first.next_query == "page=2" and first.previous_query is None
    second = harness.client.get("/admin/audit?page=2").context["page"]  # type: ignore[attr-defined]
    assert len(second.entries) == 11 and second.entries[-1].detail == {"n": 0}


def test_audit_log_filters(harness: AppHarness) -> None:
    add_events(harness, 30)
    add_events(harness, 2, action="export")
    admin(harness)
    query = {"action": "view_device", "user": "user1", "start": "2026-03-10", "end": "2026-03-10"}
    page = harness.client.get("/admin/audit", params=query).context["page"]  # type: ignore[attr-defined]
    # 09:00 UTC = 09:00 GMT; events at 09:00..23:00 on the 10th, every other one by user1.
    assert page.total == 7
    assert {e.username for e in page.entries} == {"user1"}
    assert "action=view_device" in (page.next_query or "action=view_device")


def test_audit_log_shows_the_entries(harness: AppHarness) -> None:
    add_events(harness, 1)
    admin(harness)
    soup = BeautifulSoup(harness.client.get("/admin/audit").text, "html.parser")
    assert "10.0.0.9" in soup.get_text()
    assert soup.find("select", attrs={"name": "action"}) is not None
