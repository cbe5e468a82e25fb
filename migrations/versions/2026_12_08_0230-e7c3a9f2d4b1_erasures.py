"""Erasures: the digests of erased devices, which the running capture polls to forget them.

Revision ID: e7c3a9f2d4b1
Revises: e7c3a9f2b4d1
Create Date: 2026-12-08 02:30:00+00:00

Written by hand. One row per identity (MAC or address) an erasure removed, named only by a
one-way digest, with the time of the erasure: the capture drops what it still holds of the
device and refuses anything dated before that time, and the writer never stores it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7c3a9f2d4b1"
down_revision: str | None = "e7c3a9f2b4d1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("every_device", sa.Boolean(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_site_id"), "erasures", ["site", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_erasures_site_id"), table_name="erasures")
    op.drop_table("erasures")
