"""The IT technician's pages: users, the configuration (read-only) and the audit log.

Admin only. Changes to users (add, disable or enable, new password) are forms with CSRF and
Post/Redirect/Get, each writing one ``change_user`` audit row in its own transaction. A new
password also revokes the user's API tokens. The settings page shows the configuration as
loaded, with the database password hidden and the mail password never shown, plus the segments
and the school calendar (terms, closures, today's hours). The audit log pages newest first,
filtered by action, user, target and dates.

An admin limited to one school (``api.access``) sees and manages only that school's people and
audit events, and is refused the settings (the review app's, shared by every school).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.access import (
    audit_scope,
    check_user_in_scope,
    require_trust_wide,
    site_for_new_user,
    users_in_scope,
)
from api.auth import client_address
from api.deps import CurrentUser, SessionDep, SettingsDep, require_role
from api.pages import NavLink, redirect_to, render_page
from api.params import Day, Page, Text
from monitor.config.settings import Settings
from monitor.first_admin import forget_password_file
from monitor.store.audit import AuditAction, record_event
from monitor.store.passwords import set_password
from monitor.store.queries.audit import AuditEvent, list_audit_events
from monitor.store.users import (
    PASSWORD_MAX_LENGTH,
    UserInfo,
    create_user,
    get_user,
    list_users,
    set_disabled,
)
from monitor.store.workflow import UserRole

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Users", "user_list", frozenset({UserRole.ADMIN}),
        "Add people who sign in, disable them, set a new password.",
    ),
    NavLink(
        "Settings", "settings_view", frozenset({UserRole.ADMIN}),
        "The configuration as loaded: segments, school calendar, retention, mail.",
        trust_wide=True,
    ),
    NavLink(
        "Audit log", "audit_log", frozenset({UserRole.ADMIN}),
        "Who saw or changed what, when and from where.",
    ),
)  # fmt: skip

Admin = Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))]
TrustWideAdmin = Annotated[CurrentUser, Depends(require_trust_wide("The review app's settings"))]

AUDIT_PER_PAGE = 50
HIDDEN = "(hidden)"
USER_NOTICES = {
    "added": "The user was added.",
    "disabled": "The user was disabled and signed out everywhere.",
    "enabled": "The user was enabled.",
    "password": "The password was changed, the user was signed out everywhere and their API "
    "tokens were revoked.",
}
"""Fixed confirmations a redirect may ask for (never text from the URL)."""
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- users -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsersPage:
    """Every user and the forms to change them."""

    users: tuple[UserInfo, ...]
    roles: tuple[str, ...]
    me: int
    """The signed-in admin's id (who cannot disable their own account)."""
    now: datetime
    """To tell locked accounts (``locked_until`` in the future)."""
    notice: str | None
    site: str | None = None
    """The admin's own school when limited to one: the only users shown, and every new user's."""


class AddUserForm(BaseModel):
    """A new user."""

    username: Text = Field(min_length=1, max_length=64)
    display_name: Text = Field(min_length=1, max_length=100)
    role: UserRole
    email: Text = Field(default="", max_length=254)
    site: Text = Field(default="", max_length=100)
    password: Text = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class ResetPasswordForm(BaseModel):
    """A new password set by the admin (the user is signed out everywhere)."""

    password: Text = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class DisableForm(BaseModel):
    """``disabled=true`` disables, ``false`` enables."""

    disabled: bool


@router.get("/admin/users", name="user_list")
def user_list(request: Request, user: Admin, db: SessionDep, done: str = "") -> Response:
    """Every user, with their role, site and state."""
    page = UsersPage(
        users=users_in_scope(user, list_users(db)),
        roles=tuple(role.value for role in UserRole),
        me=user.id,
        now=datetime.now(UTC),
        notice=USER_NOTICES.get(done),
        site=user.site,
    )
    return render_page(request, "pages/admin/users.html", page)


def _audit_user(
    request: Request, db: SessionDep, actor: CurrentUser, target: UserInfo, detail: dict[str, Any]
) -> None:
    record_event(
        db, user=actor, action=AuditAction.CHANGE_USER, target_type="user",
        target_id=target.id, detail={"username": target.username, **detail},
        address=client_address(request), site=target.site,
    )  # fmt: skip


