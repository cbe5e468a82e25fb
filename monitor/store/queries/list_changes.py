"""Changes to the platform lists and the allowlist: recorded by the lists page, and read back
for it (the governors' report reads its own period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import ListChangeRecord


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A recorded list change."""

    at: datetime
    username: str
    action: str
    list_name: str
    suffix: str
    presence: str | None
    reason: str
    approved_by: str | None


def add_list_change(
    db: Session,
    *,
    at: datetime,
    username: str,
    action: str,
    list_name: str,
    suffix: str,
    presence: str | None,
    reason: str,
    approved_by: str,
) -> None:
    """Record one change (in the caller's transaction: the caller audits and commits)."""
    db.add(
        ListChangeRecord(
            at=at, username=username, action=action, list_name=list_name, suffix=suffix,
            presence=presence, reason=reason, approved_by=approved_by,
        )
    )  # fmt: skip


def recent_list_changes(db: Session, limit: int) -> tuple[ChangeRow, ...]:
    """The latest ``limit`` list changes, newest first."""
    table = ListChangeRecord
    rows = db.execute(
        select(table.at, table.username, table.action, table.list_name, table.suffix,
               table.presence, table.reason, table.approved_by)
        .order_by(table.at.desc(), table.id.desc())
        .limit(limit)
    )  # fmt: skip
    return tuple(ChangeRow(*row) for row in rows)
