"""What the writer stores: the spool encoding of the item types and the SQL that applies them.

The item types themselves are plain values in ``monitor.records`` (what the engine emits).

Every item is encoded as a JSON object tagged with its type and version (``{"t": "incident",
"v": 1, ...}``), whether it goes to the database now or to the spool first, so that both paths
run the same ``apply_records``. Timestamps are epoch seconds in the encoding and timezone-aware
UTC datetimes in the database; days are ISO dates.

The statements are idempotent and order-independent, which makes spool replays safe:
incidents are upserted by key and only ever move forward (more hits, or open -> closed), and
only while their review status is ``new``: a decided incident keeps what was decided, and the
activity's later hits go to a continuation linked to it (``_upsert_incidents``);
counters add (exactly-once through ``applied_batches``); device bindings keep the earliest
first-seen, the latest last-seen and the latest host name. The review columns (``status``,
``outcome``) and admin labels are never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, assert_never

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.confidence import basis_from_evidence
from monitor.records import (
    CaptureRecorded,
    CounterIncrement,
    DeviceSeen,
    EmbeddedCountRow,
    EngineItem,
    StoredObservation,
)
from monitor.store.erasures import drop_erased
from monitor.store.models import (
    UNKNOWN_MAC,
    AppliedBatchRecord,
    DailyCounterRecord,
    DeviceRecord,
    EmbeddedCountRecord,
    IncidentRecord,
    ObservationRecord,
    RecordedCaptureRecord,
    ReplayPositionRecord,
)
from monitor.store.spool import SpoolRecord
from monitor.values import Incident

ITEM_VERSION = 1


@dataclass(frozen=True, slots=True)
class Positioned:
    """Record ``number`` of a replay of the capture file ``sha256`` (``monitor.store.ledger``).

    Stored only if the file's replay position (``replay_positions``) is below ``number``, in the
    transaction that moves the position up to it: each record of a replay is stored once, however
    often the replay is killed and run again. ``after`` is the digest of the files read before.
    """

    item: EngineItem
    sha256: str
    after: str
    number: int


WriterItem = EngineItem | Positioned
"""What the writer takes: what the engine emits, or a replay's numbered record of it."""

INCIDENT_FIELDS = [
    "key",
    "site",
    "platform",
    "category",
    "device_ip",
    "device_mac",
    "device_host_name",
    "device_segment",
    "device_label",
    "role",
    "start_at",
    "end_at",
    "active_minutes",
    "confidence",
    "hit_count",
    "state",
    "evidence",
    "connections",
    "lookups",
    "attribution",
]
OBSERVATION_FIELDS = [
    "site",
    "ts",
    "proto",
    "name",
    "client_ip",
    "client_mac",
    "server_ip",
    "server_port",
    "flags",
    "platform",
    "presence",
    "via",
    "incident_key",
]
FIELDS: dict[str, list[str]] = {
    "incident": INCIDENT_FIELDS,
    "observation": OBSERVATION_FIELDS,
    "counter": ["site", "day", "name", "count"],
    "embedded": ["site", "day", "device_ip", "device_mac", "platform", "count"],
    "device": ["site", "mac", "ip", "host_name", "ts"],
    "capture": ["site", "sha256", "file_name", "size_bytes", "frames"],
}
"""The fields of each item type's encoding (besides ``t`` and ``v``)."""
TIME_FIELDS = {"start_at", "end_at", "ts"}
DAY_FIELDS = {"day"}


