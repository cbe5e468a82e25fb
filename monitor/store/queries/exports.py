"""Exports: the queue as CSV, everything held about one device (subject access), and erasure.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) are prefixed with ``'``: a device label or host name is chosen by
whoever named the device, not by the school.

A device is named by MAC or IP address (:func:`~monitor.store.queries.identity.parse_device_ref`).
By MAC, its rows are those with that MAC; by IP address, every row with that address, whichever
device had it (the export lists the MACs found, so the admin sees when an address was shared).
Both functions work in the caller's transaction; the caller commits and writes the audit event.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Executable, delete, inspect, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from monitor.store.models import (
    Base,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    IncidentReviewRecord,
    ObservationRecord,
)
from monitor.store.queries.identity import DeviceRef, parse_device_ref
from monitor.store.queries.incidents import (
    DEFAULT_SORT,
    SUMMARY_COLUMNS,
    IncidentFilters,
    incident_conditions,
    incident_order,
    summary_of,
)
from monitor.store.queries.scope import site_condition

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


def erase_device(db: Session, mac_or_ip: str, site_scope: str | None = None) -> ErasureResult:
    """Delete every row held about the device; counts per table (zeros when nothing was held)."""
    ref = parse_device_ref(mac_or_ip)
    conditions = _device_conditions(ref, site_scope)
    counts = {
        name: _rowcount(db, delete(model).where(condition).execution_options(synchronize_session="fetch"))
        for name, (model, condition) in conditions.items()
    }  # fmt: skip
    return ErasureResult(subject=str(ref), **counts)


def _device_conditions(
    ref: DeviceRef, site_scope: str | None
) -> dict[str, tuple[type[Base], ColumnElement[bool]]]:
    """Per table (in a safe deletion order): the model and the rows of the device."""

    def match(
        mac: InstrumentedAttribute[Any], ip: InstrumentedAttribute[str]
    ) -> ColumnElement[bool]:
        return mac == ref.mac if ref.mac is not None else ip == ref.ip

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
