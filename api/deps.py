"""Dependencies every page and API handler declares: database, settings, who is asking.

``SessionDep`` is a SQLAlchemy ``Session`` for the request; the handler commits (a handler
that writes, or audits a view, calls ``db.commit()`` before it returns) and anything not
committed is rolled back when the request ends. ``UserDep`` is any signed-in user;
``require_role(UserRole.REVIEWER, ...)`` admits only those roles (403 for the others). An
anonymous request for a page is redirected to ``/login?next=...``; an anonymous request under
``/api/`` gets 401 JSON. Roles are checked here, on the server, never only in templates.

Who is asking is worked out once per request (``get_visitor``) in its own short transaction:
a session's ``last_seen_at`` moves on, an expired session is deleted, a bearer token's
``last_used_at`` is noted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from api.auth import (
    SESSION_COOKIE,
    Authenticated,
    AuthMethod,
    bearer_token,
    find_session,
    find_token,
)
from monitor.config.settings import Settings
from monitor.store.passwords import LoginPolicy
from monitor.store.users import UserInfo
from monitor.store.workflow import UserRole

API_PREFIX = "/api/"


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The signed-in user of a request, as handlers and templates see it."""

    id: int
    username: str
    display_name: str
    role: UserRole
    site: str | None
    """The one school this user is limited to; None sees every site."""
    must_change_password: bool = False
    """Signed in with a one-time password: every page but the password form sends them there."""

    @classmethod
    def from_info(cls, user: UserInfo) -> CurrentUser:
        return cls(
            user.id,
            user.username,
            user.display_name,
            user.role,
            user.site,
            user.must_change_password,
        )


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who sent a request: a user (by session or token) or nobody."""

    user: CurrentUser | None
    method: AuthMethod | None = None
    csrf_token: str | None = None
    """The session's CSRF token, which every form of the session must send back."""
    session_ended: bool = False
    """A session cookie came with the request but its session is over (or unknown)."""
    token_refused: bool = False
    """A bearer token came with the request but is unknown, revoked or its user disabled."""


ANONYMOUS = Visitor(None)


class LoginRequired(Exception):
    """Raised by ``require_user`` for an anonymous request; the app turns it into a redirect to
    the login page (pages) or 401 JSON (``/api/``). With ``password_change`` the user is signed
    in with a one-time password: a redirect to the password form (pages) or 403 JSON."""

    def __init__(self, visitor: Visitor, *, password_change: bool = False) -> None:
        super().__init__("choose a new password first" if password_change else "sign in first")
        self.visitor = visitor
        self.password_change = password_change


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def route_path(request: Request) -> str:
    """The request path inside the app: without the ``web.root_path`` prefix."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def is_api_request(request: Request) -> bool:
    """Whether the request is for the JSON API (errors as JSON, bearer tokens accepted)."""
    return route_path(request).startswith(API_PREFIX)


# --- database and settings -------------------------------------------------------------------


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def session_factory(request: Request) -> sessionmaker[Session]:
    """The app's session factory (made by the lifespan in ``api/app.py``)."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_db(request: Request) -> Iterator[Session]:
    """A session for one request; uncommitted work is rolled back at the end."""
    with session_factory(request)() as db:
        yield db


def get_login_policy(request: Request) -> LoginPolicy:
    """Throttling from ``settings.web`` and the app's password hasher."""
    web = get_settings(request).web
    return LoginPolicy(
        max_failures=web.login_max_failures,
        lockout=timedelta(minutes=web.login_lockout_minutes),
        hasher=request.app.state.password_hasher,
    )


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# --- who is asking ---------------------------------------------------------------------------


def get_visitor(request: Request) -> Visitor:
    """Who sent this request; worked out once and kept on ``request.state.visitor``."""
    known: Visitor | None = getattr(request.state, "visitor", None)
    if known is not None:
        return known
    visitor = _authenticate(request)
    request.state.visitor = visitor
    return visitor


def _authenticate(request: Request) -> Visitor:
    settings = get_settings(request)
    token = bearer_token(request) if is_api_request(request) else None
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is None and not cookie:
        return ANONYMOUS
    now = utcnow()
    with session_factory(request)() as db:
        found: Authenticated | None
        if token is not None:
            found = find_token(db, token, now)
        else:
            found = find_session(db, cookie or "", now, settings.web)
        db.commit()
    if found is None:
        return Visitor(None, session_ended=token is None, token_refused=token is not None)
    return Visitor(CurrentUser.from_info(found.user), found.method, found.csrf_token)


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def require_user(visitor: VisitorDep) -> CurrentUser:
    """The signed-in user; anonymous requests, and users who still have a one-time password,
    raise ``LoginRequired``."""
    if visitor.user is None:
        raise LoginRequired(visitor)
    if visitor.user.must_change_password:
        raise LoginRequired(visitor, password_change=True)
    return visitor.user


UserDep = Annotated[CurrentUser, Depends(require_user)]


def require_role(*roles: UserRole) -> Callable[[CurrentUser], CurrentUser]:
    """A dependency admitting only users with one of ``roles`` (others get 403).

    Use as ``user: Annotated[CurrentUser, Depends(require_role(UserRole.REVIEWER))]`` or in a
    router's ``dependencies=[Depends(require_role(...))]``.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    allowed = frozenset(roles)

    def check_role(user: UserDep) -> CurrentUser:
        if user.role not in allowed:
            raise HTTPException(status_code=403, detail="Your role does not give access to this.")
        return user

    check_role.__name__ = "require_" + "_or_".join(sorted(r.value for r in allowed))
    return check_role