def encode_item(item: WriterItem) -> dict[str, Any]:
    """The JSON object for ``item``: what the spool keeps and ``apply_records`` applies."""
    match item:
        case Incident():
            return _encode_incident(item)
        case StoredObservation(site, observation, found, incident_key):
            return {
                "t": "observation", "v": ITEM_VERSION, "site": site, "ts": observation.ts,
                "proto": observation.proto.value, "name": observation.name,
                "client_ip": observation.client_ip, "client_mac": observation.client_mac,
                "server_ip": observation.server_ip, "server_port": observation.server_port,
                "flags": ",".join(sorted(flag.value for flag in observation.flags)),
                "platform": found.platform, "presence": found.presence.value,
                "via": found.via.value, "incident_key": incident_key,
            }  # fmt: skip
        case CounterIncrement(site, day, name, count):
            return {"t": "counter", "v": ITEM_VERSION, "site": site, "day": day.isoformat(),
                    "name": name, "count": count}  # fmt: skip
        case EmbeddedCountRow(site, day, device_ip, device_mac, platform, count):
            return {"t": "embedded", "v": ITEM_VERSION, "site": site, "day": day.isoformat(),
                    "device_ip": device_ip, "device_mac": device_mac or UNKNOWN_MAC,
                    "platform": platform, "count": count}  # fmt: skip
        case DeviceSeen(site, mac, ip, host_name, ts):
            return {"t": "device", "v": ITEM_VERSION, "site": site, "mac": mac or UNKNOWN_MAC,
                    "ip": ip, "host_name": host_name, "ts": ts}  # fmt: skip
        case CaptureRecorded(site, sha256, file_name, size_bytes, frames):
            return {"t": "capture", "v": ITEM_VERSION, "site": site, "sha256": sha256,
                    "file_name": file_name, "size_bytes": size_bytes, "frames": frames}  # fmt: skip
        case Positioned(inner, sha256, after, number):
            return encode_item(inner) | {"replay": sha256, "after": after, "number": number}
        case _:
            assert_never(item)


def _encode_incident(incident: Incident) -> dict[str, Any]:
    device = incident.device
    return {
        "t": "incident", "v": ITEM_VERSION, "key": incident.key, "site": incident.site,
        "platform": incident.platform, "category": incident.category.value,
        "device_ip": device.ip, "device_mac": device.mac, "device_host_name": device.host_name,
        "device_segment": device.segment, "device_label": device.label,
        "role": incident.role.value if incident.role is not None else None,
        "start_at": incident.start, "end_at": incident.end,
        "active_minutes": incident.active_minutes, "confidence": incident.confidence,
        "hit_count": incident.hit_count, "state": incident.state.value,
        "evidence": [
            {"ts": e.ts, "proto": e.proto.value, "name": e.name, "via": e.via.value}
            for e in incident.evidence
        ],
        "connections": incident.basis.connections, "lookups": incident.basis.lookups,
        "attribution": incident.basis.attribution.value,
    }  # fmt: skip


def _with_basis_from_evidence(encoded: dict[str, Any]) -> dict[str, Any]:
    """An incident spooled before incidents had a basis: estimated as the migration does."""
    basis = basis_from_evidence(item for item in encoded["evidence"] if isinstance(item, dict))
    return encoded | {"connections": basis.connections, "lookups": basis.lookups,
                      "attribution": basis.attribution.value}  # fmt: skip


