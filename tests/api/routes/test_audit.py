"""``/api/v1/audit``: the audit log for admins, newest first, filtered and paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.store.audit import NamedActor, record_event
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness
from tests.api.routes.conftest import bearer

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def add_events(harness: AppHarness) -> None:
    head = NamedActor(None, "head")
    with harness.db() as db:
        for n, (action, target) in enumerate(
            [("login", None), ("view_incident", "7"), ("review", "7"), ("view_device", "3")]
        ):
            record_event(
                db, user=head, action=action, target_type=None if target is None else "incident",
                target_id=target, detail={"n": n}, address="10.0.0.9",
                at=T0 + timedelta(minutes=n),
            )  # fmt: skip
        db.commit()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["view_device", "review", "view_incident", "login"]),
        ("?action=review", ["review"]),
        ("?target_id=7", ["review", "view_incident"]),
        ("?username=head&per_page=3&page=2", ["login"]),
        ("?since=2026-03-10T10:01:00Z&until=2026-03-10T10:03:00Z", ["review", "view_incident"]),
        ("?since=2026-03-10T11:02:00%2B01:00", ["view_device", "review"]),
        ("?since=2026-03-10T10:03:00", ["view_device"]),
    ],
)
def test_audit_list_filters_and_pages_newest_first(
    harness: AppHarness, query: str, expected: list[str]
) -> None:
    add_events(harness)
    response = harness.client.get("/api/v1/audit" + query, headers=bearer(harness, UserRole.ADMIN))
    assert response.status_code == 200, response.text
    assert [item["action"] for item in response.json()["items"]] == expected


def test_audit_list_shows_who_what_and_from_where(harness: AppHarness) -> None:
    add_events(harness)
    response = harness.client.get(
        "/api/v1/audit?action=login", headers=bearer(harness, UserRole.ADMIN)
    )
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0] | {"id": 0} == {
        "id": 0, "at": "2026-03-10T10:00:00Z", "user_id": None, "username": "head",
        "action": "login", "target_type": None, "target_id": None, "detail": {"n": 0},
        "address": "10.0.0.9", "site": None,
    }  # fmt: skip


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.GOVERNOR])
def test_audit_list_is_for_admins_only(harness: AppHarness, role: UserRole) -> None:
    response = harness.client.get("/api/v1/audit", headers=bearer(harness, role))
    assert response.status_code == 403


def test_audit_list_refuses_instants_out_of_range(harness: AppHarness) -> None:
    response = harness.client.get(
        "/api/v1/audit?until=0001-01-01T00:00:00%2B05:00", headers=bearer(harness, UserRole.ADMIN)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "until"]
