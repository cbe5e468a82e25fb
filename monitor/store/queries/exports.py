"""Exports: the queue as CSV, everything held about one device (subject access), and erasure.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) are prefixed with ``'``: a device label or host name is chosen by
whoever named the device, not by the school.

A device is named by MAC or IP address (:func:`~monitor.store.queries.identity.parse_device_ref`).
By MAC, its rows are those with that MAC; by IP address, every row with that address, whichever
device had it (the export lists the MACs found, so the admin sees when an address was shared).
Erasure by MAC also takes the rows with no MAC known at the addresses the MAC was seen with
(a routed segment names a device by its address only): for an erasure, erring towards removing
is the safe side. Both functions work in the caller's transaction; the caller commits. The
export's caller writes its audit event; ``erase_device`` writes its own (the page and the
``hallmonitor devices erase`` command share it), and leaves a signal for the running capture
(``monitor.store.erasures``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    String,
    cast,
    delete,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from monitor.devices import identity_digest
from monitor.store.audit import Actor, AuditAction, NamedActor, record_event
from monitor.store.erasures import POLL_INTERVAL_S, lock_for_erasure
from monitor.store.models import (
    AuditEventRecord,
    Base,
    DeviceRecord,
    EmbeddedCountRecord,
    ErasureRecord,
    IncidentRecord,
    IncidentReviewRecord,
    ObservationRecord,
)
from monitor.store.queries.identity import MAC_PATTERN, DeviceRef, no_mac, parse_device_ref
from monitor.store.queries.incidents import (
    DEFAULT_SORT,
    SUMMARY_COLUMNS,
    IncidentFilters,
    incident_conditions,
    incident_order,
    summary_of,
)
from monitor.store.queries.scope import site_condition
from monitor.store.user_admin import cli_actor, run_in_transaction

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is prefixed with ``'`` so that it stays text."""
CSV_BATCH_ROWS = 1000
"""Rows fetched at a time while streaming the queue as CSV."""

INCIDENT_CSV_COLUMNS = {
    "id": IncidentRecord.id, "site": IncidentRecord.site, "start": IncidentRecord.start_at,
    "end": IncidentRecord.end_at, "platform": IncidentRecord.platform,
    "category": IncidentRecord.category, "device_ip": IncidentRecord.device_ip,
    "device_mac": IncidentRecord.device_mac, "device_host_name": IncidentRecord.device_host_name,
    "device_label": IncidentRecord.device_label, "segment": IncidentRecord.device_segment,
    "role": IncidentRecord.role, "active_minutes": IncidentRecord.active_minutes,
    "confidence": IncidentRecord.confidence, "hits": IncidentRecord.hit_count,
    "state": IncidentRecord.state, "status": IncidentRecord.status,
    "outcome": IncidentRecord.outcome, "connections": IncidentRecord.connections,
    "lookups": IncidentRecord.lookups, "attribution": IncidentRecord.attribution,
}  # fmt: skip
"""The queue's CSV: header name -> column (then the explanation's columns)."""
EXPLANATION_CSV_COLUMNS = ("level", "reasons", "seen", "limits")
"""The confidence explanation of each row (``IncidentSummary.explain``); reasons joined by ``; ``."""

ExportRow = dict[str, Any]
"""A row as plain JSON values: times and days as ISO text, evidence as a list of objects."""


