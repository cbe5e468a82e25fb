"""What an incident's confidence rests on: incidents.connections, lookups, attribution.

Revision ID: c4e7a1d9b2f6
Revises: c3f9a1d7e5b2
Create Date: 2026-12-07 23:45:00+00:00

Written by hand. The review queue leaves low-confidence incidents out by default, and the level
depends on how many connections (not only lookups) an incident rests on, which the score alone
does not say. Incidents stored before are filled in from their evidence list (an estimate, as
that list holds the first hits only): ``monitor.confidence.basis_from_evidence`` as it was at this
revision, copied here so that the migration does not change when the application does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "c4e7a1d9b2f6"
down_revision: str | None = "c3f9a1d7e5b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_incidents = sa.table(
    "incidents",
    sa.column("id", sa.BigInteger()),
    sa.column("evidence", sa.JSON()),
    sa.column("connections", sa.Integer()),
    sa.column("lookups", sa.Integer()),
    sa.column("attribution", sa.String()),
)

_PROTOS = frozenset({"dns", "tls", "quic", "dhcp"})
_CONNECTION_PROTOS = frozenset({"tls", "quic"})
_ATTRIBUTION_PENALTY = {"name": 0.0, "cname": 0.1, "address": 0.2}


def _basis_from_evidence(evidence: Any) -> tuple[int, int, str]:
    """(connections, lookups, attribution) estimated from a stored evidence list: every listed
    TLS or QUIC hit a connection, every other hit a lookup, the best attribution among them; an
    incident without readable evidence rests on one lookup by name."""
    connections = lookups = 0
    best = "address"
    for item in evidence:
        if not isinstance(item, dict):
            continue
        proto, via = str(item.get("proto")), str(item.get("via"))
        if proto not in _PROTOS or via not in _ATTRIBUTION_PENALTY:
            continue
        if proto in _CONNECTION_PROTOS:
            connections += 1
        else:
            lookups += 1
        if _ATTRIBUTION_PENALTY[via] < _ATTRIBUTION_PENALTY[best]:
            best = via
    if connections + lookups == 0:
        return 0, 1, "name"
    return connections, lookups, best


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("connections", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("lookups", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("attribution", sa.String(), server_default="name", nullable=False)
        )
    connection = op.get_bind()
    rows = connection.execute(sa.select(_incidents.c.id, _incidents.c.evidence)).all()
    for incident_id, evidence in rows:
        connections, lookups, attribution = _basis_from_evidence(evidence or ())
        connection.execute(
            _incidents.update()
            .where(_incidents.c.id == incident_id)
            .values(connections=connections, lookups=lookups, attribution=attribution)
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("attribution")
        batch_op.drop_column("lookups")
        batch_op.drop_column("connections")
