"""Devices for the admin's pages: list, look at one, label it, merge a device whose MAC changed.

A ``devices`` row is one binding of a MAC to an address (learnt from DHCP), so one laptop that
moved between addresses has several rows. Labelling names the device (every row of its MAC, or
the address where the MAC is unknown) and freezes the label into its incidents, which is what
the queue shows and searches. The functions change rows in the caller's transaction and return
what they changed; the caller commits and writes the audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Executable, and_, func, select, update
from sqlalchemy.orm import Session

from monitor.errors import NotFound
from monitor.store.models import (
    UNKNOWN_MAC,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
)
from monitor.store.queries.identity import no_mac, normalise_ip, normalise_mac, same_device
from monitor.store.queries.incidents import SUMMARY_COLUMNS, IncidentSummary, summary_of
from monitor.store.queries.scope import Window, contains_text, site_condition
from monitor.store.workflow import WAITING
from monitor.values import DeviceIdentity

RECENT_INCIDENTS_LIMIT = 20
"""How many of a device's incidents its page lists."""


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """One binding of a MAC (None when unknown) to an address."""

    id: int
    site: str
    mac: str | None
    ip: str
    host_name: str | None
    label: str | None
    first_seen: datetime
    last_seen: datetime

    @property
    def identity(self) -> DeviceIdentity:
        return DeviceIdentity.of(self.site, self.mac, self.ip)


@dataclass(frozen=True, slots=True)
class DevicePage:
    """One page of the device list."""

    items: tuple[DeviceSummary, ...]
    total: int
    page: int
    per_page: int
    pages: int
    search: str | None


@dataclass(frozen=True, slots=True)
class DeviceDetail:
    """A device's page: the binding, its other addresses, its incidents and last activity."""

    device: DeviceSummary
    addresses: tuple[DeviceSummary, ...]
    """The same MAC's other bindings (none when the MAC is unknown)."""
    incidents_count: int
    open_incidents: int
    """Incidents of the device still waiting for a decision (``new`` or ``in_review``)."""
    last_activity: datetime
    """The latest of its DHCP sightings and the end of its latest incident."""
    segment: str | None
    """The segment of its latest incident."""
    recent: tuple[IncidentSummary, ...]
    """Its latest incidents, newest first."""


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What ``label_device`` changed."""

    mac: str | None
    ip: str | None
    label: str | None
    devices: int
    """``devices`` rows labelled (including rows created for a device DHCP never named)."""
    incidents: int


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What ``merge_devices`` rewrote from ``from_mac`` to ``to_mac``, per table."""

    from_mac: str
    to_mac: str
    reason: str
    incidents: int
    observations: int
    embedded_counts: int
    devices: int


DEVICE_COLUMNS = (
    DeviceRecord.id, DeviceRecord.site, DeviceRecord.mac, DeviceRecord.ip, DeviceRecord.host_name,
    DeviceRecord.label, DeviceRecord.first_seen, DeviceRecord.last_seen,
)  # fmt: skip


def _device_of(row: Any) -> DeviceSummary:
    values = list(row)
    values[2] = values[2] or None
    return DeviceSummary(*values)


