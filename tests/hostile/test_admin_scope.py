"""Hostile review, issue 14 (1, 10, 11): an admin limited to one school cannot take over the trust,
bulk reads of identities are audited, a new password ends the user's API tokens, and anonymous
``/healthz`` says up or down only.

Two schools of one trust share one database (SQLite, and PostgreSQL when
``HALLMONITOR_TEST_POSTGRES_URL`` is set). ``school-a`` has its own admin (``head-it``, limited
to it); the trust has an admin of every school (``trust-it``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import httpx2 as httpx
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Select, func, select

from api.app import create_app
from monitor.store.api_tokens import create_api_token
from monitor.store.models import ApiTokenRecord, AuditEventRecord, SentReportRecord, UserRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import (
    FAST_HASHER,
    PASSWORD,
    AppHarness,
    csrf_token_in,
    make_settings,
)
from tests.monitor import conftest as databases
from tests.monitor.store.queries.factories import add_counter, add_device, add_incident

backend = databases.backend
engine_url = databases.engine_url
sqlite_template = databases.sqlite_template
postgres_server = databases.postgres_server
postgres_test_url = databases.postgres_test_url
"""Real databases of the store tests: each test gets a fresh one at the schema head."""

T = TypeVar("T")
SCHOOL_A, SCHOOL_B = "school-a", "school-b"
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Trust:
    """The app over the trust's database, and what is in it."""

    harness: AppHarness
    tokens: dict[str, str]
    """Each person's API token, by username."""
    incidents: dict[str, int]
    devices: dict[str, int]
    """One incident and one device per school."""

    def sign_in(self, username: str) -> None:
        self.harness.client.cookies.clear()
        response = self.harness.post_login(username, PASSWORD)
        assert response.status_code == 303, response.text

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        token = csrf_token_in(self.harness.client.get("/").text)
        return self.harness.client.post(
            path, data={"csrf_token": token, **data}, follow_redirects=False
        )

    def api(self, username: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[username]}"}
        return self.harness.client.get(path, headers=headers)

    def scalar(self, query: Select[T]) -> T | None:
        with self.harness.db() as db:
            return db.scalar(query)


def now() -> datetime:
    return datetime.now(UTC)


def new_token(html: str) -> str:
    """The token shown once in the answer to the create form."""
    shown = BeautifulSoup(html, "html.parser").find(id="new-token")
    assert shown is not None, "no new token on the page"
    return shown.get_text().strip()


PEOPLE = (
    ("trust-it", UserRole.ADMIN, None),
    ("head-it", UserRole.ADMIN, SCHOOL_A),
    ("head-a", UserRole.REVIEWER, SCHOOL_A),
    ("head-b", UserRole.REVIEWER, SCHOOL_B),
    ("it-b", UserRole.ADMIN, SCHOOL_B),
)


@pytest.fixture
def trust(engine_url: str) -> Iterator[Trust]:
    """Both schools, their people (each with an API token), an incident and a device each."""
    app = create_app(make_settings(engine_url), password_hasher=FAST_HASHER)
    with TestClient(app) as client:
        harness = AppHarness(client, app, app.state.settings)
        tokens, incidents, devices = {}, {}, {}
        with harness.db() as db:
            for username, role, site in PEOPLE:
                user = create_user(
                    db, username, username.title(), role, PASSWORD, site=site, hasher=FAST_HASHER
                )
                tokens[username] = create_api_token(db, user.id, f"{username} script")
            for site, mac in ((SCHOOL_A, "0a:00:00:00:00:01"), (SCHOOL_B, "0b:00:00:00:00:01")):
                device = ("10.1.4.23", mac)  # the same private address at both schools
                incidents[site] = add_incident(
                    db, site=site, device=device, host_name=f"{site}-laptop"
                ).id
                devices[site] = add_device(
                    db, site=site, device=device, host_name=f"{site}-laptop"
                ).id
            db.commit()
        yield Trust(harness, tokens, incidents, devices)


def token_count(trust: Trust, username: str) -> int:
    return (
        trust.scalar(
            select(func.count())
            .select_from(ApiTokenRecord)
            .join(UserRecord, UserRecord.id == ApiTokenRecord.user_id)
            .where(UserRecord.username == username)
        )
        or 0
    )


