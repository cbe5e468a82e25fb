"""The review app under test: ``TestClient(create_app(settings))`` on a fresh migrated SQLite
file per test, and helpers to sign in as a role.

``app_client(**web)`` builds a client (``web`` overrides ``settings.web``) and returns an
``AppHarness``; ``harness.sign_in(UserRole.REVIEWER)`` creates a user of that role and signs in
through the real login form. Passwords are hashed with a cheap argon2 profile (``FAST_HASHER``)
so that a login costs well under a millisecond instead of a third of a second.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
from argon2 import PasswordHasher
from bs4 import BeautifulSoup
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import CurrentUser, SessionDep, UserDep, VisitorDep, require_role
from monitor.config.settings import Settings
from monitor.errors import NotFound
from monitor.store.audit import record_event
from monitor.store.db import upgrade_schema
from monitor.store.models import AuditEventRecord
from monitor.store.users import UserInfo, create_user
from monitor.store.workflow import UserRole

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def api_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session (``alembic upgrade head``)."""
    path = tmp_path_factory.mktemp("api-schema") / "template.sqlite3"
    upgrade_schema(f"sqlite:///{path}")
    return path


@pytest.fixture
def db_url(api_sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh copy of the migrated database for one test."""
    path = tmp_path / f"app-{uuid.uuid4().hex[:8]}.sqlite3"
    shutil.copyfile(api_sqlite_template, path)
    return f"sqlite:///{path}"


def make_settings(db_url: str, *, data_dir: Path | None = None, **web: Any) -> Settings:
    database: dict[str, str] = {"url": db_url}
    if data_dir is not None:
        database["data_dir"] = str(data_dir)
    return Settings.model_validate({"database": database, "web": web})


def csrf_token_in(html: str) -> str:
    """The value of the first ``csrf_token`` field of a page."""
    field_ = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "csrf_token"})
    assert field_ is not None, "no csrf_token field on the page"
    value = field_.get("value")
    assert isinstance(value, str)
    return value


@dataclass
class AppHarness:
    """A running app, its client and its database."""

    client: TestClient
    app: FastAPI
    settings: Settings
    users: dict[str, UserInfo] = field(default_factory=dict)

    def db(self) -> Session:
        return Session(self.app.state.engine)

    def add_user(
        self,
        role: UserRole,
        username: str | None = None,
        *,
        password: str = PASSWORD,
        site: str | None = None,
    ) -> UserInfo:
        name = username or f"{role.value}{len(self.users) + 1}"
        with self.db() as db:
            user = create_user(
                db, name, f"{role.value.title()} {name}", role, password,
                site=site, hasher=FAST_HASHER,
            )  # fmt: skip
            db.commit()
        self.users[name] = user
        return user

    def login_token(self) -> str:
        """Open the login page and return its form's CSRF token (sets the cookie too)."""
        return csrf_token_in(self.client.get("/login").text)

    def post_login(self, username: str, password: str, *, next_path: str = "/") -> Any:
        token = self.login_token()
        return self.client.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": token,
                "next": next_path,
            },
            follow_redirects=False,
        )

    def sign_in(
        self,
        role: UserRole = UserRole.REVIEWER,
        username: str | None = None,
        *,
        site: str | None = None,
    ) -> UserInfo:
        """Create a user with ``role`` (limited to ``site``) and sign in through the login form."""
        user = self.add_user(role, username, site=site)
        response = self.post_login(user.username, PASSWORD)
        assert response.status_code == 303, response.text
        assert "hm_session" in self.client.cookies
        return user

    def session_csrf(self) -> str:
        """The signed-in session's CSRF token, read from the sign-out form on the home page."""
        return csrf_token_in(self.client.get("/").text)

    def audit_count(self, action: str | None = None) -> int:
        query = select(func.count()).select_from(AuditEventRecord)
        if action is not None:
            query = query.where(AuditEventRecord.action == action)
        with self.db() as db:
            return db.scalar(query) or 0

    def audit_rows(self) -> list[AuditEventRecord]:
        with self.db() as db:
            return list(db.scalars(select(AuditEventRecord).order_by(AuditEventRecord.id)))


AppFactory = Callable[..., AppHarness]


@pytest.fixture
def app_client(db_url: str) -> Iterator[AppFactory]:
    """Build ``AppHarness``es: ``app_client(routers=[...], client=(host, port),
    raise_server_exceptions=..., base_url=..., data_dir=..., **web_settings)``; e.g.
    ``app_client(root_path="/monitor", session_idle_minutes=5)``."""
    clients: list[TestClient] = []

    def build(
        *,
        routers: tuple[APIRouter, ...] = (),
        client: tuple[str, int] = ("testclient", 50000),
        raise_server_exceptions: bool = True,
        base_url: str = "http://testserver",
        data_dir: Path | None = None,
        **web: Any,
    ) -> AppHarness:
        settings = make_settings(db_url, data_dir=data_dir, **web)
        app = create_app(settings, password_hasher=FAST_HASHER)
        for router in routers:
            app.include_router(router)
        test_client = TestClient(
            app,
            client=client,
            raise_server_exceptions=raise_server_exceptions,
            base_url=base_url,
        )
        test_client.__enter__()
        clients.append(test_client)
        return AppHarness(test_client, app, settings)

    yield build
    for test_client in reversed(clients):
        test_client.__exit__(None, None, None)


@pytest.fixture
def harness(app_client: AppFactory) -> AppHarness:
    """An app with default settings."""
    return app_client()


def probe_router() -> APIRouter:
    """Test-only routes: a page form, API probes, a role-limited page and failing handlers."""
    router = APIRouter()

    @router.post("/test/form")
    def test_form(user: UserDep, db: SessionDep) -> PlainTextResponse:
        record_event(
            db, user=user, action="test_change", target_type=None, target_id=None,
            detail={}, address=None,
        )  # fmt: skip
        db.commit()
        return PlainTextResponse(f"changed by {user.username}")

    @router.get("/api/test/probe")
    def probe(visitor: VisitorDep, user: UserDep) -> dict[str, str]:
        return {"username": user.username, "method": str(visitor.method)}

    @router.post("/api/test/probe")
    def probe_change(user: UserDep) -> dict[str, str]:
        return {"changed_by": user.username}

    @router.get("/test/admin-only")
    def admin_only(
        user: Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))],
    ) -> PlainTextResponse:
        return PlainTextResponse(f"hello {user.username}")

    @router.get("/api/test/reviewers")
    def reviewers_only(
        user: Annotated[CurrentUser, Depends(require_role(UserRole.REVIEWER, UserRole.ADMIN))],
    ) -> dict[str, str]:
        return {"role": user.role.value}

    @router.get("/test/boom")
    def boom() -> None:
        raise RuntimeError("deliberate failure")

    @router.get("/api/test/boom")
    def api_boom() -> None:
        raise RuntimeError("deliberate failure")

    @router.get("/test/missing")
    @router.get("/api/test/missing")
    def missing() -> None:
        raise NotFound("no incident 42", "see the queue")

    @router.get("/test/key-error")
    def key_error() -> None:
        raise KeyError("a bug, not a missing item")

    @router.get("/api/test/number/{value}")
    def number(value: int) -> dict[str, int]:
        return {"value": value}

    @router.get("/test/number/{value}")
    def page_number(value: int) -> PlainTextResponse:
        return PlainTextResponse(str(value))

    return router
