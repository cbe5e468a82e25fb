"""Sent reports per site: sent_reports.site in the exactly-once key.

Revision ID: b7e1c4d2a9f3
Revises: 5e8d3a7b2c1f
Create Date: 2026-12-02 13:30:00+00:00

Written by hand. In a trust, several schools' review apps share one database: the weekly
summary is sent once per week, recipient *and school*, and each school's scheduler retries only
its own failures. Rows already there belong to the one school of a single-school database (the
site of its incidents), else to no school in particular ('').
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e1c4d2a9f3"
down_revision: str | None = "5e8d3a7b2c1f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sent_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site", sa.String(), server_default="", nullable=False))
        batch_op.drop_constraint("uq_sent_reports_kind_period_recipient", type_="unique")
        batch_op.create_unique_constraint(
            "uq_sent_reports_kind_period_recipient_site", ["kind", "period", "recipient", "site"]
        )
    op.execute(
        "UPDATE sent_reports SET site = (SELECT MIN(site) FROM incidents) "
        "WHERE (SELECT COUNT(DISTINCT site) FROM incidents) = 1"
    )


def downgrade() -> None:
    with op.batch_alter_table("sent_reports", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sent_reports_kind_period_recipient_site", type_="unique")
        batch_op.create_unique_constraint(
            "uq_sent_reports_kind_period_recipient", ["kind", "period", "recipient"]
        )
        batch_op.drop_column("site")
