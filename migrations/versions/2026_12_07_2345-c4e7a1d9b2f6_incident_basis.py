"""What an incident's confidence rests on: incidents.connections, lookups, attribution.

Revision ID: c4e7a1d9b2f6
Revises: c3f9a1d7e5b2
Create Date: 2026-12-07 23:45:00+00:00

Written by hand. The review queue leaves low-confidence incidents out by default, and the level
depends on how many connections (not only lookups) an incident rests on, which the score alone
does not say. Incidents stored before are filled in from their evidence list
(``monitor.confidence.basis_from_evidence``: an estimate, as that list holds the first hits only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from monitor.confidence import basis_from_evidence

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
        basis = basis_from_evidence(evidence or ())
        connection.execute(
            _incidents.update()
            .where(_incidents.c.id == incident_id)
            .values(
                connections=basis.connections,
                lookups=basis.lookups,
                attribution=basis.attribution.value,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("attribution")
        batch_op.drop_column("lookups")
        batch_op.drop_column("connections")