def decode_item(encoded: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The item type and database parameters of an encoded item; ``ValueError`` if unreadable."""
    kind = encoded.get("t")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ValueError(f"unknown item type {kind!r}")
    if encoded.get("v") != ITEM_VERSION:
        raise ValueError(f"{kind} item version {encoded.get('v')!r}, expected {ITEM_VERSION}")
    if (
        kind == "incident"
        and "connections" not in encoded
        and isinstance(encoded.get("evidence"), list)
    ):
        encoded = _with_basis_from_evidence(encoded)
    missing = [name for name in FIELDS[kind] if name not in encoded]
    if missing:
        raise ValueError(f"{kind} item without {', '.join(missing)}")
    params: dict[str, Any] = {}
    for name in FIELDS[kind]:
        value = encoded[name]
        try:
            if name in TIME_FIELDS:
                value = datetime.fromtimestamp(float(value), UTC)
            elif name in DAY_FIELDS:
                value = date.fromisoformat(value)
        except (TypeError, ValueError, OverflowError, OSError) as e:
            raise ValueError(f"{kind} item: bad {name} {value!r}") from e
        params[name] = value
    return kind, params


def apply_records(
    connection: Connection,
    records: list[SpoolRecord],
    *,
    now: datetime,
    skip_applied: bool,
    skipped: list[SpoolRecord] | None = None,
) -> tuple[int, list[tuple[dict[str, Any], str]]]:
    """Apply ``records`` in the caller's transaction; record their ids in ``applied_batches``.

    With ``skip_applied`` (spool replays), records whose id is already there are skipped (and
    added to ``skipped``, when given). Returns the number of items applied and the items that
    could not be decoded, with why.
    """
    todo = records
    if skip_applied:
        done = set(connection.scalars(select(AppliedBatchRecord.id).where(
            AppliedBatchRecord.id.in_([record.id for record in records])
        )))  # fmt: skip
        todo = [record for record in records if record.id not in done]
        if skipped is not None:
            skipped.extend(record for record in records if record.id in done)
    if not todo:
        return 0, []
    connection.execute(
        insert(AppliedBatchRecord), [{"id": record.id, "applied_at": now} for record in todo]
    )
    grouped: dict[str, list[dict[str, Any]]] = {kind: [] for kind in FIELDS}
    bad: list[tuple[dict[str, Any], str]] = []
    items = [item for record in todo for item in record.items]
    for item in _not_yet_stored(connection, items, bad):
        try:
            kind, params = decode_item(item)
        except ValueError as e:
            bad.append((item, str(e)))
            continue
        grouped[kind].append(params)
    drop_erased(connection, grouped)
    _upsert_incidents(connection, grouped["incident"], now)
    if grouped["observation"]:
        connection.execute(insert(ObservationRecord), grouped["observation"])
    _add_counts(connection, DailyCounterRecord, grouped["counter"])
    _add_counts(connection, EmbeddedCountRecord, grouped["embedded"])
    _upsert_devices(connection, grouped["device"])
    _enter_captures(connection, grouped["capture"], now)
    return sum(len(rows) for rows in grouped.values()), bad


def _replay_position(item: dict[str, Any]) -> tuple[str, str, str, int]:
    """The site, file, files before and number of a replay's record (``Positioned``)."""
    site, sha256, after, number = (item.get(name) for name in ("site", "replay", "after", "number"))
    if not (isinstance(site, str) and isinstance(sha256, str) and isinstance(after, str)):
        raise ValueError("replay record without its site, file or files before")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ValueError(f"replay record number {number!r}")
    return site, sha256, after, number


def _not_yet_stored(
    connection: Connection, items: list[dict[str, Any]], bad: list[tuple[dict[str, Any], str]]
) -> list[dict[str, Any]]:
    """``items`` without the replay records already stored; moves the replay positions up.

    A replay's records come in the order of their numbers (the writer keeps the order of a
    replay's items), so a file's position is the number of its last stored record.
    """
    replayed = [item for item in items if "replay" in item]
    if not replayed:
        return items
    table = ReplayPositionRecord
    files = {item.get("replay") for item in replayed}
    stored = {
        (site, sha256): position
        for site, sha256, position in connection.execute(
            select(table.site, table.sha256, table.position)
            .where(table.sha256.in_(files))
            .with_for_update()
        )
    }
    reached: dict[tuple[str, str], tuple[str, int]] = {}
    kept: list[dict[str, Any]] = []
    for item in items:
        if "replay" not in item:
            kept.append(item)
            continue
        try:
            site, sha256, after, number = _replay_position(item)
        except ValueError as e:
            bad.append((item, str(e)))
            continue
        if number <= stored.get((site, sha256), 0):
            continue
        kept.append(item)
        reached[(site, sha256)] = (after, max(number, reached.get((site, sha256), ("", 0))[1]))
    if reached:
        stmt = _dialect_insert(connection, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["site", "sha256"],
            set_={"position": stmt.excluded.position},
            where=stmt.excluded.position > table.__table__.c.position,
        )
        connection.execute(stmt, [
            {"site": site, "sha256": sha256, "after": after, "position": number}
            for (site, sha256), (after, number) in reached.items()
        ])  # fmt: skip
    return kept


def _enter_captures(connection: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Enter recorded capture files in the ledger; a file already there keeps its first entry."""
    if not rows:
        return
    stmt = _dialect_insert(connection, RecordedCaptureRecord).on_conflict_do_nothing()
    connection.execute(stmt, [{**row, "recorded_at": now} for row in rows])


def _dialect_insert(connection: Connection, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise ValueError(f"unsupported database {name!r}: Hall Monitor uses SQLite or PostgreSQL")


def _incident_rank(params: dict[str, Any]) -> tuple[int, bool]:
    return (params["hit_count"], params["state"] == "closed")


@dataclass(frozen=True, slots=True)
class _Link:
    """One stored incident of an activity's chain (the engine's incident and its continuations)."""

    id: int
    key: str
    status: str
    state: str
    start_at: datetime
    end_at: datetime
    hit_count: int
    active_minutes: float


def _upsert_incidents(connection: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Store the engine's snapshots; a decided incident is never grown (the one place for it).

    A snapshot carries the whole activity so far under the engine's key. While every stored
    incident of that activity is ``new``, the snapshot is upserted as it is. Once the last one is
    in review or closed, it keeps the values the reviewer decided on: the hits beyond it go to a
    continuation (key ``<engine key>.<n>``, ``continues_id`` naming the decided incident), which
    holds only what came after the decided incident's end. When the activity ends, every
    incident of its chain is marked closed.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        previous = latest.get(row["key"])
        if previous is None or _incident_rank(row) >= _incident_rank(previous):
            latest[row["key"]] = row
    if not latest:
        return
    chains = _chains(connection, list(latest))
    upserts: list[dict[str, Any]] = []
    to_close: list[int] = []
    for key, row in latest.items():
        chain = chains.get(key, [])
        target, closes = _route_snapshot(key, row, chain)
        if target is not None:
            upserts.append(target)
        to_close.extend(closes)
    if upserts:
        _upsert_rows(connection, upserts, now)
    if to_close:
        connection.execute(
            update(IncidentRecord)
            .where(IncidentRecord.id.in_(to_close), IncidentRecord.state == "open")
            .values(state="closed", updated_at=now)
        )
    if upserts:
        _fill_device_labels(connection, [row["key"] for row in upserts])


def _chains(connection: Connection, keys: list[str]) -> dict[str, list[_Link]]:
    """The stored incidents of each engine key, oldest link first (locked on PostgreSQL)."""
    table = IncidentRecord
    source = func.coalesce(table.source_key, table.key)
    found = connection.execute(
        select(source, table.id, table.key, table.status, table.state, table.start_at,
               table.end_at, table.hit_count, table.active_minutes)
        .where(or_(table.key.in_(keys), table.source_key.in_(keys)))
        .order_by(table.id)
        .with_for_update()
    )  # fmt: skip
    chains: dict[str, list[_Link]] = {}
    for row in found:
        chains.setdefault(row[0], []).append(_Link(*row[1:]))
    return chains


def _route_snapshot(
    key: str, row: dict[str, Any], chain: list[_Link]
) -> tuple[dict[str, Any] | None, list[int]]:
    """The row to upsert for one snapshot (None: nothing grows) and the links to mark closed."""
    plain = {**row, "source_key": None, "continues_id": None}
    if not chain:
        return plain, []
    last = chain[-1]
    decided = chain[:-1] if last.status == "new" else chain
    closes = [link.id for link in decided if link.state == "open"]
    if not decided:
        return plain, closes
    hits_before = sum(link.hit_count for link in decided)
    if row["hit_count"] <= hits_before:
        # Nothing beyond what was decided: at most the activity ended.
        return None, closes if row["state"] == "closed" else []
    growing = last if last.status == "new" else None
    return _continuation(key, row, decided, growing), closes


def _continuation(
    key: str, row: dict[str, Any], decided: list[_Link], growing: _Link | None
) -> dict[str, Any]:
    """The snapshot's part after the decided links: what their continuation holds."""
    last_decided = decided[-1]
    # Compared as stored (microseconds): the hit that ended the decided incident is not after it.
    evidence = [
        item
        for item in row["evidence"]
        if datetime.fromtimestamp(float(item["ts"]), UTC) > last_decided.end_at
    ]
    start = min((float(item["ts"]) for item in evidence), default=row["end_at"].timestamp())
    start_at = datetime.fromtimestamp(start, UTC)
    if growing is not None:
        start_at = min(start_at, growing.start_at)
    minutes_before = sum(link.active_minutes for link in decided)
    return {
        **row,
        "key": growing.key if growing is not None else f"{key}.{len(decided)}",
        "start_at": start_at,
        "hit_count": row["hit_count"] - sum(link.hit_count for link in decided),
        "active_minutes": max(1.0, row["active_minutes"] - minutes_before),
        "evidence": evidence,
        "source_key": key,
        "continues_id": last_decided.id,
    }


def _upsert_rows(connection: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    table = IncidentRecord.__table__.c
    stmt = _dialect_insert(connection, IncidentRecord)
    excluded = stmt.excluded
    updated: dict[str, Any] = {
        name: excluded[name] for name in INCIDENT_FIELDS if name not in ("key", "device_label")
    }
    updated["device_label"] = func.coalesce(table.device_label, excluded.device_label)
    updated["updated_at"] = excluded.updated_at
    moves_forward = and_(
        table.status == "new",
        or_(
            excluded.hit_count > table.hit_count,
            and_(
                excluded.hit_count == table.hit_count,
                or_(excluded.state == "closed", table.state == "open"),
            ),
        ),
    )
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=updated, where=moves_forward)
    connection.execute(stmt, [{**row, "created_at": now, "updated_at": now} for row in rows])


def _fill_device_labels(connection: Connection, keys: Iterable[str]) -> None:
    """Freeze the admin's label of the device (if any) into incidents that have none yet."""
    incidents = IncidentRecord.__table__.c
    devices = DeviceRecord.__table__.c
    label = (
        select(devices.label)
        .where(
            devices.site == incidents.site,
            devices.mac == func.coalesce(incidents.device_mac, UNKNOWN_MAC),
            devices.ip == incidents.device_ip,
        )
        .scalar_subquery()
    )
    connection.execute(
        update(IncidentRecord)
        .where(incidents.key.in_(list(keys)), incidents.device_label.is_(None))
        .values(device_label=label)
    )


def _add_counts(connection: Connection, model: type[Any], rows: list[dict[str, Any]]) -> None:
    table = model.__table__
    key_names = [column.name for column in table.primary_key.columns]
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in key_names)
        if key in totals:
            totals[key]["count"] += row["count"]
        else:
            totals[key] = dict(row)
    if not totals:
        return
    stmt = _dialect_insert(connection, model)
    stmt = stmt.on_conflict_do_update(
        index_elements=key_names, set_={"count": table.c.count + stmt.excluded["count"]}
    )
    connection.execute(stmt, list(totals.values()))


