"""The audit log as the admin reads it: newest first, filtered, paged.

The audit table is append-only and only ever read here; rows come back as frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.models import AuditEventRecord
from monitor.store.queries.scope import Window, site_condition


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit row: who did or saw what, when, and from which address."""

    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    target_type: str | None
    target_id: str | None
    detail: dict[str, Any]
    address: str | None
    site: str | None = None
    """The school the event concerns; None for the trust's own."""


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of the audit log, newest first."""

    items: tuple[AuditEvent, ...]
    total: int
    page: int
    per_page: int
    pages: int


def list_audit_events(
    db: Session,
    *,
    action: str | None = None,
    username: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    per_page: int = 50,
    site_scope: str | None = None,
) -> AuditPage:
    """Audit rows matching every filter given (exact values; ``[since, until)``), newest first;
    ``ValueError`` for a bad page or page size. With ``site_scope``, only the rows of that
    school: a row without a site is the trust's and never shown to a site's admin."""
    window = Window(page, per_page)
    table = AuditEventRecord
    conditions = [site_condition(table.site, site_scope)]
    if action is not None:
        conditions.append(table.action == action)
    if username is not None:
        conditions.append(table.username == username)
    if target_type is not None:
        conditions.append(table.target_type == target_type)
    if target_id is not None:
        conditions.append(table.target_id == target_id)
    if since is not None:
        conditions.append(table.at >= since)
    if until is not None:
        conditions.append(table.at < until)
    total = db.scalar(select(func.count()).select_from(table).where(*conditions)) or 0
    rows = db.execute(
        select(table.id, table.at, table.user_id, table.username, table.action,
               table.target_type, table.target_id, table.detail, table.address, table.site)
        .where(*conditions)
        .order_by(table.at.desc(), table.id.desc())
        .limit(window.per_page)
        .offset(window.offset)
    )  # fmt: skip
    return AuditPage(
        items=tuple(
            AuditEvent(id_, at, user_id, name, act, t_type, t_id, dict(detail or {}), address, site)
            for id_, at, user_id, name, act, t_type, t_id, detail, address, site in rows
        ),
        total=total,
        page=window.page,
        per_page=window.per_page,
        pages=window.pages(total),
    )
