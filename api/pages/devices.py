"""Devices, for the IT technician: find one, see its segment, activity and incidents, label it,
merge it into its new MAC address, export everything held about it, or erase it.

Admin only (DESIGN.md: labelling devices is the IT technician's job; reviewers see a device's
identity on its incidents). Every view of a device page and every change or export writes
exactly one audit row in the same transaction as what it records. Forms are CSRF-protected
and answer with a redirect (Post/Redirect/Get); the exports answer the POST with the file.

Subject-access export: JSON (one object, every table) or CSV (a zip holding one CSV file per
table, so that a person gets one download with everything). Erasure needs a reason and the
device's MAC (or address) typed again on a confirmation page; ``erase_device`` deletes, audits
(naming the device only by a digest) and tells the running capture to forget the device.

A device is one school's: a trust's schools share private address ranges (and a laptop may
visit two), so every change and export acts on the device's own site only, even for an admin
who sees every site.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import client_address
from api.deps import CurrentUser, SessionDep, require_role
from api.pages import NavLink, redirect_to, render_page
from api.params import DeviceId, Page, Text
from api.reads import DEVICE, read_viewed
from monitor.store.audit import AuditAction, list_read_detail, record_bulk_read, record_event
from monitor.store.queries import (
    DeviceDetail,
    DevicePage,
    erase_device,
    export_device_records,
    get_device,
    label_device,
    list_devices,
    merge_devices,
)
from monitor.store.workflow import UserRole
from monitor.values import mac_or_ip

router = APIRouter(include_in_schema=False)
NAV: tuple[NavLink, ...] = (
    NavLink(
        "Devices",
        "device_list",
        frozenset({UserRole.ADMIN}),
        "Find a device, label it, merge it after a MAC change, export or erase its records.",
    ),
)

Admin = Annotated[CurrentUser, Depends(require_role(UserRole.ADMIN))]

LABEL_MAX_LENGTH = 200
REASON_MAX_LENGTH = 2000
NOTICES = {
    "labelled": "The label was saved; the device's incidents show it too.",
    "unlabelled": "The label was removed.",
    "merged": "The devices were merged: every record now carries the new MAC address.",
    "erased": "Every record held about the device was erased.",
}
"""Fixed messages a redirect may ask for (``?done=labelled``): never text from the URL."""


@dataclass(frozen=True, slots=True)
class DeviceListPage:
    """The device list with its search box."""

    devices: DevicePage
    notice: str | None
    """A confirmation after a change (from ``NOTICES``)."""


@dataclass(frozen=True, slots=True)
class DeviceViewPage:
    """One device: identity, segment, activity, incidents and the admin's forms."""

    detail: DeviceDetail
    subject: str
    """What names the device for export and erasure: its MAC, else its address."""
    notice: str | None


@dataclass(frozen=True, slots=True)
class EraseConfirmPage:
    """The confirmation step before erasing a device's records."""

    detail: DeviceDetail
    subject: str


class LabelForm(BaseModel):
    """The label form: empty clears the label."""

    label: Text = Field(default="", max_length=LABEL_MAX_LENGTH)


class MergeForm(BaseModel):
    """Merge this device's records into the MAC address it has now."""

    new_mac: Text = Field(min_length=1, max_length=40)
    reason: Text = Field(min_length=1, max_length=REASON_MAX_LENGTH)


class ExportForm(BaseModel):
    """Subject-access export: ``json`` or ``csv`` (a zip of one CSV per table)."""

    format: Literal["json", "csv"] = "json"


class EraseForm(BaseModel):
    """Erase: a reason, and the device's MAC (or address) typed again to confirm."""

    reason: Text = Field(min_length=1, max_length=REASON_MAX_LENGTH)
    confirm: Text = Field(default="", max_length=100)


def _subject(detail: DeviceDetail) -> str:
    return mac_or_ip(detail.device.mac, detail.device.ip)


def _audit(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    action: AuditAction,
    device: DeviceDetail,
    detail: dict[str, object],
) -> None:
    record_event(
        db,
        user=user,
        action=action,
        target_type="device",
        target_id=device.device.id,
        detail=detail,
        address=client_address(request),
        site=device.device.site,
    )


@router.get("/devices", name="device_list")
def device_list(
    request: Request,
    user: Admin,
    db: SessionDep,
    q: Annotated[str, Query(max_length=100)] = "",
    page: Page = 1,
    done: str = "",
) -> Response:
    """Devices seen most recently first; the search matches MAC, address, host name or label.
    A page with devices is audited (``view_list``, with the search), as the API's list is."""
    devices = list_devices(db, user.site, search=q or None, page=page)
    if devices.items:
        record_bulk_read(
            db, user=user, action=AuditAction.VIEW_LIST, target_type="devices",
            filters={"search": q} if q else {},
            detail=list_read_detail("page", devices.page, devices.per_page, len(devices.items),
                                    devices.total),
            address=client_address(request), site=user.site,
        )  # fmt: skip
        db.commit()
    return render_page(
        request, "pages/devices/list.html", DeviceListPage(devices, NOTICES.get(done))
    )


