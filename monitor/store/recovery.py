"""What a previous run of the capture daemon left open, for the engine to carry on.

A daemon killed without its shutdown (``kill -9``, a power cut) never closed its open
incidents. At start the daemon reads them back as the engine's own snapshots and hands them to
``Engine.resume``: the same activity after the restart grows the same incident (within the idle
gap) instead of becoming a second one, and what stays idle is closed by the next tick, through
the writer like any other incident, so no incident stays ``open`` for ever.

An activity whose stored incident was decided (in review or closed) is stored as a chain: the
incident the engine opened and its continuations (``source_key``). The engine's snapshot is the
whole activity, so a chain is read back as one snapshot under the engine's key: hits and active
minutes added up, from the first start to the last end, with the evidence of every link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from monitor.confidence import ATTRIBUTION_PENALTY
from monitor.store.models import IncidentRecord
from monitor.values import (
    Attribution,
    Basis,
    Category,
    Device,
    Evidence,
    Incident,
    IncidentState,
    Proto,
    SegmentRole,
)


def left_open_incidents(engine: Engine, site: str) -> list[Incident]:
    """The site's activities with a stored incident still ``open``, as OPEN snapshots."""
    table = IncidentRecord
    source = func.coalesce(table.source_key, table.key)
    open_sources = select(source).where(table.site == site, table.state == "open")
    with Session(engine) as db:
        rows = db.execute(
            select(source, table).where(table.site == site, source.in_(open_sources))
            .order_by(table.id)
        ).all()  # fmt: skip
    chains: dict[str, list[IncidentRecord]] = {}
    for key, record in rows:
        chains.setdefault(key, []).append(record)
    return [_snapshot(key, chain) for key, chain in chains.items()]


def _snapshot(key: str, chain: Sequence[IncidentRecord]) -> Incident:
    first = chain[0]
    evidence = sorted(
        (_evidence(item) for record in chain for item in record.evidence or ()),
        key=lambda entry: entry.ts,
    )
    return Incident(
        key=key,
        site=first.site,
        platform=first.platform,
        category=Category(first.category),
        device=Device(
            first.device_ip,
            first.device_mac,
            first.device_host_name,
            first.device_segment,
            first.device_label,
        ),
        role=SegmentRole(first.role) if first.role is not None else None,
        start=min(record.start_at for record in chain).timestamp(),
        end=max(record.end_at for record in chain).timestamp(),
        active_minutes=sum(record.active_minutes for record in chain),
        confidence=max(record.confidence for record in chain),
        evidence=tuple(evidence),
        hit_count=sum(record.hit_count for record in chain),
        state=IncidentState.OPEN,
        basis=Basis(
            connections=sum(record.connections for record in chain),
            lookups=sum(record.lookups for record in chain),
            attribution=min(
                (Attribution(record.attribution) for record in chain),
                key=ATTRIBUTION_PENALTY.__getitem__,
            ),
        ),
    )


def _evidence(item: dict[str, Any]) -> Evidence:
    return Evidence(
        float(item["ts"]), Proto(item["proto"]), str(item["name"]), Attribution(item["via"])
    )
