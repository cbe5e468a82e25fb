"""Engines, schema migration and the schema check.

``make_engine(url)`` is the only place that builds an engine: SQLite gets WAL, foreign keys and
a busy timeout on every connection, and ``BEGIN IMMEDIATE`` transactions; ``postgresql://`` URLs use psycopg 3. The schema belongs to
the Alembic migrations in ``migrations/`` at the repository root (next to ``alembic.ini``),
installed as the package ``monitor.store.migrations`` (setup.py), so a wheel and an editable
install find them alike. ``upgrade_schema(url)`` is ``hallmonitor db upgrade``; the daemon and the web app call
``ensure_schema_current(engine)`` at startup and refuse to run on an old schema.
"""

from __future__ import annotations

import importlib.resources
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from monitor.errors import SchemaNotCurrent

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(str(importlib.resources.files("monitor.store.migrations")))
"""Alembic's script directory: the repository's ``migrations/``, installed as a package."""

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long an SQLite writer waits for another writer's lock before giving up."""

POSTGRES_CONNECT_TIMEOUT_S = 10
"""Give up connecting after this long, so an unreachable server is noticed (and spooled for)."""


def normalise_url(url: str) -> URL:
    """Parse a database URL; ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparsable database URL>"
    return parsed.render_as_string(hide_password=True)


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url``; for SQLite files the parent directory is created."""
    parsed = normalise_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _make_sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (so that
        # DDL in migrations is transactional too); see the "begin" listener below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first: switching a new file to WAL takes a lock too, and without
            # the timeout a sensor starting beside another fails at once ("database is locked").
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: take the write lock at the start, waiting up to the busy timeout. A
        # deferred transaction that reads and then writes (a login, a review, the writer's
        # upserts) gets SQLITE_BUSY at once, without waiting, when another connection wrote
        # in between; with capture and the review app on one file (``hallmonitor up``) that
        # happened on most logins.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode, retrying while another connection does the same.

    SQLite does not call the busy handler for this switch when it would deadlock (two new
    connections each holding a shared lock), so sensors starting together on a new file
    got "database is locked" at once, busy timeout or not. Retry up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for this package's migrations (no ini file needed)."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(
            f"{MIGRATIONS_DIR}: no Alembic migrations here; this installation of Hall Monitor "
            "is incomplete: install it again from its wheel or source tree"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The revision this version of Hall Monitor needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise FileNotFoundError(f"{MIGRATIONS_DIR}: no migration revisions")
    return head


def ping(engine: Engine) -> None:
    """Ask the database for nothing: raises whatever the driver raises when it does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


MIGRATION_LOCK_KEY = 0x68616C6C
"""PostgreSQL advisory lock taken while migrating (the bytes of "hall")."""


def _lock_migrations(connection: Connection) -> None:
    """Let one process at a time migrate a shared PostgreSQL database (a trust's sensors may
    start together): the others wait, then find the schema at head and do nothing. SQLite
    needs no lock: its transactions begin with the write lock (``BEGIN IMMEDIATE``)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")


def upgrade_schema(url: str) -> str:
    """Run ``alembic upgrade head`` on ``url``; returns a one-line summary."""
    engine = make_engine(url)
    try:
        before = current_revision(engine)
        head = head_revision()
        if before == head:
            return f"{display_url(url)}: schema already at revision {head}"
        with engine.begin() as connection:
            _lock_migrations(connection)
            before = MigrationContext.configure(connection).get_current_revision()
            if before == head:  # another process migrated while this one waited
                return f"{display_url(url)}: schema already at revision {head}"
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    shown = before or "none (empty database)"
    logger.info("upgraded %s from revision %s to %s", display_url(url), shown, head)
    return f"{display_url(url)}: schema upgraded from revision {shown} to {head}"


def ensure_schema_current(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent`` unless the database is at this version's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaNotCurrent(current, head)
