"""Indexes for the queue of every site, its platform and device sorts and its device search.

Revision ID: 9b5d2e7c4a1f
Revises: 7c2e4f1a9b3d
Create Date: 2026-11-24 04:00:00+00:00

Written by hand. At 100k incidents a site's queue sorted by platform or device, or searched
for a device text, read every incident row of the site (each with its evidence JSON) and took
100-400 ms on SQLite, and a deep page of every site's queue sorted all 100k rows (160 ms).
``start_at`` alone walks every site's queue in order; ``site, platform, start_at`` gives a
site's platform sort in index order; the device index holds every column the device sort and
the substring search read, so both scan the index instead of the table (``id`` is in every index: SQLite's rowid, PostgreSQL's
index-only scans read it from the heap visibility map).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9b5d2e7c4a1f"
down_revision: str | None = "7c2e4f1a9b3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_incidents_start_at", ["start_at"]),
    ("ix_incidents_site_platform_start_at", ["site", "platform", "start_at"]),
    (
        "ix_incidents_device_search",
        ["site", "device_label", "device_host_name", "device_ip", "device_mac", "start_at"],
    ),
]


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name, _ in reversed(INDEXES):
            batch_op.drop_index(name)
