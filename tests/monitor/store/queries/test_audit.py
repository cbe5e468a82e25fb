"""The audit log query: newest first, exact filters, half-open time range, pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.store.audit import NamedActor, record_event
from monitor.store.queries.audit import AuditEvent, list_audit_events

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
EVENTS = [
    ("head", "login", None, None),
    ("head", "view_incident", "incident", "7"),
    ("it", "label_device", "device", "3"),
    ("head", "review", "incident", "7"),
]


@pytest.fixture
def events(db: Session) -> Session:
    for n, (name, action, target_type, target_id) in enumerate(EVENTS):
        record_event(
            db, user=NamedActor(n, name), action=action, target_type=target_type,
            target_id=target_id, detail={"n": n}, address="10.0.0.9",
            at=T0 + timedelta(minutes=n),
        )  # fmt: skip
    db.flush()
    return db


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["review", "label_device", "view_incident", "login"]),
        ({"action": "review"}, ["review"]),
        ({"username": "it"}, ["label_device"]),
        ({"target_type": "incident", "target_id": "7"}, ["review", "view_incident"]),
        ({"since": T0 + timedelta(minutes=1)}, ["review", "label_device", "view_incident"]),
        ({"until": T0 + timedelta(minutes=1)}, ["login"]),
        ({"per_page": 3, "page": 2}, ["login"]),
        ({"per_page": 3, "page": 3}, []),
    ],
)
def test_list_audit_events_filters_newest_first(
    events: Session, filters: dict[str, object], expected: list[str]
) -> None:
    page = list_audit_events(events, **filters)  # type: ignore[arg-type]
    assert [event.action for event in page.items] == expected


def test_list_audit_events_returns_dataclasses_and_the_pager(events: Session) -> None:
    page = list_audit_events(events, action="login", per_page=10)
    assert (page.total, page.page, page.per_page, page.pages) == (1, 1, 10, 1)
    assert page.items[0] == AuditEvent(
        page.items[0].id, T0, 0, "head", "login", None, None, {"n": 0}, "10.0.0.9"
    )


@pytest.mark.parametrize(("page", "per_page"), [(0, 10), (1, 0), (1, 501)])
def test_list_audit_events_refuses_bad_windows(db: Session, page: int, per_page: int) -> None:
    with pytest.raises(ValueError, match="page"):
        list_audit_events(db, page=page, per_page=per_page)
