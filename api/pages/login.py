"""Signing in and out: the login form (Post/Redirect/Get) and the logout button's POST.

Every failed login gets the same answer (a redirect to ``/login?failed=1``) whether the name
is unknown, the password wrong, or the account locked or disabled, so the page never tells
which accounts exist. The audit log (admins only) records the reason. Too many attempts are
refused with 429 before any password is checked (``api/throttle.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.auth import (
    SESSION_COOKIE,
    AuthMethod,
    clear_session_cookie,
    client_address,
    is_https,
    log_in,
    log_out,
    set_session_cookie,
)
from api.csrf import clear_login_csrf_cookie, login_csrf_token, set_login_csrf_cookie
from api.deps import (
    SessionDep,
    SettingsDep,
    VisitorDep,
    get_login_policy,
    utcnow,
)
from api.pages import NavLink, redirect_to, render_page
from api.params import Text
from api.throttle import LoginThrottle, Refusal
from monitor.store.passwords import LoginPolicy
from monitor.store.users import PASSWORD_MAX_LENGTH, normalise_username

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = ()

NEXT_MAX_LENGTH = 2000
NOT_AFTER_LOGIN = ("/login", "/logout")


@dataclass(frozen=True, slots=True)
class LoginPage:
    """The sign-in form."""

    site_name: str
    next: str
    """Where to go after signing in (a path inside the app)."""
    csrf_token: str
    failed: bool
    """The last attempt failed (one message for every reason)."""
    signed_out: bool
    session_ended: bool
    """The browser's session timed out (idle or too old)."""


class LoginForm(BaseModel):
    """What the login form posts (the CSRF token is checked before this is read)."""

    username: Text = Field(default="", max_length=150)
    password: Text = Field(default="", max_length=PASSWORD_MAX_LENGTH)
    next: Text = Field(default="/", max_length=NEXT_MAX_LENGTH)


def safe_next(value: str | None) -> str:
    """``value`` if it is a path inside this app, else ``/`` (no open redirects)."""
    if (
        not value
        or len(value) > NEXT_MAX_LENGTH
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or value.split("?", 1)[0] in NOT_AFTER_LOGIN
    ):
        return "/"
    return value


def too_many_attempts(refusal: Refusal) -> HTTPException:
    """The 429 answer to a throttled sign-in: what happened and when to try again."""
    return HTTPException(
        status_code=429,
        detail=refusal.message,
        headers={"Retry-After": str(refusal.retry_after_s)},
    )


def _after_login(request: Request, next_path: str) -> RedirectResponse:
    root: str = request.scope.get("root_path", "")
    return RedirectResponse(root.rstrip("/") + safe_next(next_path), status_code=303)


@router.get("/login", name="login")
def login_form(
    request: Request,
    visitor: VisitorDep,
    settings: SettingsDep,
    next: str = "/",
    failed: bool = False,
    signed_out: bool = False,
    ended: bool = False,
) -> Response:
    """The sign-in form; a signed-in browser goes straight on to ``next``."""
    if visitor.user is not None and visitor.method is AuthMethod.SESSION:
        return _after_login(request, next)
    token = login_csrf_token(request)
    request.state.csrf_token = token
    page = LoginPage(
        site_name=settings.site.name,
        next=safe_next(next),
        csrf_token=token,
        failed=failed,
        signed_out=signed_out,
        session_ended=ended or visitor.session_ended,
    )
    response = render_page(request, "pages/login/form.html", page)
    set_login_csrf_cookie(response, request, token, is_https(request, settings.web))
    if visitor.session_ended:
        clear_session_cookie(response, request, settings.web)
    return response


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    form: Annotated[LoginForm, Form()],
    db: SessionDep,
    settings: SettingsDep,
    policy: Annotated[LoginPolicy, Depends(get_login_policy)],
) -> Response:
    """Check the password; on success start a session, on failure show the form again.

    Too many attempts from one address or for one account, or too many at once, get 429 with
    Retry-After (``api/throttle.py``) before any password is checked.
    """
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    refusal = throttle.refusal(address, normalise_username(form.username))
    if refusal is not None:
        throttle.note_refused(address, refusal)
        raise too_many_attempts(refusal)
    with throttle.slot() as busy:
        if busy is not None:
            throttle.note_refused(address, busy)
            raise too_many_attempts(busy)
        result, issued = log_in(
            db, form.username, form.password, now=utcnow(), policy=policy, address=address
        )
        db.commit()
    if issued is None:
        return redirect_to(request, "login", query={"failed": "1", "next": safe_next(form.next)})
    response = _after_login(request, form.next)
    set_session_cookie(response, request, settings.web, issued.token)
    clear_login_csrf_cookie(response, request, is_https(request, settings.web))
    return response


@router.post("/logout", name="logout")
def logout(
    request: Request, visitor: VisitorDep, db: SessionDep, settings: SettingsDep
) -> Response:
    """End this browser's session (the CSRF check has already run) and show the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    if visitor.user is not None and visitor.method is AuthMethod.SESSION and token:
        log_out(db, token, visitor.user, now=utcnow(), address=client_address(request))
        db.commit()
    response = redirect_to(request, "login", query={"signed_out": "1"})
    clear_session_cookie(response, request, settings.web)
    return response
