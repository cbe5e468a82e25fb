"""Device pages: admins find, view, label, merge, export and erase devices; each view and
change writes exactly one audit row; other roles are refused."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from api.pages.devices import DeviceListPage, DeviceViewPage
from monitor.devices import identity_digest
from monitor.store.models import DeviceRecord, IncidentRecord, ObservationRecord
from monitor.store.users import create_user
from monitor.store.workflow import UserRole
from tests.api.conftest import FAST_HASHER, PASSWORD, AppHarness
from tests.monitor.store.queries.factories import (
    OTHER_SITE,
    ROUTED_PC,
    STAFF_LAPTOP,
    add_device,
    add_incident,
    add_observation,
)

NEW_MAC = "aa:bb:cc:00:00:99"


@dataclass(frozen=True)
class Devices:
    staff: int
    routed: int
    annex: int


def seed(harness: AppHarness) -> Devices:
    with harness.db() as db:
        incident = add_incident(db)
        add_observation(db, incident)
        add_incident(db, device=ROUTED_PC, host_name=None, segment="lab")
        staff = add_device(db)
        routed = add_device(db, device=ROUTED_PC, host_name="LAB-PC-7")
        annex = add_device(db, site=OTHER_SITE)
        db.commit()
        return Devices(staff.id, routed.id, annex.id)


def admin_with_devices(harness: AppHarness) -> tuple[Devices, str]:
    devices = seed(harness)
    harness.sign_in(UserRole.ADMIN)
    return devices, harness.session_csrf()


def count(harness: AppHarness, model: type[object], *conditions: object) -> int:
    with harness.db() as db:
        return db.scalar(select(func.count()).select_from(model).where(*conditions)) or 0  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [UserRole.REVIEWER, UserRole.GOVERNOR])
@pytest.mark.parametrize("path", ["/devices", "/devices/1", "/devices/1/erase"])
def test_devices_pages_are_for_admins_only(harness: AppHarness, role: UserRole, path: str) -> None:
    harness.sign_in(role)
    assert harness.client.get(path).status_code == 403


def test_device_list_searches_and_audits_one_list_read_as_the_api_does(
    harness: AppHarness,
) -> None:
    devices, _ = admin_with_devices(harness)
    response = harness.client.get("/devices", params={"q": "LAB-PC"})
    assert response.template.name == "pages/devices/list.html"  # type: ignore[attr-defined]
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, DeviceListPage)
    assert [d.id for d in page.devices.items] == [devices.routed]
    assert harness.audit_count("view_list") == 1
    row = harness.audit_rows()[-1]
    assert (row.target_type, row.target_id) == ("devices", None)
    assert row.detail == {
        "via": "page", "page": 1, "per_page": 50, "returned": 1, "total": 1,
        "filters": {"search": "LAB-PC"},
    }  # fmt: skip


def test_a_device_list_page_showing_no_one_is_not_audited(harness: AppHarness) -> None:
    admin_with_devices(harness)
    assert harness.client.get("/devices", params={"q": "nobody-here"}).status_code == 200
    assert harness.audit_count("view_list") == 0


def test_device_page_shows_segment_and_incidents_and_audits_one_view(
    harness: AppHarness,
) -> None:
    devices, _ = admin_with_devices(harness)
    response = harness.client.get(f"/devices/{devices.staff}")
    page = response.context["page"]  # type: ignore[attr-defined]
    assert isinstance(page, DeviceViewPage)
    assert (page.subject, page.detail.segment, page.detail.incidents_count) == (
        STAFF_LAPTOP[1], "staff-wifi", 1,
    )  # fmt: skip
    assert "staff-wifi" in response.text
    assert harness.audit_count("view_device") == 1
    row = harness.audit_rows()[-1]
    assert (row.target_type, row.target_id) == ("device", str(devices.staff))


def test_a_missing_device_is_404(harness: AppHarness) -> None:
    admin_with_devices(harness)
    assert harness.client.get("/devices/999").status_code == 404
    assert harness.audit_count("view_device") == 0


def test_a_site_limited_admin_does_not_see_another_sites_device(harness: AppHarness) -> None:
    devices = seed(harness)
    with harness.db() as db:
        create_user(db, "annexadmin", "Annex", UserRole.ADMIN, PASSWORD, site=OTHER_SITE, hasher=FAST_HASHER)  # fmt: skip
        db.commit()
    assert harness.post_login("annexadmin", PASSWORD).status_code == 303
    assert harness.client.get(f"/devices/{devices.staff}").status_code == 404
    assert harness.client.get(f"/devices/{devices.annex}").status_code == 200


def test_labelling_a_device_labels_its_incidents_and_audits_once(harness: AppHarness) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/label",
        data={"csrf_token": token, "label": "Mr Lee, room B12"},
        follow_redirects=False,
    )
    assert (response.status_code, response.headers["location"]) == (
        303, f"/devices/{devices.staff}?done=labelled",
    )  # fmt: skip
    assert count(harness, IncidentRecord, IncidentRecord.device_label == "Mr Lee, room B12") == 1
    assert harness.audit_count("label_device") == 1


def test_a_form_without_csrf_token_is_refused(harness: AppHarness) -> None:
    devices, _ = admin_with_devices(harness)
    response = harness.client.post(f"/devices/{devices.staff}/label", data={"label": "x"})
    assert response.status_code == 403
    assert harness.audit_count("label_device") == 0


def test_merging_moves_every_record_to_the_new_mac(harness: AppHarness) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/merge",
        data={"csrf_token": token, "new_mac": NEW_MAC.upper(), "reason": "new network card"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert count(harness, IncidentRecord, IncidentRecord.device_mac == NEW_MAC) == 1
    assert count(harness, ObservationRecord, ObservationRecord.client_mac == NEW_MAC) == 1
    assert harness.audit_count("merge_devices") == 1
    assert harness.audit_rows()[-1].detail["reason"] == "new network card"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"new_mac": "not-a-mac", "reason": "x"}, "not a MAC address"),
        ({"new_mac": STAFF_LAPTOP[1], "reason": "x"}, "into itself"),
        ({"new_mac": NEW_MAC, "reason": "   "}, "needs a reason"),
        ({"new_mac": NEW_MAC}, ""),
    ],
)
def test_a_bad_merge_changes_nothing(
    harness: AppHarness, data: dict[str, str], message: str
) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/merge", data={"csrf_token": token, **data}
    )
    assert response.status_code == 400
    assert message in response.text
    assert harness.audit_count("merge_devices") == 0
    assert count(harness, IncidentRecord, IncidentRecord.device_mac == STAFF_LAPTOP[1]) == 1


def test_subject_access_export_as_json(harness: AppHarness) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/export", data={"csrf_token": token, "format": "json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    body = json.loads(response.content)
    assert body["subject"] == STAFF_LAPTOP[1]
    assert (len(body["incidents"]), len(body["observations"])) == (1, 1)
    assert harness.audit_count("export") == 1


def test_subject_access_export_as_a_zip_of_csv_files(harness: AppHarness) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/export", data={"csrf_token": token, "format": "csv"}
    )
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = sorted(name.rsplit("/", 1)[1] for name in archive.namelist())
        incidents = [n for n in archive.namelist() if n.endswith("/incidents.csv")][0]
        lines = archive.read(incidents).decode().splitlines()
    assert names == [
        "devices.csv", "embedded_counts.csv", "incident_reviews.csv", "incidents.csv",
        "observations.csv",
    ]  # fmt: skip
    assert len(lines) == 2 and STAFF_LAPTOP[1] in lines[1]
    assert harness.audit_count("export") == 1


def test_erase_asks_for_confirmation_first(harness: AppHarness) -> None:
    devices, _ = admin_with_devices(harness)
    response = harness.client.get(f"/devices/{devices.staff}/erase")
    assert response.template.name == "pages/devices/erase.html"  # type: ignore[attr-defined]
    assert count(harness, IncidentRecord) == 2
    assert harness.audit_count("view_device") == 1


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "request from the teacher", "confirm": "aa:bb:cc:00:00:02"},
        {"reason": "request from the teacher", "confirm": ""},
        {"reason": "   ", "confirm": STAFF_LAPTOP[1]},
        {"confirm": STAFF_LAPTOP[1]},
    ],
)
def test_erase_without_reason_or_confirmation_erases_nothing(
    harness: AppHarness, data: dict[str, str]
) -> None:
    devices, token = admin_with_devices(harness)
    response = harness.client.post(
        f"/devices/{devices.staff}/erase", data={"csrf_token": token, **data}
    )
    assert response.status_code == 400
    assert count(harness, IncidentRecord) == 2
    assert harness.audit_count("erase_device") == 0


def test_erase_deletes_every_record_of_the_device_and_audits_the_reason(
    harness: AppHarness,
) -> None:
    devices, token = admin_with_devices(harness)
    harness.client.get(f"/devices/{devices.staff}/erase")  # audited with the device's MAC
    assert STAFF_LAPTOP[1] in json.dumps(harness.audit_rows()[-1].detail)
    response = harness.client.post(
        f"/devices/{devices.staff}/erase",
        data={
            "csrf_token": token,
            "reason": "erasure request ref 14",
            "confirm": STAFF_LAPTOP[1].upper(),
        },
        follow_redirects=False,
    )
    assert (response.status_code, response.headers["location"]) == (303, "/devices?done=erased")
    assert count(harness, IncidentRecord, IncidentRecord.device_mac == STAFF_LAPTOP[1]) == 0
    assert count(harness, ObservationRecord) == 0
    assert count(harness, DeviceRecord, DeviceRecord.site == "school", DeviceRecord.mac == STAFF_LAPTOP[1]) == 0  # fmt: skip
    assert count(harness, IncidentRecord) == 1  # the routed PC's incident stays
    assert harness.audit_count("erase_device") == 1
    erasure = harness.audit_rows()[-1]
    assert (erasure.detail["reason"], erasure.detail["incidents"]) == ("erasure request ref 14", 1)
    assert erasure.detail["device_digest"] == identity_digest(STAFF_LAPTOP[1])
    # the erasure and the earlier views of the device name it only by its digest now
    assert all(
        STAFF_LAPTOP[1] not in json.dumps([row.detail, row.target_id])
        for row in harness.audit_rows()
    )


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("label", {"label": "Mr Lee, room B12"}),
        ("merge", {"new_mac": NEW_MAC, "reason": "new network card"}),
        ("erase", {"reason": "erasure request ref 15", "confirm": STAFF_LAPTOP[1]}),
    ],
)
def test_an_all_sites_admin_changes_only_the_devices_own_site(
    harness: AppHarness, action: str, data: dict[str, str]
) -> None:
    """The annex has a device with the same address and MAC: it is another school's device."""
    devices, token = admin_with_devices(harness)
    with harness.db() as db:
        add_observation(db, add_incident(db, site=OTHER_SITE), site=OTHER_SITE)
        db.commit()
    response = harness.client.post(
        f"/devices/{devices.staff}/{action}",
        data={"csrf_token": token, **data},
        follow_redirects=False,
    )
    assert response.status_code == 303
    annex = IncidentRecord.site == OTHER_SITE
    assert count(harness, IncidentRecord, annex, IncidentRecord.device_mac == STAFF_LAPTOP[1]) == 1
    assert count(harness, IncidentRecord, annex, IncidentRecord.device_label.is_(None)) == 1
    assert count(harness, ObservationRecord, ObservationRecord.site == OTHER_SITE, ObservationRecord.client_mac == STAFF_LAPTOP[1]) == 1  # fmt: skip
    with harness.db() as db:
        device = db.get(DeviceRecord, devices.annex)
    assert device is not None and (device.mac, device.label) == (STAFF_LAPTOP[1], None)


def test_an_all_sites_admins_export_holds_only_the_devices_own_site(harness: AppHarness) -> None:
    devices, token = admin_with_devices(harness)
    with harness.db() as db:
        add_observation(db, add_incident(db, site=OTHER_SITE), site=OTHER_SITE)
        db.commit()
    response = harness.client.post(
        f"/devices/{devices.staff}/export", data={"csrf_token": token, "format": "json"}
    )
    body = json.loads(response.content)
    rows = [row for table in ("incidents", "observations", "devices") for row in body[table]]
    assert rows and {row["site"] for row in rows} == {"school"}
