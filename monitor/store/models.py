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

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
        CheckConstraint("state IN ('open', 'closed')", name="state"),
        CheckConstraint("status IN ('new', 'in_review', 'closed')", name="status"),
        Index(None, "site", "start_at"),
        Index(None, "platform", "start_at"),
        Index(None, "end_at"),
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
    hit_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String)
    """``open`` while hits continue, ``closed`` after the idle gap."""
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``[{"ts": epoch seconds, "proto": "tls", "name": "www.instagram.com", "via": "name"}]``."""
    status: Mapped[str] = mapped_column(String, server_default="new")
    """Review workflow: ``new``, ``in_review``, ``closed``. The writer never changes it."""
    outcome: Mapped[str | None] = mapped_column(String)
    """The reviewer's conclusion, e.g. ``false_positive`` (retention keeps those for less)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ObservationRecord(Base):
    """A matched observation (traffic that matched no list is only counted, never stored)."""

    __tablename__ = "observations"
    __table_args__ = (Index(None, "ts"), Index(None, "incident_key"))

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
