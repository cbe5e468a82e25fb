"""Create the store tables: incidents, observations, counters, devices, applied batches.

Revision ID: 1d118027e993
Revises:
Create Date: 2026-11-24 00:47:10.693160+00:00

Drafted by autogenerate, reviewed by hand: timestamps are plain ``DateTime(timezone=True)``
here (the models' ``UtcDateTime`` only converts values), constraint names follow the models'
naming convention, and ids are BIGINT on PostgreSQL but INTEGER (the rowid) on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1d118027e993"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", BigId, nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("device_ip", sa.String(), nullable=False),
        sa.Column("device_mac", sa.String(), nullable=True),
        sa.Column("device_host_name", sa.String(), nullable=True),
        sa.Column("device_segment", sa.String(), nullable=True),
        sa.Column("device_label", sa.String(), nullable=True),
        sa.Column("role", sa.String(), nullable=True),
        sa.Column("start_at", Timestamp, nullable=False),
        sa.Column("end_at", Timestamp, nullable=False),
        sa.Column("active_minutes", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), server_default="new", nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f("ck_incidents_state")),
        sa.CheckConstraint(
            "status IN ('new', 'in_review', 'closed')", name=op.f("ck_incidents_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("key", name=op.f("uq_incidents_key")),
    )
    op.create_index(op.f("ix_incidents_site_start_at"), "incidents", ["site", "start_at"])
    op.create_index(op.f("ix_incidents_platform_start_at"), "incidents", ["platform", "start_at"])
    op.create_index(op.f("ix_incidents_end_at"), "incidents", ["end_at"])

    op.create_table(
        "observations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("ts", Timestamp, nullable=False),
        sa.Column("proto", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("client_ip", sa.String(), nullable=False),
        sa.Column("client_mac", sa.String(), nullable=True),
        sa.Column("server_ip", sa.String(), nullable=False),
        sa.Column("server_port", sa.Integer(), nullable=False),
        sa.Column("flags", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("presence", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("incident_key", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
    )
    op.create_index(op.f("ix_observations_ts"), "observations", ["ts"])
    op.create_index(op.f("ix_observations_incident_key"), "observations", ["incident_key"])

    op.create_table(
        "daily_counters",
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("site", "day", "name", name=op.f("pk_daily_counters")),
    )
    op.create_table(
        "embedded_counts",
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("device_ip", sa.String(), nullable=False),
        sa.Column("device_mac", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "site", "day", "device_ip", "device_mac", "platform", name=op.f("pk_embedded_counts")
        ),
    )
    op.create_table(
        "devices",
        sa.Column("id", BigId, nullable=False),
        sa.Column("site", sa.String(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
        sa.Column("ip", sa.String(), nullable=False),
        sa.Column("host_name", sa.String(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("first_seen", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("site", "mac", "ip", name=op.f("uq_devices_site_mac_ip")),
    )
    op.create_table(
        "applied_batches",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("applied_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_batches")),
    )


def downgrade() -> None:
    op.drop_table("applied_batches")
    op.drop_table("devices")
    op.drop_table("embedded_counts")
    op.drop_table("daily_counters")
    op.drop_index(op.f("ix_observations_incident_key"), table_name="observations")
    op.drop_index(op.f("ix_observations_ts"), table_name="observations")
    op.drop_table("observations")
    op.drop_index(op.f("ix_incidents_end_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_platform_start_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_site_start_at"), table_name="incidents")
    op.drop_table("incidents")
