"""The import ledger of ``scan --record``: recorded_captures.

Revision ID: d2b8e5f1a3c7
Revises: c4e7a1d9b2f6
Create Date: 2026-12-08 00:40:00+00:00

Written by hand. One row per site and capture file (by the SHA-256 of its bytes) that a replay
recorded completely, so that recording the same file again skips it instead of doubling its
observations, counters and embedded counts. Files recorded before this revision are not known:
recording one of them again still doubles it, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d2b8e5f1a3c7"
down_revision: str | None = "c4e7a1d9b2f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recorded_captures",
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "sha256", name=op.f("pk_recorded_captures")),
    )


def downgrade() -> None:
    op.drop_table("recorded_captures")
