"""A one-time password: users.must_change_password.

Revision ID: 5e8d3a7b2c1f
Revises: 9b5d2e7c4a1f
Create Date: 2026-12-02 12:00:00+00:00

Written by hand. ``hallmonitor up`` creates the first administrator with a printed one-time
password; the review app makes whoever signs in with such a password choose their own before
anything else. Existing users keep their passwords (false).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e8d3a7b2c1f"
down_revision: str | None = "9b5d2e7c4a1f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
