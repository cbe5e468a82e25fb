"""``/api/v1/stats``: incident figures and capture health (reviewers, admins) and the governors'
aggregates, whose models cannot hold an identity."""

from __future__ import annotations

import types
from datetime import UTC, date, datetime, timedelta
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from api.pages.dashboard import ReviewerDashboardPage
from api.schemas import GovernorSummaryOut
from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness
from tests.api.routes.conftest import bearer, seeded
from tests.monitor.store.queries.factories import add_counter, add_incident

PERIOD = "?date_from=2026-03-09&date_to=2026-03-15"
IDENTITY_WORDS = ("device", "ip", "mac", "host", "label", "address", "client")


def test_stats_incidents_counts_the_period_by_platform_and_day(harness: AppHarness) -> None:
    seeded(harness)
    response = harness.client.get(
        "/api/v1/stats/incidents" + PERIOD, headers=bearer(harness, UserRole.REVIEWER)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3
    assert body["by_platform"] == [
        {"key": "instagram", "count": 2},
        {"key": "tiktok", "count": 1},
    ]
    assert [d["count"] for d in body["by_day"]] == [0, 2, 1, 0, 0, 0, 0]
    assert (body["open_items"], body["change"]) == (2, 3)
    assert body["by_site"] == [{"key": "school", "count": 2}, {"key": "annex", "count": 1}]


def test_stats_incidents_is_scoped_to_the_users_site(harness: AppHarness) -> None:
    seeded(harness)
    response = harness.client.get(
        "/api/v1/stats/incidents" + PERIOD,
        headers=bearer(harness, UserRole.REVIEWER, site="annex"),
    )
    body = response.json()
    assert (body["total"], body["by_site"]) == (1, [{"key": "annex", "count": 1}])


def test_stats_incidents_leave_out_low_confidence_as_the_dashboard_does(
    harness: AppHarness,
) -> None:
    now = datetime.now(UTC)
    with harness.db() as db:
        add_incident(db, start=now - timedelta(minutes=30), platform="instagram")
        add_incident(db, start=now - timedelta(minutes=20), platform="tiktok")
        add_incident(db, start=now - timedelta(minutes=10), connections=1, minutes=1)
        db.commit()
    harness.sign_in(UserRole.REVIEWER)
    page = harness.client.get("/dashboard").context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, ReviewerDashboardPage)
    week = f"?date_from={page.week.start}&date_to={page.week.end - timedelta(days=1)}"
    response = harness.client.get(
        "/api/v1/stats/incidents" + week, headers=bearer(harness, UserRole.REVIEWER)
    )
    body = response.json()
    stats = page.week_stats
    assert (body["total"], body["low_confidence"]) == (stats.total, stats.low_confidence) == (2, 1)
    assert body["open_items"] == stats.open_items == 2
    assert body["by_platform"] == [{"key": c.key, "count": c.count} for c in stats.by_platform]


def test_stats_capture_reports_observations_per_day(harness: AppHarness) -> None:
    with harness.db() as db:
        add_counter(db, date(2026, 3, 10), "observations.tls", 40)
        add_counter(db, date(2026, 3, 10), "flags.ech", 3)
        db.commit()
    response = harness.client.get(
        "/api/v1/stats/capture?date_from=2026-03-10&date_to=2026-03-11",
        headers=bearer(harness, UserRole.ADMIN),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start"], body["end"]) == ("2026-03-10", "2026-03-12")
    assert body["by_day"] == [{"day": "2026-03-10", "count": 40}, {"day": "2026-03-11", "count": 0}]
    assert (body["days_with_data"], body["ech"], body["encrypted_dns"]) == (1, 3, None)


def test_stats_default_to_the_last_seven_days(harness: AppHarness) -> None:
    response = harness.client.get(
        "/api/v1/stats/capture", headers=bearer(harness, UserRole.REVIEWER)
    )
    days = [date.fromisoformat(d["day"]) for d in response.json()["by_day"]]
    assert len(days) == 7
    assert (days[-1] - days[0]).days == 6


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("?date_from=2026-03-10&date_to=2026-03-09", ["query", "date_to"]),
        ("?date_from=2024-01-01&date_to=2026-01-01", ["query", "date_to"]),
        ("?date_to=2100-01-01", ["query", "date_to"]),
        ("?date_from=0001-01-01", ["query", "date_from"]),
    ],
)
@pytest.mark.parametrize("resource", ["incidents", "capture", "governors"])
def test_stats_refuse_bad_periods_with_their_location(
    harness: AppHarness, resource: str, query: str, location: list[str]
) -> None:
    response = harness.client.get(
        f"/api/v1/stats/{resource}{query}", headers=bearer(harness, UserRole.ADMIN)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_stats_governors_give_aggregates_without_identity(harness: AppHarness) -> None:
    seeded(harness)
    response = harness.client.get(
        "/api/v1/stats/governors" + PERIOD, headers=bearer(harness, UserRole.GOVERNOR)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3
    assert {c["role"]: c["count"] for c in body["by_role"]} == {"staff": 2, "pupil": 1}
    assert {c["outcome"]: c["count"] for c in body["by_outcome"]} == {
        "awaiting_review": 2,
        "false_positive": 1,
    }
    text = response.text.lower()
    for identity in ("10.1.4.23", "aa:bb:cc", "staff-laptop", "staff-wifi"):
        assert identity not in text


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for inner in _models_in(info.annotation):
            names |= _field_names(inner)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (list, tuple, Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return []


def test_governor_models_have_no_identity_field() -> None:
    names = _field_names(GovernorSummaryOut)
    assert "by_platform" in names and "count" in names
    leaks = sorted(n for n in names for word in IDENTITY_WORDS if word in n.split("_"))
    assert leaks == []


@pytest.mark.parametrize("resource", ["incidents", "capture"])
def test_stats_with_identity_are_refused_to_governors(harness: AppHarness, resource: str) -> None:
    response = harness.client.get(
        f"/api/v1/stats/{resource}", headers=bearer(harness, UserRole.GOVERNOR)
    )
    assert response.status_code == 403
