"""How far ``scan --record`` has stored each capture file: replay_positions.

Revision ID: e7c3a9f2b4d1
Revises: d2b8e5f1a3c7
Create Date: 2026-12-08 02:30:00+00:00

Written by hand. One row per site and capture file (by the SHA-256 of its bytes) that a replay
has stored records of: the number of the last record stored, committed with that record, so a
run killed part way is carried on by running it again without storing anything twice. Replays
interrupted before this revision are not known: recording such a file again still doubles its
first part, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7c3a9f2b4d1"
down_revision: str | None = "d2b8e5f1a3c7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replay_positions",
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("after", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("site", "sha256", name=op.f("pk_replay_positions")),
    )


def downgrade() -> None:
    op.drop_table("replay_positions")
