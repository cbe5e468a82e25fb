"""``/api/v1/devices``: list and read devices (reviewers, admins); label one (admins).

Reading a device, labelling one and reading a page of the list that holds devices (identities
in bulk: one row naming the query, as the CSV export does) write one audit row each in the same
transaction. A user
limited to a site sees only that site's devices (another site's device is a 404). Governors
get 403: a device is identity.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from api.auth import client_address
from api.deps import SessionDep
from api.params import DeviceId, Page
from api.reads import DEVICE, read_viewed
from api.routes import BAD_BODY, NOT_FOUND, Admin, PerPage, Reviewer, api_router
from api.schemas import DeviceDetailOut, DeviceListOut, LabelIn, LabelOut
from monitor.store.audit import AuditAction, list_read_detail, record_bulk_read, record_event
from monitor.store.queries import get_device, label_device, list_devices

router = api_router("devices")


@router.get("", summary="List devices")
def devices_list(
    request: Request,
    user: Reviewer,
    db: SessionDep,
    search: Annotated[
        str | None,
        Query(max_length=200, description="Part of the MAC, IP address, host name or label."),
    ] = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> DeviceListOut:
    """Devices seen most recently first (one row per MAC and address binding). A page with
    devices is audited (``view_list``, with the search)."""
    found = list_devices(db, user.site, search=search, page=page, per_page=per_page)
    if found.items:
        record_bulk_read(
            db, user=user, action=AuditAction.VIEW_LIST, target_type="devices",
            filters={"search": search} if search else {},
            detail=list_read_detail("api", page, per_page, len(found.items), found.total),
            address=client_address(request), site=user.site,
        )  # fmt: skip
        db.commit()
    return DeviceListOut.model_validate(found)


@router.get("/{device_id}", summary="Get one device", responses=NOT_FOUND)
def device_get(
    device_id: DeviceId, request: Request, user: Reviewer, db: SessionDep
) -> DeviceDetailOut:
    """A device with its other addresses, incident counts, last activity and latest incidents.
    Audited (``view_device``)."""
    detail = read_viewed(request, db, user, DEVICE, device_id, {"via": "api"})
    return DeviceDetailOut.model_validate(detail)


@router.put(
    "/{device_id}/label",
    summary="Label a device (admin)",
    responses={**BAD_BODY, **NOT_FOUND},
)
def device_label(
    device_id: DeviceId, body: LabelIn, request: Request, user: Admin, db: SessionDep
) -> LabelOut:
    """Set the device's label (every address of its MAC, or the address when the MAC is
    unknown) and the label frozen into its incidents; an empty label clears it. Audited
    (``label_device``)."""
    device = get_device(db, device_id, user.site).device
    result = label_device(
        db,
        device.mac,
        None if device.mac else device.ip,
        body.label,
        site_scope=device.site,  # a device is one school's
    )
    record_event(
        db,
        user=user,
        action=AuditAction.LABEL_DEVICE,
        target_type="device",
        target_id=device_id,
        detail={"label": result.label, "devices": result.devices, "incidents": result.incidents},
        address=client_address(request),
        site=device.site,
    )
    db.commit()
    return LabelOut.model_validate(result)