# --- 14.1: a site admin is scoped in every admin function --------------------------------------


def test_a_site_admin_cannot_mint_a_token_for_the_trust_wide_admin(trust: Trust) -> None:
    trust.sign_in("head-it")
    response = trust.post("/admin/tokens", {"username": "trust-it", "name": "takeover"})
    assert response.status_code == 404
    assert token_count(trust, "trust-it") == 1
    assert "hm_" not in response.text


def test_a_site_admin_cannot_mint_a_token_for_another_schools_user(trust: Trust) -> None:
    trust.sign_in("head-it")
    assert trust.post("/admin/tokens", {"username": "head-b", "name": "x"}).status_code == 404
    assert token_count(trust, "head-b") == 1


def test_a_site_admins_token_for_their_own_reviewer_reads_their_school_only(trust: Trust) -> None:
    trust.sign_in("head-it")
    response = trust.post("/admin/tokens", {"username": "head-a", "name": "nightly"})
    assert response.status_code == 200
    token = new_token(response.text)
    headers = {"Authorization": f"Bearer {token}"}
    client = trust.harness.client
    client.cookies.clear()
    own = client.get(f"/api/v1/incidents/{trust.incidents[SCHOOL_A]}", headers=headers)
    other = client.get(f"/api/v1/incidents/{trust.incidents[SCHOOL_B]}", headers=headers)
    assert (own.status_code, other.status_code) == (200, 404)


@pytest.mark.parametrize("target", ["trust-it", "head-b", "it-b"])
def test_a_site_admin_cannot_reset_a_password_outside_their_school(
    trust: Trust, target: str
) -> None:
    before = trust.scalar(select(UserRecord.password_hash).where(UserRecord.username == target))
    trust.sign_in("head-it")
    response = trust.post(f"/admin/users/{target}/password", {"password": NEW_PASSWORD})
    assert response.status_code == 404
    after = trust.scalar(select(UserRecord.password_hash).where(UserRecord.username == target))
    assert after == before
    assert trust.harness.post_login(target, NEW_PASSWORD).headers["location"].startswith("/login")


@pytest.mark.parametrize("target", ["trust-it", "head-b"])
def test_a_site_admin_cannot_disable_someone_outside_their_school(
    trust: Trust, target: str
) -> None:
    trust.sign_in("head-it")
    assert trust.post(f"/admin/users/{target}/disabled", {"disabled": "true"}).status_code == 404
    assert trust.scalar(select(UserRecord.disabled).where(UserRecord.username == target)) is False


def test_a_site_admins_users_page_lists_their_school_only(trust: Trust) -> None:
    trust.sign_in("head-it")
    text = trust.harness.client.get("/admin/users").text
    assert "head-a" in text and "head-it" in text
    assert "trust-it" not in text and "head-b" not in text and "it-b" not in text


def test_a_site_admin_cannot_add_a_trust_wide_or_another_schools_user(trust: Trust) -> None:
    trust.sign_in("head-it")
    new = {"display_name": "New", "role": "admin", "password": NEW_PASSWORD}
    refused = trust.post("/admin/users", {**new, "username": "sneaky", "site": SCHOOL_B})
    assert refused.status_code == 403
    assert "must be added by an admin without a site" in refused.text
    assert trust.scalar(select(UserRecord.id).where(UserRecord.username == "sneaky")) is None
    # Without a site the new admin is of the school-a admin's school, never of every school.
    added = trust.post("/admin/users", {**new, "username": "deputy-it", "site": ""})
    assert added.status_code == 303
    site = trust.scalar(select(UserRecord.site).where(UserRecord.username == "deputy-it"))
    assert site == SCHOOL_A


def test_a_trust_wide_admin_still_adds_users_for_any_school_or_every_school(trust: Trust) -> None:
    trust.sign_in("trust-it")
    new = {"display_name": "New", "role": "admin", "password": NEW_PASSWORD}
    assert (
        trust.post("/admin/users", {**new, "username": "b-it", "site": SCHOOL_B}).status_code == 303
    )
    assert trust.post("/admin/users", {**new, "username": "all-it", "site": ""}).status_code == 303
    sites = {
        name: trust.scalar(select(UserRecord.site).where(UserRecord.username == name))
        for name in ("b-it", "all-it")
    }
    assert sites == {"b-it": SCHOOL_B, "all-it": None}


