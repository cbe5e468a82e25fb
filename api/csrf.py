"""Cross-site request forgery protection for every state-changing request.

``csrf_protect`` is an app-wide dependency (``create_app`` installs it), so a new POST route is
protected without doing anything. For POST, PUT, PATCH and DELETE:

- a bearer-token request (``/api/`` only) needs nothing: browsers never add that header (a
  refused token gets 401 here);
- a signed-in browser must send its session's token, as the form field ``csrf_token`` (pages:
  ``{{ csrf_field() }}`` in the form) or the header ``X-CSRF-Token`` (JSON calls);
- an anonymous browser (the login form) must send the token of the ``hm_login_csrf`` cookie
  that the login page set (a double-submit token: no session exists yet).

Anything else is refused with 403 before the handler runs.
"""

from __future__ import annotations

import hmac
import re
import secrets

from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import AuthMethod, cookie_path
from api.deps import LoginRequired, get_visitor

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "hm_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
REFUSED = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)


def new_token() -> str:
    """A fresh random token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def login_csrf_token(request: Request) -> str:
    """The login form's token: the browser's ``hm_login_csrf`` cookie if it has a good one, so
    that two open login tabs both work; else a new one."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if TOKEN_PATTERN.fullmatch(current) else new_token()


def set_login_csrf_cookie(response: Response, request: Request, token: str, secure: bool) -> None:
    """Send the login form's token as a cookie (Strict: only this site's own pages send it)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=cookie_path(request),
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_login_csrf_cookie(response: Response, request: Request, secure: bool) -> None:
    """Forget the login form's token once signed in."""
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path=cookie_path(request),
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def tokens_match(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


async def sent_token(request: Request) -> str | None:
    """The token a request sent: the ``X-CSRF-Token`` header, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(FORM_TYPES):
        return None
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: refuse a state-changing request without the right token (403)."""
    if request.method in SAFE_METHODS:
        return
    visitor = await run_in_threadpool(get_visitor, request)
    if visitor.method is AuthMethod.TOKEN:
        return
    if visitor.token_refused:
        raise LoginRequired(visitor)
    expected = (
        visitor.csrf_token if visitor.user is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
    )
    if not tokens_match(await sent_token(request), expected):
        raise HTTPException(status_code=403, detail=REFUSED)
