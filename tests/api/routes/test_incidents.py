"""``/api/v1/incidents``: the queue's filters, sort and pages; one incident; review changes."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from sqlalchemy import select

from api.queue import IncidentSort
from api.schemas import ReviewTarget
from monitor.store.models import IncidentReviewRecord
from monitor.store.queries.incidents import SortKey
from monitor.store.workflow import TRANSITIONS, UserRole
from tests.api.conftest import AppHarness
from tests.api.routes.conftest import bearer, seeded
from tests.monitor.store.queries.factories import OTHER_SITE


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["pupil", "annex", "staff"]),
        ("?status=closed", ["pupil"]),
        ("?status=new&status=in_review", ["annex", "staff"]),
        ("?platform=tiktok", ["pupil"]),
        ("?segment=staff-wifi", ["annex", "staff"]),
        ("?role=pupil", ["pupil"]),
        ("?device=STAFF-laptop", ["annex", "staff"]),
        ("?device=10.2.0", ["pupil"]),
        ("?date_from=2026-03-11", ["pupil"]),
        ("?date_to=2026-03-10", ["annex", "staff"]),
        ("?date_from=2026-03-10&date_to=2026-03-10", ["annex", "staff"]),
        (f"?site={OTHER_SITE}", ["annex"]),
        ("?sort=start", ["staff", "annex", "pupil"]),
        ("?sort=-platform", ["pupil", "annex", "staff"]),
        ("?sort=status", ["annex", "staff", "pupil"]),
        ("?per_page=2", ["pupil", "annex"]),
        ("?per_page=2&page=2", ["staff"]),
        ("?per_page=2&page=3", []),
    ],
)
def test_incidents_list_filters_sorts_and_pages(
    harness: AppHarness, query: str, expected: list[str]
) -> None:
    seed = seeded(harness)
    names = {seed.staff_incident: "staff", seed.pupil_incident: "pupil"}
    names[seed.annex_incident] = "annex"
    response = harness.client.get(
        "/api/v1/incidents" + query, headers=bearer(harness, UserRole.REVIEWER)
    )
    assert [names[i] for i in ids(response)] == expected


def test_incidents_list_reports_the_pager(harness: AppHarness) -> None:
    seeded(harness)
    response = harness.client.get(
        "/api/v1/incidents?per_page=2&sort=-confidence", headers=bearer(harness, UserRole.ADMIN)
    )
    body = response.json()
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (3, 1, 2, 2)
    assert body["sort"] == "-confidence"


def test_incidents_list_site_limited_reviewer_sees_only_their_site(harness: AppHarness) -> None:
    seed = seeded(harness)
    headers = bearer(harness, UserRole.REVIEWER, site=OTHER_SITE)
    assert ids(harness.client.get("/api/v1/incidents", headers=headers)) == [seed.annex_incident]
    assert ids(harness.client.get("/api/v1/incidents?site=school", headers=headers)) == []


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("?sort=colour", ["query", "sort"]),
        ("?status=open", ["query", "status", 0]),
        ("?page=0", ["query", "page"]),
        ("?per_page=501", ["query", "per_page"]),
        ("?date_from=2026-03-12&date_to=2026-03-11", ["query", "date_to"]),
        ("?date_from=1999-12-31", ["query", "date_from"]),
        ("?date_to=not-a-date", ["query", "date_to"]),
    ],
)
def test_incidents_list_rejects_bad_queries_with_their_location(
    harness: AppHarness, query: str, location: list[object]
) -> None:
    response = harness.client.get(
        "/api/v1/incidents" + query, headers=bearer(harness, UserRole.REVIEWER)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_incidents_sort_names_match_the_query_layer() -> None:
    assert set(get_args(IncidentSort)) == {p + key for key in SortKey for p in ("", "-")}


def test_review_targets_are_the_targets_of_the_transition_table() -> None:
    assert set(get_args(ReviewTarget)) == {to for _, to in TRANSITIONS}


def test_incident_get_returns_the_detail_and_audits_one_view(harness: AppHarness) -> None:
    seed = seeded(harness)
    response = harness.client.get(
        f"/api/v1/incidents/{seed.staff_incident}", headers=bearer(harness, UserRole.REVIEWER)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["incident"]["platform"] == "instagram"
    assert body["observation_count"] == 1
    assert body["policy_point"].startswith("Staff must not")
    assert [e["id"] for e in body["earlier"]] == []
    rows = harness.audit_rows()
    assert [(r.action, r.target_type, r.target_id) for r in rows] == [
        ("view_incident", "incident", str(seed.staff_incident))
    ]
    assert rows[0].address == "testclient"


@pytest.mark.parametrize("site", [None, "school"])
def test_incident_get_is_404_when_missing_or_at_another_site(
    harness: AppHarness, site: str | None
) -> None:
    seed = seeded(harness)
    headers = bearer(harness, UserRole.REVIEWER, site=site)
    missing = seed.annex_incident if site else 999
    response = harness.client.get(f"/api/v1/incidents/{missing}", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"detail": f"No incident {missing}."}
    assert harness.audit_count("view_incident") == 0


def test_incident_review_moves_through_the_workflow_with_history(harness: AppHarness) -> None:
    seed = seeded(harness)
    headers = bearer(harness, UserRole.REVIEWER, name="head")
    url = f"/api/v1/incidents/{seed.staff_incident}/review"
    first = harness.client.post(url, json={"to_status": "in_review"}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["incident"]["status"] == "in_review"
    closing = {"to_status": "closed", "outcome": "no_action", "note": "Lesson research."}
    second = harness.client.post(url, json=closing, headers=headers)
    body = second.json()
    assert (body["incident"]["status"], body["incident"]["outcome"]) == ("closed", "no_action")
    assert [(h["from_status"], h["to_status"], h["username"]) for h in body["history"]] == [
        ("new", "in_review", "head"),
        ("in_review", "closed", "head"),
    ]
    reviews = [r for r in harness.audit_rows() if r.action == "review"]
    assert [r.detail["to"] for r in reviews] == ["in_review", "closed"]
    assert reviews[1].detail["outcome"] == "no_action"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"to_status": "closed", "outcome": "no_action"}, ["body", "note"]),
        ({"to_status": "closed", "note": "done"}, ["body", "outcome"]),
        ({"to_status": "in_review", "outcome": "no_action"}, ["body", "outcome"]),
        ({"to_status": "new"}, ["body", "to_status"]),
        ({"to_status": "closed", "outcome": "expelled", "note": "x"}, ["body", "outcome"]),
        ({}, ["body", "to_status"]),
    ],
)
def test_incident_review_rejects_bad_bodies_with_their_location(
    harness: AppHarness, body: dict[str, object], location: list[object]
) -> None:
    seed = seeded(harness)
    response = harness.client.post(
        f"/api/v1/incidents/{seed.staff_incident}/review",
        json=body,
        headers=bearer(harness, UserRole.REVIEWER),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location
    assert harness.audit_count("review") == 0


def test_incident_review_refuses_a_transition_with_409_and_writes_nothing(
    harness: AppHarness,
) -> None:
    seed = seeded(harness)
    response = harness.client.post(
        f"/api/v1/incidents/{seed.staff_incident}/review",
        json={"to_status": "closed", "outcome": "no_action", "note": "x"},
        headers=bearer(harness, UserRole.ADMIN),
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "An incident that is new cannot move to closed; it can move to in_review."
    }
    assert harness.audit_count("review") == 0
    with harness.db() as db:
        assert db.scalars(select(IncidentReviewRecord)).all() == []


def test_incident_review_of_another_sites_incident_is_404(harness: AppHarness) -> None:
    seed = seeded(harness)
    response = harness.client.post(
        f"/api/v1/incidents/{seed.annex_incident}/review",
        json={"to_status": "in_review"},
        headers=bearer(harness, UserRole.REVIEWER, site="school"),
    )
    assert response.status_code == 404
    assert response.json() == {"detail": f"No incident {seed.annex_incident}."}


def test_incident_review_from_a_browser_session_needs_the_csrf_header(
    harness: AppHarness,
) -> None:
    seed = seeded(harness)
    harness.sign_in(UserRole.REVIEWER)
    url = f"/api/v1/incidents/{seed.staff_incident}/review"
    refused = harness.client.post(url, json={"to_status": "in_review"})
    assert refused.status_code == 403
    assert harness.audit_count("review") == 0
    accepted = harness.client.post(
        url, json={"to_status": "in_review"}, headers={"X-CSRF-Token": harness.session_csrf()}
    )
    assert accepted.status_code == 200, accepted.text
    assert harness.audit_count("review") == 1
