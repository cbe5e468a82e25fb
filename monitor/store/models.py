"""The database tables, as SQLAlchemy 2 typed declarative models.

The schema itself is built by the Alembic migrations in ``migrations/`` (never ``create_all``);
these models must match it, and a test compares them. Every timestamp is a timezone-aware UTC
``datetime`` (:class:`UtcDateTime`), stored as ``timestamptz`` on PostgreSQL and as a UTC text
timestamp on SQLite.

Privacy: ``daily_counters`` holds anonymous counts only (no address, MAC or name of a device);
identities live in ``incidents``, ``observations``, ``embedded_counts`` and ``devices``, which
retention purges.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.store.workflow import ReviewStatus, UserRole
from monitor.values import IncidentState


def one_of(column: str, vocabulary: Iterable[StrEnum]) -> str:
    """The CHECK that ``column`` holds a value of ``vocabulary``: ``status IN ('new', ...)``."""
    return f"{column} IN ({', '.join(repr(member.value) for member in vocabulary)})"


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Stable constraint names: SQLite batch migrations and PostgreSQL both refer to them by name."""

UNKNOWN_MAC = ""
"""Stored instead of NULL for an unknown MAC in key columns: NULLs never collide in a unique key."""

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit ids on PostgreSQL; SQLite's rowid alias must be spelled INTEGER."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime``; refuses naive values instead of guessing their zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware UTC value")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), date: Date()}