@router.post("/admin/users", name="add_user")
def add_user(
    request: Request, user: Admin, db: SessionDep, form: Annotated[AddUserForm, Form()]
) -> Response:
    """Add a user (``ValueError`` from the store becomes a 400 page saying what to fix); an
    admin limited to one school adds users of that school only."""
    site = site_for_new_user(user, form.site)
    try:
        added = create_user(
            db, form.username, form.display_name, form.role, form.password,
            email=form.email.strip() or None, site=site,
            hasher=request.app.state.password_hasher,
        )  # fmt: skip
    except ValueError as error:
        raise HTTPException(400, f"The user was not added: {error}.") from None
    _audit_user(
        request, db, user, added, {"change": "add", "role": added.role.value, "site": added.site}
    )
    db.commit()
    return redirect_to(request, "user_list", query={"done": "added"})


def _target(db: SessionDep, username: str, actor: CurrentUser) -> UserInfo:
    """The user to change: 404 when missing, or outside the admin's school."""
    return check_user_in_scope(actor, get_user(db, username))


@router.post("/admin/users/{username}/disabled", name="set_user_disabled")
def set_user_disabled(
    request: Request,
    username: str,
    user: Admin,
    db: SessionDep,
    form: Annotated[DisableForm, Form()],
) -> Response:
    """Disable (signed out everywhere, API tokens refused) or enable a user."""
    target = _target(db, username, user)
    if form.disabled and target.id == user.id:
        raise HTTPException(400, "You cannot disable your own account; ask another admin.")
    changed = set_disabled(db, target.username, form.disabled)
    change = "disable" if form.disabled else "enable"
    _audit_user(request, db, user, changed, {"change": change})
    db.commit()
    return redirect_to(request, "user_list", query={"done": change + "d"})


@router.post("/admin/users/{username}/password", name="reset_user_password")
def reset_user_password(
    request: Request,
    username: str,
    user: Admin,
    db: SessionDep,
    settings: SettingsDep,
    form: Annotated[ResetPasswordForm, Form()],
) -> Response:
    """Set a new password: clears any lockout, signs the user out everywhere and revokes their
    API tokens (for ``admin``, the file of the first start's one-time password goes too)."""
    target = _target(db, username, user)
    try:
        changed = set_password(
            db, target.username, form.password, hasher=request.app.state.password_hasher
        )
    except ValueError as error:
        raise HTTPException(400, f"The password was not changed: {error}.") from None
    _audit_user(
        request, db, user, changed.user,
        {"change": "password", "tokens_revoked": changed.tokens_revoked},
    )  # fmt: skip
    db.commit()
    forget_password_file(settings.database.data_dir, changed.user.username)
    return redirect_to(request, "user_list", query={"done": "password"})


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One key of the configuration and its value as text."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class SettingsGroup:
    """A ``[group]`` of the configuration."""

    name: str
    description: str
    rows: tuple[SettingRow, ...]


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """A configured network segment."""

    name: str
    role: str
    cidrs: tuple[str, ...]
    vlans: tuple[int, ...]
    flagged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DatedRow:
    """A term or a closure."""

    start: date
    end: date
    name: str


@dataclass(frozen=True, slots=True)
class SettingsPage:
    """The configuration, read-only."""

    groups: tuple[SettingsGroup, ...]
    segments: tuple[SegmentRow, ...]
    terms: tuple[DatedRow, ...]
    closures: tuple[DatedRow, ...]
    today: date
    """Today on the school's clock."""
    today_hours: tuple[str, ...]
    """Today's school hours (``08:00-16:30``), empty when no school today by weekday."""
    today_closed: str | None
    """Why today is closed (a closure's reason, or ``outside term``), None on a school day."""
    week: tuple[tuple[str, tuple[str, ...]], ...]
    """Each weekday and its hours."""


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) if value else "(none)"
    if value is None or value == "":
        return "(not set)"
    return str(value)


def settings_groups(settings: Settings) -> tuple[SettingsGroup, ...]:
    """Every simple group of the configuration as rows, secrets hidden.

    The database URL is shown with its password replaced; the mail password is never shown
    (only whether one is set). Segments and the calendar have their own tables.
    """
    groups = []
    skip = {"segments", "calendar"}
    for name, info in Settings.model_fields.items():
        if name in skip:
            continue
        values: dict[str, Any] = getattr(settings, name).model_dump(mode="python")
        if name == "database":
            values["url"] = settings.database.display_url()
        if name == "mail":
            values["password"] = (
                HIDDEN if settings.mail.password.get_secret_value() else "(not set)"
            )
        rows = tuple(SettingRow(key, _text(value)) for key, value in values.items())
        groups.append(SettingsGroup(name, info.description or "", rows))
    return tuple(groups)


