"""Incident continuations: a decided incident stops growing; later activity links to it.

Revision ID: c3f9a1d7e5b2
Revises: c3f9a1d6e4b2
Create Date: 2026-12-07 23:40:00+00:00

Written by hand. Once an incident is in review or closed, the writer no longer grows it: the
engine's later snapshots of the same activity go to a new incident whose ``continues_id`` names
the decided one and whose ``source_key`` is the engine's key of the activity (so that the writer
finds the chain in one indexed lookup). Existing incidents continue nothing: both NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f9a1d7e5b2"
down_revision: str | None = "c3f9a1d6e4b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("continues_id", BigId, nullable=True))
        batch_op.add_column(sa.Column("source_key", sa.String(), nullable=True))
        batch_op.create_foreign_key(
            "fk_incidents_continues_id_incidents",
            "incidents",
            ["continues_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_incidents_continues_id", ["continues_id"], unique=False)
        batch_op.create_index("ix_incidents_source_key", ["source_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_source_key")
        batch_op.drop_index("ix_incidents_continues_id")
        batch_op.drop_constraint("fk_incidents_continues_id_incidents", type_="foreignkey")
        batch_op.drop_column("source_key")
        batch_op.drop_column("continues_id")