@dataclass(frozen=True, slots=True)
class DeviceExport:
    """Everything held about one device, per table, as plain rows."""

    subject: str
    """The MAC or IP address asked for."""
    macs: tuple[str, ...]
    """The MAC addresses found in the rows (several when an address was shared)."""
    incidents: tuple[ExportRow, ...]
    incident_reviews: tuple[ExportRow, ...]
    observations: tuple[ExportRow, ...]
    embedded_counts: tuple[ExportRow, ...]
    devices: tuple[ExportRow, ...]

    def tables(self) -> dict[str, tuple[ExportRow, ...]]:
        """Table name -> rows."""
        return {
            "incidents": self.incidents,
            "incident_reviews": self.incident_reviews,
            "observations": self.observations,
            "embedded_counts": self.embedded_counts,
            "devices": self.devices,
        }

    def as_json_dict(self) -> dict[str, Any]:
        """The export as one JSON object."""
        return {"subject": self.subject, "macs": list(self.macs)} | {
            name: list(rows) for name, rows in self.tables().items()
        }

    def csv_files(self) -> dict[str, str]:
        """``<table>.csv`` -> CSV text (header and rows; nested values as JSON)."""
        files = {}
        for name, rows in self.tables().items():
            columns = list(Base.metadata.tables[name].columns.keys())
            files[f"{name}.csv"] = "".join(
                [_csv_line(columns), *(_csv_line([row[c] for c in columns]) for row in rows)]
            )
        return files


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """Rows deleted per table by ``erase_device``."""

    subject: str
    """The MAC or address erased (for the caller's reply only: never stored)."""
    digest: str
    """How the audit log and the ``erasures`` table name the device."""
    audit_events_redacted: int
    """Earlier audit rows whose mention of the device now reads as its digest."""
    incidents: int
    incident_reviews: int
    observations: int
    embedded_counts: int
    devices: int

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return (
            self.incidents
            + self.incident_reviews
            + self.observations
            + self.embedded_counts
            + self.devices
        )


