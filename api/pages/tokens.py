"""The admin's page for API tokens: list them, create one for a user, revoke one.

Admin only, forms with CSRF, one audit row per change (``create_api_token`` or
``revoke_api_token``, with the token's name and owner, never the token). The database keeps
only a token's hash, so the clear token exists once: the answer to the create form renders it
directly (no redirect, ``Cache-Control: no-store``) and says it will not be shown again.
Revoking keeps the record (for the audit trail) and answers with Post/Redirect/Get.

An admin limited to one school (``api.access``) sees, creates and revokes tokens of that
school's users only: never one acting for another school's user or a trust-wide account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from pydantic import BaseModel, Field

from api.access import check_user_in_scope, in_scope, users_in_scope
from api.auth import client_address
from api.deps import CurrentUser, SessionDep, require_role
from api.pages import NavLink, redirect_to, render_page
from api.params import Text, TokenId
from monitor.store.api_tokens import (
    ApiTokenInfo,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from monitor.store.audit import AuditAction, record_event
from monitor.store.users import UserInfo, get_user, list_users
from monitor.store.workflow import UserRole

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "API tokens",
        "token_list",
        frozenset({UserRole.ADMIN}),
        "Tokens that let scripts use the JSON API as a user: create and revoke them.",
    ),
)

Admin = Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))]

TOKEN_NOTICES = {"revoked": "The token was revoked: requests using it are refused from now on."}
"""Fixed confirmations a redirect may ask for (never text from the URL)."""


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: the only time its clear text is shown."""

    token: str
    name: str
    username: str


@dataclass(frozen=True, slots=True)
class TokensPage:
    """Every API token (newest first, without the token itself) and the create form."""

    tokens: tuple[ApiTokenInfo, ...]
    users: tuple[UserInfo, ...]
    """Who a token can be created for."""
    created: NewToken | None
    """Set only in the answer to the create form."""
    notice: str | None


class CreateTokenForm(BaseModel):
    """A new token: whose it is and what uses it."""

    username: Text = Field(min_length=1, max_length=150)
    name: Text = Field(min_length=1, max_length=100)


def _page(
    db: SessionDep, user: CurrentUser, created: NewToken | None = None, notice: str | None = None
) -> TokensPage:
    return TokensPage(
        tokens=tuple(t for t in list_api_tokens(db) if in_scope(user, t.site)),
        users=tuple(u for u in users_in_scope(user, list_users(db)) if not u.disabled),
        created=created,
        notice=notice,
    )


@router.get("/admin/tokens", name="token_list")
def token_list(request: Request, user: Admin, db: SessionDep, done: str = "") -> Response:
    """Every API token (of the admin's school, when limited): name, owner, created, last used,
    revoked."""
    page = _page(db, user, notice=TOKEN_NOTICES.get(done))
    return render_page(request, "pages/tokens/list.html", page)


@router.post("/admin/tokens", name="create_token")
def create_token(
    request: Request, user: Admin, db: SessionDep, form: Annotated[CreateTokenForm, Form()]
) -> Response:
    """Create a token for a user and show it once, in this answer (not a redirect)."""
    owner = check_user_in_scope(user, get_user(db, form.username))
    if owner.disabled:
        raise HTTPException(400, "That user is disabled: enable them first.")
    try:
        token = create_api_token(db, owner.id, form.name)
    except ValueError as error:
        raise HTTPException(400, f"The token was not created: {error}.") from None
    # The new token is this user's newest with this name: its id is the highest.
    token_id = max(t.id for t in list_api_tokens(db) if t.user_id == owner.id)
    record_event(
        db, user=user, action=AuditAction.CREATE_API_TOKEN, target_type="api_token",
        target_id=token_id, detail={"name": form.name.strip(), "username": owner.username},
        address=client_address(request), site=owner.site,
    )  # fmt: skip
    db.commit()
    created = NewToken(token, form.name.strip(), owner.username)
    return render_page(
        request,
        "pages/tokens/list.html",
        _page(db, user, created=created),
        headers={"Cache-Control": "no-store"},
    )


@router.post("/admin/tokens/{token_id}/revoke", name="revoke_token")
def revoke_token(request: Request, token_id: TokenId, user: Admin, db: SessionDep) -> Response:
    """Revoke a token (the record stays, marked revoked)."""
    known = {t.id: t for t in list_api_tokens(db)}
    token = known.get(token_id)
    if token is None or not in_scope(user, token.site):
        raise HTTPException(404, f"No API token {token_id}.")
    revoke_api_token(db, token_id)
    record_event(
        db, user=user, action=AuditAction.REVOKE_API_TOKEN, target_type="api_token",
        target_id=token_id, detail={"name": token.name, "username": token.username},
        address=client_address(request), site=token.site,
    )  # fmt: skip
    db.commit()
    return redirect_to(request, "token_list", query={"done": "revoked"})
