"""Choosing a new password: required after signing in with a one-time password.

``hallmonitor up`` creates the first administrator with a one-time password; until
that user chooses their own, every page sends them here (``api.deps.require_user``). Any
signed-in user may also change their password here. The current password is asked again (it
goes through ``verify_login``, so wrong guesses count towards the lockout); the change signs
out every other session of the user and revokes their API tokens (the form says so), and this
browser gets a fresh session. When ``admin`` changes theirs, the file that held the first
start's one-time password goes (``monitor.first_admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from api.auth import AuthMethod, client_address, set_session_cookie, start_session
from api.deps import (
    LoginRequired,
    SessionDep,
    SettingsDep,
    VisitorDep,
    get_login_policy,
    utcnow,
)
from api.pages import NavLink, render_page
from api.pages.login import NEXT_MAX_LENGTH, safe_next
from api.params import Text
from monitor.first_admin import forget_password_file
from monitor.store.audit import AuditAction, record_event
from monitor.store.passwords import LoginPolicy, set_password, verify_login
from monitor.store.users import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, check_password_policy

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = ()


@dataclass(frozen=True, slots=True)
class PasswordPage:
    """The change-password form."""

    username: str
    required: bool
    """The user signed in with a one-time password and must choose one before going on."""
    next: str
    problem: str | None
    """Why the last attempt was refused (one sentence), or None."""
    min_length: int = PASSWORD_MIN_LENGTH


class ChangePasswordForm(BaseModel):
    """What the form posts (the CSRF token is checked before this is read)."""

    current: Text = Field(default="", max_length=PASSWORD_MAX_LENGTH)
    new: Text = Field(default="", max_length=PASSWORD_MAX_LENGTH)
    confirm: Text = Field(default="", max_length=PASSWORD_MAX_LENGTH)
    next: Text = Field(default="/", max_length=NEXT_MAX_LENGTH)


def _session_user(visitor: VisitorDep) -> None:
    """Only a browser session may be here (a token has no password to change)."""
    if visitor.user is None or visitor.method is not AuthMethod.SESSION:
        raise LoginRequired(visitor)


SignedIn = Depends(_session_user)


def password_problem(current: str, new: str, confirm: str) -> str | None:
    """What is wrong with the new password (before the current one is checked), or None."""
    if new != confirm:
        return "The two new passwords are not the same."
    if new == current:
        return "The new password must differ from the current one."
    try:
        check_password_policy(new)
    except ValueError as e:
        return str(e)[:1].upper() + str(e)[1:].rstrip(".") + "."
    return None


def _form(
    request: Request, visitor: VisitorDep, next_path: str, problem: str | None, status: int
) -> Response:
    user = visitor.user
    assert user is not None  # checked by _session_user
    page = PasswordPage(user.username, user.must_change_password, safe_next(next_path), problem)
    return render_page(request, "pages/password/form.html", page, status_code=status)


@router.get("/password", name="password", dependencies=[SignedIn])
def password_form(request: Request, visitor: VisitorDep, next: str = "/") -> Response:
    """The form; a user with a one-time password is told why they are here."""
    return _form(request, visitor, next, None, 200)


@router.post("/password", name="password_submit", dependencies=[SignedIn])
def password_submit(
    request: Request,
    form: Annotated[ChangePasswordForm, Form()],
    visitor: VisitorDep,
    db: SessionDep,
    settings: SettingsDep,
    policy: Annotated[LoginPolicy, Depends(get_login_policy)],
) -> Response:
    """Check the current password, set the new one, start a fresh session, go on to ``next``."""
    user = visitor.user
    assert user is not None  # checked by _session_user
    problem = password_problem(form.current, form.new, form.confirm)
    if problem is not None:
        return _form(request, visitor, form.next, problem, 400)
    now = utcnow()
    address = client_address(request)
    result = verify_login(db, user.username, form.current, now, policy)
    db.commit()  # the attempt counts towards the lockout; the new hash runs with no transaction
    if not result.ok:
        problem = "The current password is wrong (or the account is locked for a while)."
        return _form(request, visitor, form.next, problem, 400)
    changed = set_password(db, user.username, form.new, hasher=policy.hasher, now=now)
    issued = start_session(db, user.id, now, address)
    record_event(
        db,
        user=user,
        action=AuditAction.CHANGE_USER,
        target_type="user",
        target_id=user.id,
        detail={
            "change": "password",
            "one_time": user.must_change_password,
            "tokens_revoked": changed.tokens_revoked,
        },
        address=address,
        at=now,
        site=user.site,
    )
    db.commit()
    forget_password_file(settings.database.data_dir, user.username)
    root: str = request.scope.get("root_path", "")
    response = RedirectResponse(root.rstrip("/") + safe_next(form.next), status_code=303)
    set_session_cookie(response, request, settings.web, issued.token)
    return response