@router.get("/devices/{device_id}", name="device")
def device_view(
    request: Request, device_id: DeviceId, user: Admin, db: SessionDep, done: str = ""
) -> Response:
    """A device's page (audited as a view)."""
    detail = read_viewed(
        request, db, user, DEVICE, device_id, lambda found: {"subject": _subject(found)}
    )
    page = DeviceViewPage(detail, _subject(detail), NOTICES.get(done))
    return render_page(request, "pages/devices/device.html", page)


@router.post("/devices/{device_id}/label", name="label_device")
def device_label(
    request: Request,
    device_id: DeviceId,
    user: Admin,
    db: SessionDep,
    form: Annotated[LabelForm, Form()],
) -> Response:
    """Label the device (every address of its MAC) and its incidents."""
    detail = get_device(db, device_id, user.site)
    device = detail.device
    result = label_device(
        db, device.mac, None if device.mac else device.ip, form.label, device.site
    )
    _audit(
        request, db, user, AuditAction.LABEL_DEVICE, detail,
        {"subject": _subject(detail), "label": result.label, "incidents": result.incidents},
    )  # fmt: skip
    db.commit()
    done = "labelled" if result.label else "unlabelled"
    return redirect_to(request, "device", device_id=device_id, query={"done": done})


@router.post("/devices/{device_id}/merge", name="merge_device")
def device_merge(
    request: Request,
    device_id: DeviceId,
    user: Admin,
    db: SessionDep,
    form: Annotated[MergeForm, Form()],
) -> Response:
    """Rewrite this device's records to the MAC address it has now."""
    detail = get_device(db, device_id, user.site)
    if detail.device.mac is None:
        raise HTTPException(
            400, "This device has no known MAC address, so there is nothing to merge."
        )
    try:
        result = merge_devices(db, detail.device.mac, form.new_mac, form.reason, detail.device.site)
    except ValueError as error:
        raise HTTPException(400, f"The devices were not merged: {error}.") from None
    _audit(
        request, db, user, AuditAction.MERGE_DEVICES, detail,
        {
            "from_mac": result.from_mac, "to_mac": result.to_mac, "reason": result.reason,
            "incidents": result.incidents, "observations": result.observations,
            "embedded_counts": result.embedded_counts, "devices": result.devices,
        },
    )  # fmt: skip
    db.commit()
    return redirect_to(request, "device_list", query={"q": result.to_mac, "done": "merged"})


@router.post("/devices/{device_id}/export", name="export_device")
def device_export(
    request: Request,
    device_id: DeviceId,
    user: Admin,
    db: SessionDep,
    form: Annotated[ExportForm, Form()],
) -> Response:
    """Everything held about the device, as JSON or a zip of CSV files (audited)."""
    detail = get_device(db, device_id, user.site)
    subject = _subject(detail)
    export = export_device_records(db, subject, detail.device.site)
    counts = {name: len(rows) for name, rows in export.tables().items()}
    _audit(
        request, db, user, AuditAction.EXPORT, detail,
        {"kind": "subject_access", "subject": subject, "format": form.format, "rows": counts},
    )  # fmt: skip
    db.commit()
    stem = "subject-access-" + subject.replace(":", "").replace(".", "-")
    if form.format == "json":
        body = json.dumps(export.as_json_dict(), indent=2, ensure_ascii=False).encode()
        return _download(body, "application/json", f"{stem}.json")
    buffer = io.BytesIO()
    stamp = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in export.csv_files().items():
            archive.writestr(zipfile.ZipInfo(f"{stem}/{name}", stamp), text.encode())
    return _download(buffer.getvalue(), "application/zip", f"{stem}.zip")


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/devices/{device_id}/erase", name="erase_device_confirm")
def device_erase_confirm(
    request: Request, device_id: DeviceId, user: Admin, db: SessionDep
) -> Response:
    """The confirmation step: what will be erased, a reason and the device typed again."""
    detail = read_viewed(
        request, db, user, DEVICE, device_id,
        lambda found: {"subject": _subject(found), "page": "erase"},
    )  # fmt: skip
    subject = _subject(detail)
    return render_page(request, "pages/devices/erase.html", EraseConfirmPage(detail, subject))


@router.post("/devices/{device_id}/erase", name="erase_device")
def device_erase(
    request: Request,
    device_id: DeviceId,
    user: Admin,
    db: SessionDep,
    form: Annotated[EraseForm, Form()],
) -> Response:
    """Delete every record held about the device, once the reason and confirmation are given."""
    detail = get_device(db, device_id, user.site)
    subject = _subject(detail)
    if form.confirm.strip().lower() != subject.lower():
        raise HTTPException(
            400, f"Nothing was erased: type the device's {_kind(detail)} {subject} to confirm."
        )
    try:
        erase_device(
            db, subject, detail.device.site,
            user=user, reason=form.reason, address=client_address(request),
        )  # fmt: skip
    except ValueError as e:
        raise HTTPException(400, str(e)) from e
    db.commit()
    return redirect_to(request, "device_list", query={"done": "erased"})


def _kind(detail: DeviceDetail) -> str:
    return "MAC address" if detail.device.mac else "IP address"
