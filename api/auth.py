"""Cookie sessions, bearer tokens and the login and logout steps.

A browser that signs in gets a random token in the ``hm_session`` cookie (HttpOnly,
SameSite=Lax, Secure under HTTPS); ``web_sessions`` keeps only the token's SHA-256, the
session's CSRF token and when it was created and last used. A session unused for
``web.session_idle_minutes`` or older than ``web.session_max_hours`` is refused and deleted.

SameSite is Lax rather than Strict: Strict would work with the login's Post/Redirect/Get, but a
link in the weekly email (a cross-site navigation) would then arrive without the cookie and
show a signed-in headteacher the login page. Lax still withholds the cookie from cross-site
POSTs, and every form carries the CSRF token anyway (``api/csrf.py``).

Integrations send ``Authorization: Bearer hm_...`` on ``/api/`` paths; the token acts as its
user and needs no CSRF token (a browser never adds that header by itself).

Password checking and the lockout live in ``monitor.store.passwords.verify_login``; this module adds
the audit rows (one per login, failed login and logout) and cookies. How fast anyone may try is
``api/throttle.py``'s business.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fastapi import Request, Response
from sqlalchemy.orm import Session

from monitor.config.review import WebSettings
from monitor.store.api_tokens import find_api_token_user
from monitor.store.audit import Actor, AuditAction, NamedActor, record_event
from monitor.store.passwords import LoginPolicy, LoginResult, verify_login
from monitor.store.queries.sessions import add_session, delete_session, live_session
from monitor.store.users import UserInfo, normalise_username

SESSION_COOKIE = "hm_session"


class AuthMethod(StrEnum):
    """How a request proved who it comes from."""

    SESSION = "session"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A request's user and how it signed in."""

    user: UserInfo
    method: AuthMethod
    csrf_token: str | None
    """The session's CSRF token; None for a bearer token (CSRF does not apply)."""


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: the cookie value (shown once) and its CSRF token."""

    token: str
    csrf_token: str


# --- request facts -------------------------------------------------------------------------


def client_address(request: Request) -> str | None:
    """The client's address; behind a trusted proxy, the one from X-Forwarded-For."""
    return request.client.host if request.client is not None else None


def is_https(request: Request, web: WebSettings) -> bool:
    """Whether cookies get the Secure flag (``web.secure_cookies``; "auto" follows the scheme,
    which a trusted proxy sets through X-Forwarded-Proto)."""
    if web.secure_cookies == "always":
        return True
    if web.secure_cookies == "never":
        return False
    return request.url.scheme == "https"


def cookie_path(request: Request) -> str:
    """Cookies belong to the app's path prefix (``web.root_path``), or ``/``."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") or "/"


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --- sessions --------------------------------------------------------------------------------


def start_session(db: Session, user_id: int, now: datetime, address: str | None) -> IssuedSession:
    """Create a session row (in the caller's transaction) and return the cookie token."""
    issued = IssuedSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    add_session(db, issued.token, issued.csrf_token, user_id, now, address)
    return issued


def find_session(db: Session, token: str, now: datetime, web: WebSettings) -> Authenticated | None:
    """The live session for a cookie token, or None (``monitor.store.queries.sessions``:
    unknown, idle for longer than ``session_idle_minutes``, older than ``session_max_hours``,
    or of a disabled user; an expired session's row is deleted). The caller commits."""
    found = live_session(
        db,
        token,
        now,
        idle=timedelta(minutes=web.session_idle_minutes),
        max_age=timedelta(hours=web.session_max_hours),
    )
    return (
        None if found is None else Authenticated(found.user, AuthMethod.SESSION, found.csrf_token)
    )


def end_session(db: Session, token: str) -> None:
    """Delete the session of this cookie token (in the caller's transaction)."""
    delete_session(db, token)


def find_token(db: Session, token: str, now: datetime) -> Authenticated | None:
    """The user a bearer token acts for, or None (unknown, revoked, disabled user)."""
    user = find_api_token_user(db, token, now)
    return None if user is None else Authenticated(user, AuthMethod.TOKEN, None)


# --- cookies ---------------------------------------------------------------------------------


def set_session_cookie(response: Response, request: Request, web: WebSettings, token: str) -> None:
    """Send the session cookie: a browser-session cookie (gone when the browser closes)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=cookie_path(request),
        secure=is_https(request, web),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request, web: WebSettings) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE,
        path=cookie_path(request),
        secure=is_https(request, web),
        httponly=True,
        samesite="lax",
    )


# --- login and logout ------------------------------------------------------------------------


def log_in(
    db: Session,
    username: str,
    password: str,
    *,
    now: datetime,
    policy: LoginPolicy,
    address: str | None,
) -> tuple[LoginResult, IssuedSession | None]:
    """Check a login, write its one audit row and, on success, start a session.

    ``verify_login`` commits the attempt's count before it hashes; the caller commits the rest
    (the success's columns, the session and the audit row) in a second short transaction.
    """
    result = verify_login(db, username, password, now, policy)
    if result.user is None or not result.ok:
        detail: dict[str, object] = {"reason": result.outcome.value}
        if result.locked_until is not None:
            detail["locked_until"] = result.locked_until.isoformat()
        record_event(
            db,
            user=NamedActor(None, normalise_username(username)),
            action=AuditAction.LOGIN_FAILED,
            target_type="user",
            target_id=None if result.user is None else result.user.id,
            detail=detail,
            address=address,
            at=now,
            site=None if result.user is None else result.user.site,
        )
        return result, None
    issued = start_session(db, result.user.id, now, address)
    record_event(
        db,
        user=NamedActor(result.user.id, result.user.username),
        action=AuditAction.LOGIN,
        target_type=None,
        target_id=None,
        detail={"method": AuthMethod.SESSION.value},
        address=address,
        at=now,
        site=result.user.site,
    )
    return result, issued


def log_out(db: Session, token: str, user: Actor, *, now: datetime, address: str | None) -> None:
    """End the session and write the logout audit row (of the user's site, when the actor is a
    signed-in user, which has one); the caller commits."""
    end_session(db, token)
    site: str | None = getattr(user, "site", None)
    record_event(
        db,
        user=user,
        action=AuditAction.LOGOUT,
        target_type=None,
        target_id=None,
        detail={},
        address=address,
        at=now,
        site=site,
    )
