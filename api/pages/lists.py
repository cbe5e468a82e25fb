"""Platform lists and the allowlist: see what is matched, and add or remove an entry.

For admins without a site only: the lists are shared by every school of a trust, so an admin
limited to one school is refused (403, ``api.access``). A change needs a reason and the name of who approved it; it is kept in
``list_changes`` and the audit log (one ``change_list`` row) in one transaction, and takes
effect through the local list directory ``<database.data_dir>/lists``
(``monitor.lists.directories.local_list_directory``), which the capture daemon loads after the shipped
lists and ``lists.directories``:

- a platform change writes the whole platform file there (the shipped entries plus or minus the
  change), which replaces the file of the same name read earlier;
- an allowlist addition is a line of the local ``allowlist.txt`` (with its reason); only those
  lines can be removed here (the shipped allowlist and ``lists.allow`` are changed where they
  are written).

The capture daemon reads the lists when it starts and on reload (SIGHUP:
``systemctl reload hallmonitor``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.access import require_trust_wide
from api.auth import client_address
from api.deps import CurrentUser, SessionDep, SettingsDep
from api.pages import NavLink, redirect_to, render_page
from api.params import Text
from monitor.config.settings import Settings
from monitor.errors import BlocklistError
from monitor.hostnames import normalise_hostname
from monitor.lists.directories import list_directories, load_lists, local_list_directory
from monitor.lists.files import ALLOWLIST_FILE, ListEntry, ListSet, domain_problem
from monitor.store.audit import AuditAction, record_event
from monitor.store.queries.list_changes import (
    ChangeRow,
    add_list_change,
    recent_list_changes,
)
from monitor.store.workflow import UserRole
from monitor.values import Presence

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Lists",
        "list_overview",
        frozenset({UserRole.ADMIN}),
        "Platform lists and the allowlist: add or remove an entry, with a reason.",
        trust_wide=True,
    ),
)

Admin = Annotated[CurrentUser, Depends(require_trust_wide("The platform lists and the allowlist"))]

ALLOWLIST = "allowlist"
RECENT_CHANGES = 50
NOTICES = {
    "changed": "The change was saved. The capture daemon uses it from its next reload "
    "(systemctl reload hallmonitor).",
}
_write_lock = threading.Lock()
"""One list change at a time in this process (read, change, write a file)."""


@dataclass(frozen=True, slots=True)
class PlatformRow:
    """A platform list: its id, name, category, size and whether the local copy replaces it."""

    id: str
    name: str
    category: str
    entries: int
    local: bool


@dataclass(frozen=True, slots=True)
class AllowRow:
    """An allowlist suffix and where it comes from (``local`` entries can be removed here)."""

    suffix: str
    origin: Literal["local", "config", "lists"]


@dataclass(frozen=True, slots=True)
class ListsPage:
    """The lists as the capture daemon would load them now."""

    platforms: tuple[PlatformRow, ...]
    shown: str | None
    """The platform whose entries are listed (``?platform=``)."""
    entries: tuple[ListEntry, ...]
    allowlist: tuple[AllowRow, ...]
    changes: tuple[ChangeRow, ...]
    local_directory: str
    problem: str | None
    """Why the lists do not load (then nothing can be changed until it is fixed)."""
    notice: str | None


class ListChangeForm(BaseModel):
    """Add or remove one suffix of a platform list or the allowlist."""

    action: Literal["add", "remove"]
    list_name: Text = Field(min_length=1, max_length=40)
    suffix: Text = Field(min_length=1, max_length=253)
    presence: Presence = Presence.PRIMARY
    reason: Text = Field(min_length=1, max_length=2000)
    approved_by: Text = Field(min_length=1, max_length=150)


def _load(settings: Settings) -> ListSet:
    return load_lists(list_directories(settings), extra_allow=settings.lists.allow)


def _local_allowlist(directory: Path) -> dict[str, str]:
    """Suffix -> its line in the local allowlist file."""
    path = directory / ALLOWLIST_FILE
    if not path.is_file():
        return {}
    lines = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        body = line.split("#", 1)[0].strip()
        if body:
            lines[normalise_hostname(body)] = line
    return lines


@router.get("/admin/lists", name="list_overview")
def list_overview(
    request: Request,
    user: Admin,
    db: SessionDep,
    settings: SettingsDep,
    platform: Annotated[str, Query(max_length=40)] = "",
    done: str = "",
) -> Response:
    """Platforms, one platform's entries, the allowlist and the latest changes."""
    del user
    local = local_list_directory(settings)
    problem = None
    try:
        lists = _load(settings)
    except BlocklistError as error:
        lists, problem = ListSet((), frozenset(), {}), str(error)
    counts: dict[str, int] = {}
    for entry in lists.entries:
        counts[entry.platform] = counts.get(entry.platform, 0) + 1
    platforms = tuple(
        PlatformRow(pid, info.name, info.category.value, counts.get(pid, 0), (local / f"{pid}.txt").is_file())
        for pid, info in sorted(lists.platforms.items())
    )  # fmt: skip
    local_allow = _local_allowlist(local)
    configured = {normalise_hostname(s) for s in settings.lists.allow}
    allowlist = tuple(
        AllowRow(s, "local" if s in local_allow else "config" if s in configured else "lists")
        for s in sorted(lists.allowlist, key=lambda name: name.split(".")[::-1])
    )
    changes = recent_list_changes(db, RECENT_CHANGES)
    shown = platform if platform in lists.platforms else None
    page = ListsPage(
        platforms=platforms,
        shown=shown,
        entries=tuple(e for e in lists.entries if e.platform == shown),
        allowlist=allowlist,
        changes=changes,
        local_directory=str(local),
        problem=problem,
        notice=NOTICES.get(done),
    )
    return render_page(request, "pages/lists/index.html", page)


