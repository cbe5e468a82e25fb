"""The lists page's record of changes: written in the caller's transaction, read newest first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from monitor.store.queries.list_changes import ChangeRow, add_list_change, recent_list_changes
from tests.monitor.store.queries.factories import T0


def test_changes_are_read_back_newest_first_up_to_the_limit(db: Session) -> None:
    for n, suffix in enumerate(("tiktok.com", "tiktokv.eu", "tiktokcdn.com")):
        add_list_change(
            db, at=T0 + timedelta(minutes=n), username="it", action="add", list_name="tiktok",
            suffix=suffix, presence="primary", reason=f"change {n}", approved_by="head",
        )  # fmt: skip
    db.flush()
    assert recent_list_changes(db, 2) == (
        ChangeRow(T0 + timedelta(minutes=2), "it", "add", "tiktok", "tiktokcdn.com", "primary", "change 2", "head"),
        ChangeRow(T0 + timedelta(minutes=1), "it", "add", "tiktok", "tiktokv.eu", "primary", "change 1", "head"),
    )  # fmt: skip