def csv_safe(value: object) -> object:
    """``value`` with a ``'`` in front if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def incidents_csv(
    db: Session, filters: IncidentFilters, site_scope: str | None, *, sort: str = DEFAULT_SORT
) -> Iterator[str]:
    """The filtered queue as CSV lines, header first, fetched in batches while iterated.

    Times are in ``filters.tz`` when given, else UTC (ISO 8601 with the offset). Iterate
    inside the session's lifetime.
    """
    order = incident_order(sort)
    conditions = incident_conditions(filters, site_scope, db.get_bind().dialect.name)
    tz = filters.tz or UTC
    yield _csv_line([*INCIDENT_CSV_COLUMNS, *EXPLANATION_CSV_COLUMNS])
    rows = db.execute(
        select(*SUMMARY_COLUMNS)
        .where(*conditions)
        .order_by(*order)
        .execution_options(yield_per=CSV_BATCH_ROWS)
    )
    for row in rows:
        summary = summary_of(row)
        explanation = summary.explain(filters.floor, tz)
        values = (getattr(summary, column.key) for column in INCIDENT_CSV_COLUMNS.values())
        yield _csv_line(
            [
                *(
                    value.astimezone(tz).isoformat() if isinstance(value, datetime) else value
                    for value in values
                ),
                explanation.level.value,
                "; ".join(explanation.reasons),
                explanation.seen,
                explanation.limits,
            ]
        )


def export_device_records(
    db: Session, mac_or_ip: str, site_scope: str | None = None
) -> DeviceExport:
    """Every row held about the device (``ValueError`` when ``mac_or_ip`` is neither)."""
    ref = parse_device_ref(mac_or_ip)
    conditions = _device_conditions(ref, site_scope)
    rows = {
        name: tuple(_plain(record) for record in db.scalars(select(model).where(condition).order_by(*_order(model))))
        for name, (model, condition) in conditions.items()
    }  # fmt: skip
    macs = sorted(
        {row.get("device_mac") or row.get("client_mac") or row.get("mac") or "" for name, table in rows.items() if name != "incident_reviews" for row in table}
        - {""}
    )  # fmt: skip
    return DeviceExport(subject=str(ref), macs=tuple(macs), **rows)


def erase_device(
    db: Session,
    mac_or_ip: str,
    site: str,
    *,
    user: Actor | None,
    reason: str,
    address: str | None,
    at: datetime | None = None,
) -> ErasureResult:
    """Erase the device at ``site``, in the caller's transaction (the caller commits).

    Deletes every row about it (see the module docstring), replaces its MAC and addresses in
    earlier audit rows by their digest, records the digests in ``erasures`` (the running
    capture forgets the device, and nothing dated before ``at`` is stored again) and writes
    the erasure's own audit row, which names the device only by its digest. The web page and
    ``hallmonitor devices erase`` both call this. Erasing again deletes nothing and is audited
    again. ``ValueError`` when ``mac_or_ip`` is neither or there is no reason.
    """
    ref = parse_device_ref(mac_or_ip)
    reason = reason.strip()
    if not reason:
        raise ValueError("Nothing was erased: give the reason for erasing.")
    at = at if at is not None else datetime.now(UTC)
    lock_for_erasure(db)
    addresses = _addresses(db, ref, site)
    conditions = _device_conditions(ref, site, addresses)
    counts = {
        name: _rowcount(db, delete(model).where(condition).execution_options(synchronize_session="fetch"))
        for name, (model, condition) in conditions.items()
    }  # fmt: skip
    identities = [str(ref), *addresses]
    digest = identity_digest(str(ref))
    redacted = _redact_audit(db, identities, digest)
    db.add_all(
        ErasureRecord(
            site=site,
            digest=identity_digest(identity),
            every_device=ref.ip is not None,
            erased_at=at,
        )
        for identity in identities
    )
    record_event(
        db, user=user, action=AuditAction.ERASE_DEVICE, target_type="device", target_id=None,
        detail={
            "device_digest": digest, "reason": _redacted(reason, identities, digest),
            "addresses": len(addresses), **counts, "audit_events_redacted": redacted,
        },
        address=address, at=at, site=site,
    )  # fmt: skip
    return ErasureResult(subject=str(ref), digest=digest, audit_events_redacted=redacted, **counts)


def _addresses(db: Session, ref: DeviceRef, site: str) -> list[str]:
    """For a MAC: every address it was seen with at ``site`` (its rows with no MAC there are
    the device's too); for an address: none besides it."""
    mac = ref.mac
    if mac is None:
        return []
    found: set[str] = set()
    for model, mac_column, ip_column in (
        (DeviceRecord, DeviceRecord.mac, DeviceRecord.ip),
        (IncidentRecord, IncidentRecord.device_mac, IncidentRecord.device_ip),
        (ObservationRecord, ObservationRecord.client_mac, ObservationRecord.client_ip),
        (EmbeddedCountRecord, EmbeddedCountRecord.device_mac, EmbeddedCountRecord.device_ip),
    ):
        query = select(ip_column).distinct().where(mac_column == mac, model.site == site)
        found.update(db.scalars(query))
    return sorted(found)


def _redact_audit(db: Session, identities: list[str], digest: str) -> int:
    """Replace the erased identities in audit rows (details, targets) by the device's digest;
    how many rows changed. The rows stay: who saw or did what stays on record."""
    table = AuditEventRecord
    text = func.lower(cast(table.detail, String))
    candidates = db.scalars(
        select(table).where(
            or_(
                *(text.contains(form, autoescape=True) for form in _written_forms(identities)),
                table.target_id.in_(identities),
            )
        )
    )
    changed = 0
    for event in candidates:
        detail = _redacted(event.detail, identities, digest)
        target_id = _redacted(event.target_id, identities, digest)
        if detail != event.detail or target_id != event.target_id:
            event.detail, event.target_id = detail, target_id
            changed += 1
    return changed


def _written_forms(identities: list[str]) -> list[str]:
    """Each identity as it may be written (lowercase): a MAC in each notation it is accepted in."""
    forms = []
    for identity in identities:
        forms.append(identity)
        if MAC_PATTERN.fullmatch(identity):
            digits = identity.replace(":", "")
            forms += [
                identity.replace(":", "-"),
                ".".join(digits[i : i + 4] for i in (0, 4, 8)),
                digits,
            ]
    return forms


def _redacted(value: Any, identities: list[str], digest: str) -> Any:
    """``value`` (JSON: text, lists, objects) with every identity replaced by the digest."""
    if isinstance(value, str):
        return _identity_pattern(identities).sub(f"erased device {digest}", value)
    if isinstance(value, list):
        return [_redacted(item, identities, digest) for item in value]
    if isinstance(value, dict):
        return {
            _redacted(key, identities, digest): _redacted(item, identities, digest)
            for key, item in value.items()
        }
    return value


def _identity_pattern(identities: list[str]) -> re.Pattern[str]:
    """The identities as written anywhere: a MAC in any notation, an address whole."""
    parts = []
    for identity in identities:
        if MAC_PATTERN.fullmatch(identity):
            octets = identity.split(":")
            parts.append("[:.-]?".join(octets))
        else:
            parts.append(re.escape(identity))
    return re.compile(rf"(?<![\w:.])(?:{'|'.join(parts)})(?![\w:]|\.\w)", re.IGNORECASE)


def _device_conditions(
    ref: DeviceRef, site_scope: str | None, addresses: list[str] | None = None
) -> dict[str, tuple[type[Base], ColumnElement[bool]]]:
    """Per table (in a safe deletion order): the model and the rows of the device.

    By MAC, with ``addresses``: also the rows with no MAC known at those addresses."""

    def match(
        mac: InstrumentedAttribute[Any], ip: InstrumentedAttribute[str]
    ) -> ColumnElement[bool]:
        if ref.mac is None:
            return ip == ref.ip
        if addresses:
            return or_(mac == ref.mac, no_mac(mac) & ip.in_(addresses))
        return mac == ref.mac

    incidents = match(IncidentRecord.device_mac, IncidentRecord.device_ip) & site_condition(IncidentRecord.site, site_scope)  # fmt: skip
    incident_ids = select(IncidentRecord.id).where(incidents)
    incident_keys = select(IncidentRecord.key).where(incidents)
    observations = or_(
        match(ObservationRecord.client_mac, ObservationRecord.client_ip),
        ObservationRecord.incident_key.in_(incident_keys),
    ) & site_condition(ObservationRecord.site, site_scope)
    return {
        "incident_reviews": (IncidentReviewRecord, IncidentReviewRecord.incident_id.in_(incident_ids)),
        "observations": (ObservationRecord, observations),
        "incidents": (IncidentRecord, incidents),
        "embedded_counts": (
            EmbeddedCountRecord,
            match(EmbeddedCountRecord.device_mac, EmbeddedCountRecord.device_ip) & site_condition(EmbeddedCountRecord.site, site_scope),
        ),
        "devices": (DeviceRecord, match(DeviceRecord.mac, DeviceRecord.ip) & site_condition(DeviceRecord.site, site_scope)),
    }  # fmt: skip


def _order(model: type[Base]) -> list[Any]:
    return list(inspect(model).primary_key)


def _plain(record: Base) -> ExportRow:
    row: ExportRow = {}
    for column in record.__table__.columns:
        value = getattr(record, column.key)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        row[column.key] = value
    return row


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    cells = [json.dumps(v) if isinstance(v, list | dict) else csv_safe(v) for v in values]
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def _rowcount(db: Session, statement: Executable) -> int:
    result = db.execute(statement)
    return result.rowcount if isinstance(result, CursorResult) else 0


def run_devices_erase(url: str, mac_or_ip: str, site: str, reason: str, by: str | None) -> str:
    """``hallmonitor devices erase``: ``erase_device`` in one committed transaction, audited as
    ``cli:<login name>`` (or ``cli:<by>``); the line to print."""
    actor = NamedActor(None, "cli:" + by) if by else cli_actor()
    result = run_in_transaction(
        url, lambda db: erase_device(db, mac_or_ip, site, user=actor, reason=reason, address=None)
    )
    tables = ", ".join(
        f"{count} {name.replace('_', ' ')}"
        for name, count in (
            ("incidents", result.incidents), ("incident_reviews", result.incident_reviews),
            ("observations", result.observations), ("embedded_counts", result.embedded_counts),
            ("devices", result.devices),
        )
    )  # fmt: skip
    return (
        f"erased {result.subject} at site {site!r}: {tables} deleted; "
        f"{result.audit_events_redacted} audit events now name it as {result.digest}; "
        "a running capture forgets it within "
        f"{POLL_INTERVAL_S:.0f} seconds"
    )
