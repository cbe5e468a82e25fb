"""Indexes for the review queue, incident pages and per-device exports.

Revision ID: 7c2e4f1a9b3d
Revises: 561acb6a50cb
Create Date: 2026-11-24 03:00:00+00:00

Written by hand. The queue filters by review status (with or without a site) newest first;
an incident's page and a device's page list the device's incidents by MAC, else by address;
subject access, erasure and merges find a device's observations by MAC or address.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7c2e4f1a9b3d"
down_revision: str | None = "561acb6a50cb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "incidents": [
        ("ix_incidents_status_start_at", ["status", "start_at"]),
        ("ix_incidents_site_status_start_at", ["site", "status", "start_at"]),
        ("ix_incidents_device_mac_start_at", ["device_mac", "start_at"]),
        ("ix_incidents_device_ip_start_at", ["device_ip", "start_at"]),
    ],
    "observations": [
        ("ix_observations_client_mac", ["client_mac"]),
        ("ix_observations_client_ip", ["client_ip"]),
    ],
}


def upgrade() -> None:
    for table, indexes in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, columns in indexes:
                batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _ in reversed(indexes):
                batch_op.drop_index(name)