def list_devices(
    db: Session,
    site_scope: str | None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> DevicePage:
    """Devices seen most recently first; ``search`` is a substring of MAC, IP, host or label."""
    window = Window(page, per_page)
    table = DeviceRecord
    conditions = [site_condition(table.site, site_scope)]
    text = (search or "").strip()
    if text:
        columns = (table.mac, table.ip, table.host_name, table.label)
        conditions.append(contains_text(columns, text, db.get_bind().dialect.name))
    total = db.scalar(select(func.count()).select_from(table).where(*conditions)) or 0
    rows = db.execute(
        select(*DEVICE_COLUMNS)
        .where(*conditions)
        .order_by(table.last_seen.desc(), table.id.desc())
        .limit(window.per_page)
        .offset(window.offset)
    )
    return DevicePage(
        items=tuple(_device_of(row) for row in rows),
        total=total,
        page=window.page,
        per_page=window.per_page,
        pages=window.pages(total),
        search=text or None,
    )


def get_device(db: Session, device_id: int, site_scope: str | None = None) -> DeviceDetail:
    """A device's page; ``LookupError`` when missing or outside ``site_scope``."""
    row = db.execute(
        select(*DEVICE_COLUMNS).where(
            DeviceRecord.id == device_id, site_condition(DeviceRecord.site, site_scope)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no device {device_id}")
    device = _device_of(row)
    addresses: tuple[DeviceSummary, ...] = ()
    if device.mac is not None:
        others = db.execute(
            select(*DEVICE_COLUMNS)
            .where(DeviceRecord.site == device.site, DeviceRecord.mac == device.mac)
            .where(DeviceRecord.id != device.id)
            .order_by(DeviceRecord.last_seen.desc())
        )
        addresses = tuple(_device_of(other) for other in others)
    mine = same_device(device.site, device.mac, device.ip)
    count, waiting, last_end = db.execute(
        select(
            func.count(),
            func.count().filter(IncidentRecord.status.in_([status.value for status in WAITING])),
            func.max(IncidentRecord.end_at),
        ).where(mine)
    ).one()
    recent = tuple(
        summary_of(incident)
        for incident in db.execute(
            select(*SUMMARY_COLUMNS)
            .where(mine)
            .order_by(IncidentRecord.start_at.desc(), IncidentRecord.id.desc())
            .limit(RECENT_INCIDENTS_LIMIT)
        )
    )
    seen = max([device.last_seen, *(other.last_seen for other in addresses)])
    return DeviceDetail(
        device=device,
        addresses=addresses,
        incidents_count=count,
        open_incidents=waiting,
        last_activity=max(seen, last_end) if last_end is not None else seen,
        segment=recent[0].device_segment if recent else None,
        recent=recent,
    )


def label_device(
    db: Session, mac: str | None, ip: str | None, label: str | None, site_scope: str | None = None
) -> LabelResult:
    """Label the device with ``mac`` (all its addresses), else the MAC-less device at ``ip``.

    An empty label clears it. A device known only from its incidents gets ``devices`` rows
    (one per address) so that its later incidents are labelled too. ``LookupError`` when
    nothing is held for the device; ``ValueError`` for a malformed MAC or address.
    """
    mac = normalise_mac(mac) if mac else None
    ip = normalise_ip(ip) if ip else None
    if mac is None and ip is None:
        raise ValueError("name the device to label by its MAC address or IP address")
    label = (label or "").strip() or None
    devices, incidents = DeviceRecord, IncidentRecord
    if mac is not None:
        device_rows = and_(devices.mac == mac, site_condition(devices.site, site_scope))
        incident_rows = and_(
            incidents.device_mac == mac, site_condition(incidents.site, site_scope)
        )
    else:
        device_rows = and_(devices.mac == UNKNOWN_MAC, devices.ip == ip, site_condition(devices.site, site_scope))  # fmt: skip
        incident_rows = and_(incidents.device_ip == ip, no_mac(incidents.device_mac), site_condition(incidents.site, site_scope))  # fmt: skip
    labelled = _rowcount(db, update(DeviceRecord).where(device_rows).values(label=label))
    if labelled == 0:
        labelled = _add_devices_from_incidents(db, incident_rows, mac, label)
    changed = _rowcount(db, update(IncidentRecord).where(incident_rows).values(device_label=label))
    if labelled == 0 and changed == 0:
        raise NotFound(f"nothing is held for device {mac or ip}")
    return LabelResult(mac=mac, ip=ip, label=label, devices=labelled, incidents=changed)


def _add_devices_from_incidents(
    db: Session, incident_rows: ColumnElement[bool], mac: str | None, label: str | None
) -> int:
    table = IncidentRecord
    bindings = db.execute(
        select(table.site, table.device_ip, func.min(table.start_at), func.max(table.end_at))
        .where(incident_rows)
        .group_by(table.site, table.device_ip)
    ).all()
    for site, ip, first_seen, last_seen in bindings:
        db.add(
            DeviceRecord(
                site=site, mac=mac or UNKNOWN_MAC, ip=ip, label=label,
                first_seen=first_seen, last_seen=last_seen,
            )
        )  # fmt: skip
    db.flush()
    return len(bindings)


def merge_devices(
    db: Session, from_mac: str, to_mac: str, reason: str, site_scope: str | None = None
) -> MergeResult:
    """Rewrite every row of ``from_mac`` to ``to_mac`` (a device whose MAC changed).

    Device bindings and embedded counts that then collide with the surviving MAC's are
    combined (earliest first-seen, latest last-seen, the survivor's label first; counts
    added). Incident keys stay as they are. ``ValueError`` for a bad MAC, the same MAC twice
    or an empty reason; ``LookupError`` when nothing is held for ``from_mac``.
    """
    old, new = normalise_mac(from_mac), normalise_mac(to_mac)
    if old == new:
        raise ValueError(f"merging {old} into itself: give the device's new MAC address")
    reason = reason.strip()
    if not reason:
        raise ValueError("merging devices needs a reason")
    incidents = _rowcount(
        db,
        update(IncidentRecord)
        .where(IncidentRecord.device_mac == old, site_condition(IncidentRecord.site, site_scope))
        .values(device_mac=new),
    )
    observations = _rowcount(
        db,
        update(ObservationRecord)
        .where(ObservationRecord.client_mac == old, site_condition(ObservationRecord.site, site_scope))
        .values(client_mac=new),
    )  # fmt: skip
    embedded = _merge_embedded(db, old, new, site_scope)
    devices = _merge_bindings(db, old, new, site_scope)
    if not (incidents or observations or embedded or devices):
        raise NotFound(f"nothing is held for device {old}")
    survivor_label = db.scalar(
        select(DeviceRecord.label)
        .where(DeviceRecord.mac == new, DeviceRecord.label.is_not(None))
        .where(site_condition(DeviceRecord.site, site_scope))
        .order_by(DeviceRecord.last_seen.desc())
        .limit(1)
    )
    if survivor_label is not None:
        db.execute(
            update(IncidentRecord)
            .where(IncidentRecord.device_mac == new, IncidentRecord.device_label.is_(None))
            .where(site_condition(IncidentRecord.site, site_scope))
            .values(device_label=survivor_label)
        )
    db.flush()
    return MergeResult(old, new, reason, incidents, observations, embedded, devices)


def _merge_embedded(db: Session, old: str, new: str, site_scope: str | None) -> int:
    table = EmbeddedCountRecord
    rows = db.scalars(
        select(table).where(table.device_mac == old, site_condition(table.site, site_scope))
    ).all()
    for row in rows:
        survivor = db.get(table, (row.site, row.day, row.device_ip, new, row.platform))
        if survivor is None:
            row.device_mac = new
        else:
            survivor.count += row.count
            db.delete(row)
        db.flush()
    return len(rows)


def _merge_bindings(db: Session, old: str, new: str, site_scope: str | None) -> int:
    table = DeviceRecord
    rows = db.scalars(
        select(table).where(table.mac == old, site_condition(table.site, site_scope))
    ).all()
    for row in rows:
        survivor = db.scalars(
            select(table).where(table.site == row.site, table.mac == new, table.ip == row.ip)
        ).one_or_none()
        if survivor is None:
            row.mac = new
        else:
            if row.last_seen > survivor.last_seen:
                survivor.host_name = row.host_name or survivor.host_name
            survivor.first_seen = min(survivor.first_seen, row.first_seen)
            survivor.last_seen = max(survivor.last_seen, row.last_seen)
            survivor.label = survivor.label or row.label
            db.delete(row)
        db.flush()
    return len(rows)


def _rowcount(db: Session, statement: Executable) -> int:
    result = db.execute(statement)
    return result.rowcount if isinstance(result, CursorResult) else 0
