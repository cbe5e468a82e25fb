"""Add the review app and report tables: users, sessions, API tokens, audit, reviews, list
changes, sent reports and checks.

Revision ID: 561acb6a50cb
Revises: 1d118027e993
Create Date: 2026-11-24 01:09:46.153941+00:00

Drafted by autogenerate, reviewed by hand: timestamps are plain ``DateTime(timezone=True)``
and ids BIGINT on PostgreSQL but INTEGER (the rowid) on SQLite, as in the first revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "561acb6a50cb"
down_revision: str | None = "1d118027e993"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("username", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target_type", sa.String(), nullable=True),
        sa.Column("target_id", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_target_type_target_id"),
            ["target_type", "target_id"],
            unique=False,
        )

    op.create_table(
        "checks",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("username", sa.String(), nullable=True),
        sa.Column("site", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_at"), ["at"], unique=False)

    op.create_table(
        "list_changes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("list_name", sa.String(), nullable=False),
        sa.Column("suffix", sa.String(), nullable=False),
        sa.Column("presence", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(), nullable=True),
        sa.CheckConstraint("action IN ('add', 'remove')", name=op.f("ck_list_changes_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_changes")),
    )
    with op.batch_alter_table("list_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_list_changes_at"), ["at"], unique=False)

    op.create_table(
        "sent_reports",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_sent_reports_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_reports")),
        sa.UniqueConstraint(
            "kind", "period", "recipient", name=op.f("uq_sent_reports_kind_period_recipient")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("site", sa.String(), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_login_at", Timestamp, nullable=True),
        sa.CheckConstraint("role IN ('admin', 'reviewer', 'governor')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "incident_reviews",
        sa.Column("id", BigId, nullable=False),
        sa.Column("incident_id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("from_status", sa.String(), nullable=False),
        sa.Column("to_status", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("second_reviewer", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_reviews_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_reviews")),
    )
    with op.batch_alter_table("incident_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_reviews_incident_id_at"), ["incident_id", "at"], unique=False
        )

    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("address", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_user_id"))

    op.drop_table("web_sessions")
    with op.batch_alter_table("incident_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_reviews_incident_id_at"))

    op.drop_table("incident_reviews")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("sent_reports")
    with op.batch_alter_table("list_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_list_changes_at"))

    op.drop_table("list_changes")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_at"))

    op.drop_table("checks")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_target_type_target_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