def _ranges(ranges: list[tuple[time, time]]) -> tuple[str, ...]:
    return tuple(f"{start:%H:%M}-{end:%H:%M}" for start, end in ranges)


@router.get("/admin/settings", name="settings_view")
def settings_view(request: Request, user: TrustWideAdmin, settings: SettingsDep) -> Response:
    """The configuration as the app loaded it (edit the config file to change it); the review
    app's, so for admins without a site only."""
    del user
    calendar = settings.calendar
    today = datetime.now(ZoneInfo(calendar.timezone)).date()
    week = calendar.hours.by_weekday()
    closures = calendar.closure_days()
    closed: str | None = None
    if today in closures:
        closed = closures[today] or "closed"
    elif calendar.terms and not any(t.start <= today <= t.end for t in calendar.terms):
        closed = "outside term"
    page = SettingsPage(
        groups=settings_groups(settings),
        segments=tuple(
            SegmentRow(
                s.name,
                s.role.value,
                tuple(str(c) for c in s.cidrs),
                tuple(s.vlans),
                tuple(sorted(c.value for c in s.flags())),
            )
            for s in settings.segments
        ),  # fmt: skip
        terms=tuple(DatedRow(t.start, t.end, t.name) for t in calendar.terms),
        closures=tuple(DatedRow(c.start, c.end or c.start, c.reason) for c in calendar.closures),
        today=today,
        today_hours=_ranges(week[today.weekday()]),
        today_closed=closed,
        week=tuple((WEEKDAY_NAMES[day], _ranges(week[day])) for day in range(7)),
    )
    return render_page(request, "pages/admin/settings.html", page)


# --- audit log -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What the audit log is narrowed to (empty strings and None: no restriction)."""

    action: str = ""
    user: str = ""
    """The username (exact)."""
    target_type: str = ""
    target_id: str = ""
    start: date | None = None
    """First local day shown."""
    end: date | None = None
    """Last local day shown, included."""

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for the pager's links)."""
        values = {
            "action": self.action, "user": self.user, "target_type": self.target_type,
            "target_id": self.target_id, "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
        }  # fmt: skip
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True, slots=True)
class AuditLogPage:
    """One page of the audit log, newest first."""

    entries: tuple[AuditEvent, ...]
    filters: AuditFilters
    actions: tuple[str, ...]
    total: int
    page: int
    pages: int
    previous_query: str | None
    """The query string of the previous page (None on the first)."""
    next_query: str | None


def _page_query(filters: AuditFilters, page: int) -> str:
    return urlencode({**filters.query(), "page": str(page)})


@router.get("/admin/audit", name="audit_log")
def audit_log(
    request: Request,
    user: Admin,
    db: SessionDep,
    settings: SettingsDep,
    action: Annotated[str, Query(max_length=50)] = "",
    username: Annotated[str, Query(alias="user", max_length=150)] = "",
    target_type: Annotated[str, Query(max_length=50)] = "",
    target_id: Annotated[str, Query(max_length=100)] = "",
    start: Day | None = None,
    end: Day | None = None,
    page: Page = 1,
) -> Response:
    """The audit log, newest first, 50 to a page (of the admin's school only, when limited)."""
    filters = AuditFilters(
        action.strip(), username.strip(), target_type.strip(), target_id.strip(), start, end
    )
    zone = ZoneInfo(settings.calendar.timezone)
    found = list_audit_events(
        db,
        action=filters.action or None,
        username=filters.user or None,
        target_type=filters.target_type or None,
        target_id=filters.target_id or None,
        since=datetime.combine(start, time(), zone) if start else None,
        until=datetime.combine(end + timedelta(days=1), time(), zone) if end else None,
        page=page,
        per_page=AUDIT_PER_PAGE,
        site_scope=audit_scope(user),
    )
    entries, total, pages = found.items, found.total, found.pages
    known = {str(a) for a in AuditAction}
    page_data = AuditLogPage(
        entries=entries,
        filters=filters,
        actions=tuple(sorted(known | ({filters.action} if filters.action else set()))),
        total=total,
        page=page,
        pages=pages,
        previous_query=_page_query(filters, page - 1) if page > 1 else None,
        next_query=_page_query(filters, page + 1) if page < pages else None,
    )
    return render_page(request, "pages/admin/audit.html", page_data)