@router.post("/admin/lists/changes", name="change_list")
def change_list(
    request: Request,
    user: Admin,
    db: SessionDep,
    settings: SettingsDep,
    form: Annotated[ListChangeForm, Form()],
) -> Response:
    """Record the change and write it to the local list directory, or say why not (400)."""
    suffix = normalise_hostname(form.suffix.strip())
    reason = " ".join(form.reason.split())
    approved_by = " ".join(form.approved_by.split())
    if not reason or not approved_by:
        raise HTTPException(400, "Nothing was changed: give the reason and who approved it.")
    problem = domain_problem(suffix)
    if problem is not None:
        raise HTTPException(400, f"Nothing was changed: {problem}.")
    presence = form.presence if form.list_name != ALLOWLIST and form.action == "add" else None
    add_list_change(
        db, at=datetime.now(UTC), username=user.username, action=form.action,
        list_name=form.list_name, suffix=suffix,
        presence=presence.value if presence is not None else None,
        reason=reason, approved_by=approved_by,
    )  # fmt: skip
    record_event(
        db, user=user, action=AuditAction.CHANGE_LIST, target_type="list",
        target_id=form.list_name,
        detail={"change": form.action, "suffix": suffix, "reason": reason, "approved_by": approved_by},
        address=client_address(request),
    )  # fmt: skip
    db.flush()
    with _write_lock:
        try:
            lists = _load(settings)
        except BlocklistError as error:
            raise HTTPException(
                400, f"Nothing was changed: the lists do not load ({error})."
            ) from None
        local = local_list_directory(settings)
        try:
            path, text = _changed_file(lists, local, settings, form, suffix, reason, approved_by)
        except ValueError as error:
            raise HTTPException(400, f"Nothing was changed: {error}.") from None
        previous = path.read_text(encoding="utf-8") if path.is_file() else None
        try:
            _write(path, text)
        except OSError as error:
            raise HTTPException(
                400, f"Nothing was changed: {path} cannot be written ({error.strerror or error})."
            ) from None
        try:
            db.commit()
        except BaseException:
            _restore(path, previous)
            raise
    return redirect_to(request, "list_overview", query=_after(form.list_name))


def _after(list_name: str) -> dict[str, str]:
    query = {"done": "changed"}
    if list_name != ALLOWLIST:
        query["platform"] = list_name
    return query


def _changed_file(
    lists: ListSet,
    local: Path,
    settings: Settings,
    form: ListChangeForm,
    suffix: str,
    reason: str,
    approved_by: str,
) -> tuple[Path, str]:
    """The local file to write and its new text; ``ValueError`` saying why the change is wrong."""
    if form.list_name == ALLOWLIST:
        return local / ALLOWLIST_FILE, _allowlist_text(
            lists, local, settings, form.action, suffix, reason, approved_by
        )
    info = lists.platforms.get(form.list_name)
    if info is None:
        raise ValueError(f"there is no platform list {form.list_name!r}")
    entries = [(e.suffix, e.presence.value) for e in lists.entries if e.platform == form.list_name]
    owner = {e.suffix: e.platform for e in lists.entries}
    if form.action == "add":
        if suffix in owner:
            raise ValueError(f"{suffix} is already on the {owner[suffix]} list")
        entries.append((suffix, form.presence.value))
    else:
        if owner.get(suffix) != form.list_name:
            raise ValueError(f"{suffix} is not on the {form.list_name} list")
        entries = [entry for entry in entries if entry[0] != suffix]
    lines = [
        "# Written by the Hall Monitor review app: this copy replaces the shipped list.",
        "# Every change is recorded with its reason on the Lists page (list_changes).",
        f"# platform: {form.list_name}",
        f"# name: {info.name}",
        f"# category: {info.category.value}",
        "",
        *(f"{name} {presence}" for name, presence in entries),
    ]
    return local / f"{form.list_name}.txt", "\n".join(lines) + "\n"


def _allowlist_text(
    lists: ListSet,
    local: Path,
    settings: Settings,
    action: str,
    suffix: str,
    reason: str,
    approved_by: str,
) -> str:
    mine = _local_allowlist(local)
    if action == "add":
        if suffix in lists.allowlist:
            raise ValueError(f"{suffix} is already on the allowlist")
        mine[suffix] = f"{suffix}  # {reason} (approved by {approved_by})"
    else:
        if suffix not in mine:
            where = (
                "the lists.allow setting"
                if suffix in {normalise_hostname(s) for s in settings.lists.allow}
                else "a list directory's allowlist.txt"
            )
            if suffix in lists.allowlist:
                raise ValueError(f"{suffix} comes from {where}: remove it there")
            raise ValueError(f"{suffix} is not on the allowlist")
        del mine[suffix]
    header = "# Allowlist entries added in the Hall Monitor review app (see list_changes)."
    return "\n".join([header, *mine.values()]) + "\n"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _restore(path: Path, previous: str | None) -> None:
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        _write(path, previous)
