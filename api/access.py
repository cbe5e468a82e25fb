"""Who may act on which school: the site rules of every admin function, in one place.

A user with a site (``hallmonitor users add NAME --role admin --site school-a``) is limited to
that school of the trust in everything, pages and ``/api/v1`` alike:

- incidents, devices, statistics and exports: the queries take ``user.site``
  (``monitor.store.queries.scope.site_condition``), so another school's row is a 404;
- users and API tokens: only the people of their site (``check_user_in_scope``: anyone else,
  including a trust-wide account, is a 404 exactly like a missing one); a new user gets their
  site (``site_for_new_user``: another site, or none, is a 403);
- the audit log: only events of their site (``audit_scope``);
- what every school shares (the platform lists, the review app's settings): refused with a 403
  saying a trust-wide admin must do it (``TrustWideAdmin``).

A user without a site sees and manages every school. Each route's decision is one of
``SiteRule``; ``tests/api/test_routes_roles.py`` checks every route against its rule with
a site-limited user of each role over two schools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException

from api.deps import CurrentUser, require_role
from monitor.store.users import UserInfo
from monitor.store.workflow import UserRole


class SiteRule(StrEnum):
    """What a route does for a user limited to one school."""

    NONE = "none"
    """No school's data: sign-in, the privacy notice, readiness, one's own password."""
    SCOPED = "scoped"
    """Narrowed to the user's school: another school's item answers 404, lists leave it out."""
    TRUST_WIDE = "trust_wide"
    """Shared by every school: refused (403) to a user limited to one."""


def trust_wide_refusal(what: str) -> HTTPException:
    """The 403 for a site-limited user asking for something every school shares."""
    return HTTPException(
        403,
        f"{what} are shared by every school of the trust: an admin without a site must do "
        "this (yours is limited to one school).",
    )


def require_trust_wide(what: str) -> Callable[[CurrentUser], CurrentUser]:
    """A dependency admitting admins without a site only (``what`` names the shared thing in
    the 403: "The platform lists")."""

    def check_trust_wide(user: Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))]) -> CurrentUser:  # fmt: skip
        if user.site is not None:
            raise trust_wide_refusal(what)
        return user

    return check_trust_wide


def in_scope(user: CurrentUser, site: str | None) -> bool:
    """Whether ``user`` may see or change something of ``site`` (None: the trust's own, which
    only a user without a site may)."""
    return user.site is None or site == user.site


def check_user_in_scope(actor: CurrentUser, target: UserInfo) -> UserInfo:
    """``target`` if ``actor`` may manage them; otherwise a 404, exactly like a missing user
    (an admin of one school neither sees nor changes another school's people or the trust's)."""
    if not in_scope(actor, target.site):
        raise HTTPException(404, f"No user {target.username!r}.")
    return target


def users_in_scope(actor: CurrentUser, users: Iterable[UserInfo]) -> tuple[UserInfo, ...]:
    """The users ``actor`` may see and manage."""
    return tuple(user for user in users if in_scope(actor, user.site))


def site_for_new_user(actor: CurrentUser, requested: str) -> str | None:
    """The site a new user of ``actor`` gets: as typed (empty: every site) for an admin of every
    school; their own for an admin of one, who may not grant another (or none): 403."""
    wanted = requested.strip() or None
    if actor.site is None:
        return wanted
    if wanted is not None and wanted != actor.site:
        raise HTTPException(
            403,
            f"You manage {actor.site} only: a user for {wanted} must be added by an admin "
            "without a site.",
        )
    return actor.site


def audit_scope(user: CurrentUser) -> str | None:
    """The school whose audit events ``user`` reads (None: every event)."""
    return user.site