class IncidentRecord(Base):
    """One device's use of one platform, upserted by ``key`` from the engine's snapshots."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(one_of("state", IncidentState), name="state"),
        CheckConstraint(one_of("status", ReviewStatus), name="status"),
        Index(None, "site", "start_at"),
        Index(None, "platform", "start_at"),
        Index(None, "end_at"),
        Index(None, "status", "start_at"),
        Index(None, "site", "status", "start_at"),
        Index(None, "device_mac", "start_at"),
        Index(None, "device_ip", "start_at"),
        Index(None, "start_at"),
        Index(None, "site", "platform", "start_at"),
        Index(None, "continues_id"),
        Index(None, "source_key"),
        Index(
            "ix_incidents_device_search",
            "site",
            "device_label",
            "device_host_name",
            "device_ip",
            "device_mac",
            "start_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String, unique=True)
    """The engine's stable incident key: replays upsert the same row."""
    site: Mapped[str] = mapped_column(String)
    platform: Mapped[str] = mapped_column(String)
    category: Mapped[str] = mapped_column(String)
    device_ip: Mapped[str] = mapped_column(String)
    device_mac: Mapped[str | None] = mapped_column(String)
    device_host_name: Mapped[str | None] = mapped_column(String)
    device_segment: Mapped[str | None] = mapped_column(String)
    device_label: Mapped[str | None] = mapped_column(String)
    role: Mapped[str | None] = mapped_column(String)
    """The segment's role (``staff``, ``pupil``...), NULL when in no configured segment."""
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    active_minutes: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    connections: Mapped[int] = mapped_column(Integer, server_default="0")
    """Distinct TLS/QUIC connections to the platform's own servers (``monitor.values.Basis``)."""
    lookups: Mapped[int] = mapped_column(Integer, server_default="0")
    """Distinct DNS lookups of the platform's own names."""
    attribution: Mapped[str] = mapped_column(String, server_default="name")
    """The best way a sighting was tied to the platform: ``name``, ``cname`` or ``address``."""
    hit_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String)
    """``open`` while hits continue, ``closed`` after the idle gap."""
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``[{"ts": epoch seconds, "proto": "tls", "name": "www.instagram.com", "via": "name"}]``."""
    status: Mapped[str] = mapped_column(String, server_default="new")
    """Review workflow: ``new``, ``in_review``, ``closed``. The writer never changes it, and
    grows only ``new`` incidents: a decided one stays as decided (see ``continues_id``)."""
    outcome: Mapped[str | None] = mapped_column(String)
    """The reviewer's conclusion, e.g. ``false_positive`` (retention keeps those for less)."""
    continues_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="SET NULL")
    )
    """The decided incident (in review or closed) whose activity this one continues."""
    source_key: Mapped[str | None] = mapped_column(String)
    """For a continuation, the engine's key of the activity (the ``key`` of the first incident
    of the chain); NULL for an incident the engine opened itself."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ObservationRecord(Base):
    """A matched observation (traffic that matched no list is only counted, never stored)."""

    __tablename__ = "observations"
    __table_args__ = (
        Index(None, "ts"),
        Index(None, "incident_key"),
        Index(None, "client_mac"),
        Index(None, "client_ip"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site: Mapped[str] = mapped_column(String)
    ts: Mapped[datetime]
    proto: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    client_ip: Mapped[str] = mapped_column(String)
    client_mac: Mapped[str | None] = mapped_column(String)
    server_ip: Mapped[str] = mapped_column(String)
    server_port: Mapped[int] = mapped_column(Integer)
    flags: Mapped[str] = mapped_column(String)
    """Sorted flag values joined by commas (``ech,response``); empty when none."""
    platform: Mapped[str] = mapped_column(String)
    presence: Mapped[str] = mapped_column(String)
    via: Mapped[str] = mapped_column(String)
    incident_key: Mapped[str | None] = mapped_column(String)
    """The incident this observation counted towards, if any (no foreign key: it may land first)."""


class DailyCounterRecord(Base):
    """An anonymous count per site, day and name (``observations.dns``, ``matches.outside_hours``)."""

    __tablename__ = "daily_counters"

    site: Mapped[str] = mapped_column(String, primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class EmbeddedCountRecord(Base):
    """Embedded-only traffic (widgets, pixels) per device, platform and day: counted, never flagged."""

    __tablename__ = "embedded_counts"

    site: Mapped[str] = mapped_column(String, primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    device_ip: Mapped[str] = mapped_column(String, primary_key=True)
    device_mac: Mapped[str] = mapped_column(String, primary_key=True)
    """``''`` (``UNKNOWN_MAC``) when the device's MAC is unknown (a routed segment)."""
    platform: Mapped[str] = mapped_column(String, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class DeviceRecord(Base):
    """One binding of a MAC to an address, with when it was first and last seen.

    The key is (site, mac, ip): a laptop that moves between addresses has one row per address,
    which answers "who had 10.1.4.23 on Tuesday". ``mac`` is ``''`` where the MAC is unknown.
    """

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("site", "mac", "ip"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site: Mapped[str] = mapped_column(String)
    mac: Mapped[str] = mapped_column(String)
    ip: Mapped[str] = mapped_column(String)
    host_name: Mapped[str | None] = mapped_column(String)
    """The DHCP host name seen most recently for this binding."""
    label: Mapped[str | None] = mapped_column(String)
    """An admin's label (owner, room); the writer never changes it."""
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class AppliedBatchRecord(Base):
    """Ids of the writer's committed batches: a replayed spool record already applied is skipped.

    This makes counters exactly-once even when a commit succeeded but its acknowledgement was
    lost (the batch is then spooled and replayed with the same id).
    """

    __tablename__ = "applied_batches"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    applied_at: Mapped[datetime]


class RecordedCaptureRecord(Base):
    """The import ledger: each capture file ``scan --record`` recorded completely, per site.

    A file is known by the SHA-256 of its bytes (its name and place may change). A replay skips
    a file that is here, so recording it again does not double observations and counters. The
    row is written by the writer after every other item of the file (``CaptureRecorded``).
    """

    __tablename__ = "recorded_captures"

    site: Mapped[str] = mapped_column(String, primary_key=True)
    sha256: Mapped[str] = mapped_column(String, primary_key=True)
    file_name: Mapped[str] = mapped_column(String)
    """The file's name when it was recorded (for the skip message only)."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    frames: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime]


class ReplayPositionRecord(Base):
    """How far ``scan --record`` has stored each capture file: the bank ledger of a replay.

    A replay numbers the records it makes of a file (1, 2, ...); each record carries its number,
    and the transaction that stores it moves ``position`` up to it. A run that was killed part way
    is carried on by running it again: the records up to ``position`` are not stored twice
    (``monitor.store.ledger``). ``after`` is a digest of the files the run read before this one:
    their state (open incidents, learnt addresses) shaped this file's records, so only a run
    that reads the same files before it may carry it on.
    """

    __tablename__ = "replay_positions"

    site: Mapped[str] = mapped_column(String, primary_key=True)
    sha256: Mapped[str] = mapped_column(String, primary_key=True)
    after: Mapped[str] = mapped_column(String)
    position: Mapped[int] = mapped_column(BigInteger)
    """The number of the file's last stored record."""


class ErasureRecord(Base):
    """One identity (MAC or address) of an erased device, named only by its one-way digest.

    Written by ``erase_device`` in the erasure's transaction; the running capture polls it to
    forget the device, and the writer refuses anything of it dated up to ``erased_at``.
    """

    __tablename__ = "erasures"
    __table_args__ = (Index(None, "site", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site: Mapped[str] = mapped_column(String)
    digest: Mapped[str] = mapped_column(String)
    """``monitor.devices.identity_digest`` of the MAC or address, as stored."""
    every_device: Mapped[bool] = mapped_column(Boolean)
    """For an address: every device's rows at it were erased (not only those with no MAC)."""
    erased_at: Mapped[datetime]


# --- the review app and reports -----------------------------------------------------------------


class UserRecord(Base):
    """A person who signs in to the review app: an admin, a reviewer or a governor."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(one_of("role", UserRole), name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String, unique=True)
    display_name: Mapped[str] = mapped_column(String)
    email: Mapped[str | None] = mapped_column(String)
    """Where reports go (the weekly summary goes to reviewers and governors with an address)."""
    password_hash: Mapped[str] = mapped_column(String)
    """An argon2 hash; never the password."""
    role: Mapped[str] = mapped_column(String)
    site: Mapped[str | None] = mapped_column(String)
    """Limits a reviewer to one school of a trust; NULL sees every site."""
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None]
    """Login throttling: no login is tried before this time."""
    must_change_password: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """The password was a one-time one (``hallmonitor up``'s first admin): choose a new one
    before anything else."""
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class WebSessionRecord(Base):
    """A signed-in browser: the cookie holds a random token, the table only its hash."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index(None, "user_id"),)

    token_hash: Mapped[str] = mapped_column(String, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    """For the idle time-out: a session unused for longer is refused and deleted."""
    address: Mapped[str | None] = mapped_column(String)


class ApiTokenRecord(Base):
    """A bearer token an admin created for an integration; only its hash is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String)
    token_hash: Mapped[str] = mapped_column(String, unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEventRecord(Base):
    """Append-only: every view of an incident or device, export, change and login attempt."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "at"),
        Index(None, "target_type", "target_id"),
        Index(None, "site", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(BigId)
    """No foreign key: the record outlives a deleted user."""
    username: Mapped[str | None] = mapped_column(String)
    """As typed at a failed login, or the signed-in user's name."""
    action: Mapped[str] = mapped_column(String)
    """``login``, ``login_failed``, ``view_incident``, ``review``, ``export``, ``erase_device``..."""
    target_type: Mapped[str | None] = mapped_column(String)
    target_id: Mapped[str | None] = mapped_column(String)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String)
    """The client address the request came from."""
    site: Mapped[str | None] = mapped_column(String)
    """The school the event concerns (its incident, device or person); None: the trust's, or
    recorded before sites were kept. An admin limited to a site reads only that site's rows."""


class IncidentReviewRecord(Base):
    """One change of an incident's review state: the history the headteacher's decisions keep."""

    __tablename__ = "incident_reviews"
    __table_args__ = (Index(None, "incident_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(BigId)
    username: Mapped[str] = mapped_column(String)
    from_status: Mapped[str] = mapped_column(String)
    to_status: Mapped[str] = mapped_column(String)
    outcome: Mapped[str | None] = mapped_column(String)
    """``no_action``, ``informal_conversation``, ``formal_process`` or ``false_positive``."""
    note: Mapped[str] = mapped_column(Text, server_default="")
    second_reviewer: Mapped[str | None] = mapped_column(String)


class ListChangeRecord(Base):
    """An entry added to or removed from a platform list or the allowlist, with its reason."""

    __tablename__ = "list_changes"
    __table_args__ = (
        CheckConstraint("action IN ('add', 'remove')", name="action"),
        Index(None, "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    username: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    list_name: Mapped[str] = mapped_column(String)
    """A platform id, or ``allowlist``."""
    suffix: Mapped[str] = mapped_column(String)
    presence: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String)


class SentReportRecord(Base):
    """One report for one period and recipient: the unique key makes sending exactly-once."""

    __tablename__ = "sent_reports"
    __table_args__ = (
        UniqueConstraint("kind", "period", "recipient", "site"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    """``weekly`` (more kinds later: ``termly``)."""
    period: Mapped[str] = mapped_column(String)
    """The ISO week, e.g. ``2026-W47``."""
    recipient: Mapped[str] = mapped_column(String)
    """An email address."""
    site: Mapped[str] = mapped_column(String, server_default="")
    """The school the report covers (``site.name``), or ``ALL_SITES`` for a trust office's
    report: a governor of two schools gets each school's report, and a school's scheduler
    retries only its own."""
    role: Mapped[str] = mapped_column(String)
    """``reviewer`` or ``governor``: which version of the report."""
    status: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String)
    message_id: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class CheckRecord(Base):
    """A self-test or check that was run (the governors' report lists them)."""

    __tablename__ = "checks"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String)
    """``selftest``, ``doctor``..."""
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String)
    site: Mapped[str | None] = mapped_column(String)
