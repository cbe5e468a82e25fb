"""``/api/v1/devices``: list and read (reviewers, admins), label (admins), all scoped to a site."""

from __future__ import annotations

import pytest

from monitor.store.workflow import UserRole
from tests.api.conftest import AppHarness
from tests.api.routes.conftest import bearer, seeded
from tests.monitor.store.queries.factories import OTHER_SITE


@pytest.mark.parametrize(
    ("site", "query", "expected_sites"),
    [
        (None, "", ["annex", "school"]),
        (None, "?per_page=1&page=2", ["school"]),
        (None, "?search=no-such-device", []),
        ("school", "", ["school"]),
        (OTHER_SITE, "?search=aa:bb", ["annex"]),
    ],
)
def test_devices_list_is_paged_searched_and_scoped(
    harness: AppHarness, site: str | None, query: str, expected_sites: list[str]
) -> None:
    seeded(harness)
    response = harness.client.get(
        "/api/v1/devices" + query, headers=bearer(harness, UserRole.REVIEWER, site=site)
    )
    assert response.status_code == 200, response.text
    assert [item["site"] for item in response.json()["items"]] == expected_sites


def test_device_get_returns_the_detail_and_audits_one_view(harness: AppHarness) -> None:
    seed = seeded(harness)
    response = harness.client.get(
        f"/api/v1/devices/{seed.staff_device}", headers=bearer(harness, UserRole.ADMIN)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["device"]["mac"] == "aa:bb:cc:00:00:01"
    assert (body["incidents_count"], body["open_incidents"], body["segment"]) == (
        1,
        1,
        "staff-wifi",
    )
    assert [(r.action, r.target_id) for r in harness.audit_rows()] == [
        ("view_device", str(seed.staff_device))
    ]


@pytest.mark.parametrize("site", [None, "school"])
def test_device_get_is_404_when_missing_or_at_another_site(
    harness: AppHarness, site: str | None
) -> None:
    seed = seeded(harness)
    missing = seed.annex_device if site else 999
    response = harness.client.get(
        f"/api/v1/devices/{missing}", headers=bearer(harness, UserRole.REVIEWER, site=site)
    )
    assert response.status_code == 404
    assert response.json() == {"detail": f"No device {missing}."}
    assert harness.audit_count() == 0


def test_device_label_sets_and_clears_the_label_with_one_audit_row_each(
    harness: AppHarness,
) -> None:
    seed = seeded(harness)
    headers = bearer(harness, UserRole.ADMIN)
    url = f"/api/v1/devices/{seed.staff_device}/label"
    labelled = harness.client.put(url, json={"label": " Room 4 laptop "}, headers=headers)
    assert labelled.status_code == 200, labelled.text
    assert labelled.json() == {
        "mac": "aa:bb:cc:00:00:01",
        "ip": None,
        "label": "Room 4 laptop",
        "devices": 1,
        "incidents": 1,
    }
    incident = harness.client.get(f"/api/v1/incidents/{seed.staff_incident}", headers=headers)
    assert incident.json()["incident"]["device_label"] == "Room 4 laptop"
    annex = harness.client.get(f"/api/v1/incidents/{seed.annex_incident}", headers=headers)
    assert annex.json()["incident"]["device_label"] is None
    cleared = harness.client.put(url, json={"label": ""}, headers=headers)
    assert cleared.json()["label"] is None
    assert [r.detail["label"] for r in harness.audit_rows() if r.action == "label_device"] == [
        "Room 4 laptop",
        None,
    ]


def test_device_label_is_for_admins_only(harness: AppHarness) -> None:
    seed = seeded(harness)
    response = harness.client.put(
        f"/api/v1/devices/{seed.staff_device}/label",
        json={"label": "x"},
        headers=bearer(harness, UserRole.REVIEWER),
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Your role does not give access to this."}
    assert harness.audit_count() == 0


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"label": "x" * 201}, ["body", "label"]),
        ({"label": "x", "owner": "y"}, ["body", "owner"]),
        ({}, ["body", "label"]),
    ],
)
def test_device_label_rejects_bad_bodies(
    harness: AppHarness, body: dict[str, object], location: list[object]
) -> None:
    seed = seeded(harness)
    response = harness.client.put(
        f"/api/v1/devices/{seed.staff_device}/label",
        json=body,
        headers=bearer(harness, UserRole.ADMIN),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_device_label_of_another_sites_device_is_404(harness: AppHarness) -> None:
    seed = seeded(harness)
    response = harness.client.put(
        f"/api/v1/devices/{seed.annex_device}/label",
        json={"label": "x"},
        headers=bearer(harness, UserRole.ADMIN, site="school"),
    )
    assert response.status_code == 404
