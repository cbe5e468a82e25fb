"""The school an audit event concerns: audit_events.site.

Revision ID: c3f9a1d6e4b2
Revises: b7e1c4d2a9f3
Create Date: 2026-12-07 23:00:00+00:00

Written by hand. An admin limited to one school of a trust reads only that school's audit
events (views of its incidents and devices, its people's logins and changes); an event with no
site (a trust-wide user's login, a list change, anything recorded before this revision) is for
trust-wide admins only. Rows already there keep no site: nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f9a1d6e4b2"
down_revision: str | None = "b7e1c4d2a9f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site", sa.String(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_events_site_at"), ["site", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_site_at"))
        batch_op.drop_column("site")