def test_a_site_admin_sees_and_revokes_their_schools_tokens_only(trust: Trust) -> None:
    trust.sign_in("head-it")
    text = trust.harness.client.get("/admin/tokens").text
    assert "head-a script" in text
    assert "trust-it script" not in text and "head-b script" not in text
    other = trust.scalar(
        select(ApiTokenRecord.id)
        .join(UserRecord, UserRecord.id == ApiTokenRecord.user_id)
        .where(UserRecord.username == "trust-it")
    )
    assert trust.post(f"/admin/tokens/{other}/revoke", {}).status_code == 404
    assert trust.api("trust-it", "/api/v1/incidents").status_code == 200


@pytest.mark.parametrize(
    ("path", "what"),
    [("/admin/lists", "platform lists"), ("/admin/settings", "settings are shared")],
)
def test_a_site_admin_is_told_a_trust_wide_admin_must_handle_shared_things(
    trust: Trust, path: str, what: str
) -> None:
    trust.sign_in("head-it")
    response = trust.harness.client.get(path)
    assert response.status_code == 403
    assert what in response.text and "an admin without a site must do this" in response.text
    home = trust.harness.client.get("/").text
    assert path not in home  # not offered in the navigation either


def test_a_site_admin_cannot_change_the_shared_lists(trust: Trust) -> None:
    trust.sign_in("head-it")
    change = {
        "action": "add", "list_name": "allowlist", "suffix": "instagram.com",
        "reason": "let it through", "approved_by": "Head",
    }  # fmt: skip
    assert trust.post("/admin/lists/changes", change).status_code == 403
    assert trust.scalar(select(func.count()).select_from(AuditEventRecord).where(
        AuditEventRecord.action == "change_list")) == 0  # fmt: skip


def test_a_site_admin_reads_their_schools_audit_events_only(trust: Trust) -> None:
    # The trust's admin looks at school-b's device; school-a's reviewer at school-a's incident.
    assert trust.api("trust-it", f"/api/v1/devices/{trust.devices[SCHOOL_B]}").status_code == 200
    assert trust.api("head-a", f"/api/v1/incidents/{trust.incidents[SCHOOL_A]}").status_code == 200
    trust.sign_in("trust-it")  # a trust-wide login: the trust's own event
    body = trust.api("head-it", "/api/v1/audit?per_page=500").json()
    assert [(e["action"], e["site"]) for e in body["items"]] == [("view_incident", SCHOOL_A)]
    assert "0b:00:00:00:00:01" not in str(body)
    everything = trust.api("trust-it", "/api/v1/audit?per_page=500").json()
    assert {(e["action"], e["site"]) for e in everything["items"]} == {
        ("view_incident", SCHOOL_A), ("view_device", SCHOOL_B), ("login", None),
    }  # fmt: skip


def test_a_site_admins_audit_page_shows_their_school_only(trust: Trust) -> None:
    trust.sign_in("trust-it")
    assert trust.harness.client.get(f"/devices/{trust.devices[SCHOOL_B]}").status_code == 200
    trust.sign_in("head-it")
    text = trust.harness.client.get("/admin/audit").text
    assert "0b:00:00:00:00:01" not in text and "trust-it" not in text
    assert "head-it" in text  # their own sign-in is school-a's


# --- 14.10: bulk reads of identities are audited, once per page ---------------------------------


def audit_rows(trust: Trust, action: str) -> list[AuditEventRecord]:
    with trust.harness.db() as db:
        query = select(AuditEventRecord).where(AuditEventRecord.action == action)
        return list(db.scalars(query.order_by(AuditEventRecord.id)))


@pytest.mark.parametrize(
    ("resource", "query"), [("incidents", {"sort": "-start"}), ("devices", {})]
)
def test_a_big_list_page_of_identities_writes_one_audit_row_naming_the_query(
    trust: Trust, resource: str, query: dict[str, str]
) -> None:
    response = trust.api("trust-it", f"/api/v1/{resource}?per_page=500")
    assert response.status_code == 200 and len(response.json()["items"]) == 2
    [row] = audit_rows(trust, "view_list")
    assert (row.username, row.target_type, row.site) == ("trust-it", resource, None)
    assert row.detail == {
        "via": "api", "page": 1, "per_page": 500, "returned": 2, "total": 2, "filters": query,
    }  # fmt: skip