def _upsert_devices(connection: Connection, rows: list[dict[str, Any]]) -> None:
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["site"], row["mac"], row["ip"])
        seen = row["ts"]
        current = merged.get(key)
        if current is None:
            merged[key] = {**{k: row[k] for k in ("site", "mac", "ip", "host_name")},
                           "first_seen": seen, "last_seen": seen}  # fmt: skip
            continue
        current["first_seen"] = min(current["first_seen"], seen)
        if seen >= current["last_seen"]:
            current["last_seen"] = seen
            current["host_name"] = row["host_name"] or current["host_name"]
        elif current["host_name"] is None:
            current["host_name"] = row["host_name"]
    if not merged:
        return
    table = DeviceRecord.__table__.c
    stmt = _dialect_insert(connection, DeviceRecord)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["site", "mac", "ip"],
        set_={
            "first_seen": case(
                (new.first_seen < table.first_seen, new.first_seen), else_=table.first_seen
            ),
            "last_seen": case(
                (new.last_seen > table.last_seen, new.last_seen), else_=table.last_seen
            ),
            "host_name": case(
                (
                    and_(
                        new.host_name.is_not(None),
                        or_(new.last_seen >= table.last_seen, table.host_name.is_(None)),
                    ),
                    new.host_name,
                ),
                else_=table.host_name,
            ),
        },
    )
    connection.execute(stmt, list(merged.values()))