def test_a_list_read_audit_row_carries_the_filters_and_the_readers_school(trust: Trust) -> None:
    path = "/api/v1/incidents?per_page=500&platform=instagram&status=new&device=laptop"
    assert len(trust.api("head-a", path).json()["items"]) == 1
    [row] = audit_rows(trust, "view_list")
    assert row.site == SCHOOL_A
    assert row.detail["filters"] == {
        "platforms": ["instagram"], "statuses": ["new"], "device": "laptop", "sort": "-start",
    }  # fmt: skip


def test_an_empty_list_page_shows_no_one_and_writes_no_audit_row(trust: Trust) -> None:
    assert trust.api("trust-it", "/api/v1/devices?search=nobody-here").json()["items"] == []
    assert audit_rows(trust, "view_list") == []


def test_the_csv_export_and_the_api_list_share_one_audit_shape(trust: Trust) -> None:
    trust.sign_in("head-a")
    assert trust.harness.client.get("/incidents.csv?platform=instagram").status_code == 200
    [export] = audit_rows(trust, "export")
    assert export.detail == {"format": "csv", "filters": {"platform": "instagram"}}
    assert export.site == SCHOOL_A


# --- 14.11: a new password revokes API tokens; /healthz up or down for strangers -----------------


def test_changing_ones_own_password_revokes_ones_api_tokens_and_the_form_says_so(
    trust: Trust,
) -> None:
    trust.sign_in("head-a")
    form = trust.harness.client.get("/password").text
    assert "revokes your API tokens" in form
    response = trust.harness.client.post(
        "/password",
        data={
            "csrf_token": csrf_token_in(form),
            "current": PASSWORD,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "next": "/",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert response.status_code == 303
    trust.harness.client.cookies.clear()
    assert trust.api("head-a", "/api/v1/incidents").status_code == 401
    assert trust.api("head-b", "/api/v1/incidents").status_code == 200


def test_an_admins_password_reset_revokes_the_users_tokens_and_says_so(trust: Trust) -> None:
    trust.sign_in("head-it")
    response = trust.post("/admin/users/head-a/password", {"password": NEW_PASSWORD})
    assert response.status_code == 303
    page = trust.harness.client.get(response.headers["location"]).text
    assert "their API tokens were revoked" in page
    trust.harness.client.cookies.clear()
    assert trust.api("head-a", "/api/v1/incidents").status_code == 401
    [row] = [r for r in audit_rows(trust, "change_user") if r.detail.get("change") == "password"]
    assert (row.detail["tokens_revoked"], row.site) == (1, SCHOOL_A)


def test_anonymous_healthz_says_up_or_down_only(trust: Trust) -> None:
    with trust.harness.db() as db:
        add_counter(db, now().date(), "capture.frames", 1200, site=SCHOOL_B)
        db.add(
            SentReportRecord(
                kind="weekly", period="2026-W47", recipient="head@school-b.example",
                role="reviewer", status="failed", attempts=3, site=SCHOOL_B,
                last_error="smtp.trust.example: 451 try later", created_at=now(), sent_at=now(),
            )
        )  # fmt: skip
        db.commit()
    trust.harness.client.cookies.clear()
    response = trust.harness.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ready": True})
    assert SCHOOL_B not in response.text and "smtp" not in response.text
    trust.sign_in("trust-it")
    details = trust.harness.client.get("/healthz").json()
    assert details["checks"]["reports"]["failures"] == 1
    assert [s["site"] for s in details["checks"]["capture"]["sites"]] == [SCHOOL_B]
    trust.sign_in("head-it")  # school-a's admin: school-a's checks, nothing of school-b
    scoped = trust.harness.client.get("/healthz")
    assert scoped.json()["checks"]["reports"]["failures"] == 0
    assert SCHOOL_B not in scoped.text and "smtp" not in scoped.text
