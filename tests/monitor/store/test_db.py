"""Engines, migrations and the schema check, on SQLite files and PostgreSQL."""

from __future__ import annotations

import ast
import re
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from monitor import errors
from monitor.errors import SchemaNotCurrent
from monitor.store.db import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    display_url,
    ensure_schema_current,
    head_revision,
    make_engine,
    normalise_url,
    ping,
    upgrade_schema,
)

ROOT = Path(__file__).resolve().parents[3]
STORE_TABLES = {
    "applied_batches",
    "daily_counters",
    "devices",
    "embedded_counts",
    "incidents",
    "observations",
    "recorded_captures",
    "replay_positions",
    "erasures",
    # the review app and reports
    "api_tokens",
    "audit_events",
    "checks",
    "incident_reviews",
    "list_changes",
    "sent_reports",
    "users",
    "web_sessions",
}


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "driver"),
        [
            ("postgresql://u:p@db.school/hm", "postgresql+psycopg"),
            ("postgres://u@db.school/hm", "postgresql+psycopg"),
            ("postgresql+psycopg://u@db.school/hm", "postgresql+psycopg"),
            ("sqlite:///var/hm.sqlite3", "sqlite"),
        ],
    )
    def test_normalise_url_uses_psycopg_3_for_postgresql(self, url: str, driver: str) -> None:
        assert normalise_url(url).drivername == driver

    def test_display_url_hides_the_password(self) -> None:
        shown = display_url("postgresql://monitor:s3cret@db.school:5432/hm")
        assert "s3cret" not in shown
        assert shown == "postgresql://monitor:***@db.school:5432/hm"

    def test_display_url_of_garbage_says_so_without_raising(self) -> None:
        assert display_url("not a url") == "<unparsable database URL>"


class TestMakeEngine:
    def test_make_engine_sqlite_creates_the_directory_and_sets_the_pragmas(
        self, tmp_path: Path
    ) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'hm.sqlite3'}")
        try:
            with engine.connect() as connection:
                pragmas = [
                    connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout")
                ]
        finally:
            engine.dispose()
        assert pragmas == ["wal", 1, 5000]
        assert (tmp_path / "new" / "dir" / "hm.sqlite3").exists()

    def test_ping_answers_when_the_database_does_and_raises_when_it_cannot(
        self, tmp_path: Path
    ) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'hm.sqlite3'}")
        ping(engine)
        engine.dispose()
        (tmp_path / "dir").mkdir()
        unopenable = make_engine(f"sqlite:///{tmp_path / 'dir'}")
        with pytest.raises(Exception, match="unable to open"):
            ping(unopenable)
        unopenable.dispose()

    def test_make_engine_sqlite_rolls_back_ddl(self, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'hm.sqlite3'}")
        try:
            with pytest.raises(RuntimeError), engine.begin() as connection:
                connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
                raise RuntimeError("abort the transaction")
            assert inspect(engine).get_table_names() == []
        finally:
            engine.dispose()

    def test_make_engine_postgresql_uses_psycopg_without_connecting(self) -> None:
        engine = make_engine("postgresql://monitor@127.0.0.1:1/hm")
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        engine.dispose()


class TestMigrations:
    def test_migrations_have_a_single_head(self) -> None:
        script = ScriptDirectory.from_config(alembic_config())
        assert len(script.get_heads()) == 1
        assert script.get_current_head() == head_revision()

    def test_migration_files_have_dated_names(self) -> None:
        names = [
            path.name
            for path in (MIGRATIONS_DIR / "versions").glob("*.py")
            if path.name != "__init__.py"
        ]
        assert names
        for name in names:
            assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d{4}-[0-9a-f]{12}_\w+\.py", name), name

    def test_upgrade_downgrade_upgrade_is_clean(self, empty_url: str) -> None:
        assert upgrade_schema(empty_url).endswith(
            f"schema upgraded from revision none (empty database) to {head_revision()}"
        )
        engine = make_engine(empty_url)
        try:
            assert set(inspect(engine).get_table_names()) == STORE_TABLES | {"alembic_version"}
            with engine.begin() as connection:
                config = alembic_config(empty_url)
                config.attributes["connection"] = connection
                command.downgrade(config, "base")
            assert inspect(engine).get_table_names() == ["alembic_version"]
            assert current_revision(engine) is None
        finally:
            engine.dispose()
        upgrade_schema(empty_url)
        engine = make_engine(empty_url)
        try:
            ensure_schema_current(engine)
            assert set(inspect(engine).get_table_names()) == STORE_TABLES | {"alembic_version"}
        finally:
            engine.dispose()

    def test_upgrade_schema_at_head_says_so(self, engine_url: str) -> None:
        assert upgrade_schema(engine_url).endswith(f"schema already at revision {head_revision()}")

    def test_alembic_command_line_reads_the_url_from_x_argument(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        engine = make_engine(url)
        try:
            ensure_schema_current(engine)
        finally:
            engine.dispose()


class TestSchemaCheck:
    def test_ensure_schema_current_accepts_the_head(self, engine_url: str) -> None:
        engine = make_engine(engine_url)
        try:
            ensure_schema_current(engine)
        finally:
            engine.dispose()

    def test_ensure_schema_current_refuses_an_empty_database(self, empty_url: str) -> None:
        engine = make_engine(empty_url)
        try:
            with pytest.raises(SchemaNotCurrent) as raised:
                ensure_schema_current(engine)
        finally:
            engine.dispose()
        assert raised.value.current is None
        assert str(raised.value) == (
            "the database schema is at revision none (an empty database) but this version "
            f"needs {head_revision()}: run `hallmonitor db upgrade`"
        )

    def test_ensure_schema_current_refuses_an_old_revision(self, engine_url: str) -> None:
        engine = make_engine(engine_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("UPDATE alembic_version SET version_num = '0123456789ab'"))
            with pytest.raises(SchemaNotCurrent) as raised:
                ensure_schema_current(engine)
        finally:
            engine.dispose()
        assert (raised.value.current, raised.value.required) == ("0123456789ab", head_revision())
        assert "at revision 0123456789ab" in str(raised.value)
        assert str(raised.value).endswith("run `hallmonitor db upgrade`")

    def test_schema_not_current_is_in_the_errors_tree(self) -> None:
        assert "SchemaNotCurrent" in (errors.__doc__ or "")


def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path: Path) -> None:
    """A read-then-write transaction must wait for another writer, not fail with "database is
    locked" (capture and the review app share one file under ``hallmonitor up``)."""
    path = tmp_path / "locks.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM t").scalar()
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        engine.dispose()


def test_sensors_migrating_one_database_at_once_take_turns(empty_url: str) -> None:
    """A trust's sensors may all start together on a new database: one migrates, the others
    wait for it and find the schema at head (without the lock they fail on duplicate tables)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        lines = list(pool.map(upgrade_schema, [empty_url] * 3))
    upgraded = [line for line in lines if "schema upgraded from revision none" in line]
    assert len(upgraded) == 1
    assert sum("schema already at revision" in line for line in lines) == 2
    engine = make_engine(empty_url)
    try:
        ensure_schema_current(engine)
    finally:
        engine.dispose()


def test_sent_reports_of_a_single_school_database_keep_its_site_on_upgrade(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'school.sqlite3'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "5e8d3a7b2c1f")
            connection.execute(
                text(
                    "INSERT INTO incidents (key, site, platform, category, device_ip, device_mac,"
                    " start_at, end_at, active_minutes, confidence, hit_count, state, evidence,"
                    " status, created_at, updated_at) VALUES ('k', 'Hill School', 'x', 'social',"
                    " '10.0.0.5', '', '2026-11-16 10:00:00', '2026-11-16 10:10:00', 10, 0.9, 3,"
                    " 'closed', '[]', 'new', '2026-11-16 10:00:00', '2026-11-16 10:00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO sent_reports (kind, period, recipient, role, status, attempts,"
                    " created_at) VALUES ('weekly', '2026-W47', 'head@hill.example', 'reviewer',"
                    " 'sent', 1, '2026-11-23 07:05:00')"
                )
            )
        upgrade_schema(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT site FROM sent_reports")).scalar() == (
                "Hill School"
            )
    finally:
        engine.dispose()


def test_incidents_stored_before_the_basis_columns_get_it_from_their_evidence(
    empty_url: str,
) -> None:
    engine = make_engine(empty_url)
    evidence = (
        '[{"ts": 1.0, "proto": "dns", "name": "i.instagram.com", "via": "name"},'
        ' {"ts": 2.0, "proto": "tls", "name": "i.instagram.com", "via": "name"},'
        ' {"ts": 3.0, "proto": "quic", "name": "", "via": "address"}]'
    )
    try:
        with engine.begin() as connection:
            config = alembic_config(empty_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "b7e1c4d2a9f3")
            connection.execute(
                text(
                    "INSERT INTO incidents (key, site, platform, category, device_ip, device_mac,"
                    " start_at, end_at, active_minutes, confidence, hit_count, state, evidence,"
                    " status, created_at, updated_at) VALUES ('k', 'main', 'instagram', 'social',"
                    " '10.0.0.5', '', '2026-11-16 10:00:00', '2026-11-16 10:10:00', 10, 0.9, 3,"
                    " 'closed', :evidence, 'new', '2026-11-16 10:00:00', '2026-11-16 10:00:00')"
                ),
                {"evidence": evidence},
            )
        upgrade_schema(empty_url)
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT connections, lookups, attribution FROM incidents")
            ).one()
        assert tuple(row) == (2, 1, "name")
    finally:
        engine.dispose()


def test_many_connections_opening_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL can fail at once with "database is locked" when two
    connections try together (SQLite skips the busy handler there); the engine retries."""
    for attempt in range(10):
        url = f"sqlite:///{tmp_path / f'new-{attempt}.sqlite3'}"
        ready = threading.Barrier(6)

        def open_and_read(_: int, url: str = url, ready: threading.Barrier = ready) -> int:
            engine = make_engine(url)
            ready.wait()
            try:
                with engine.connect() as connection:
                    return int(connection.execute(text("SELECT 1")).scalar_one())
            finally:
                engine.dispose()

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(open_and_read, range(6))) == [1] * 6


def test_migrations_import_no_application_module() -> None:
    """A migration runs as it was written: what it needs from the application is copied in."""
    importers = []
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            importers += [
                (path.name, name) for name in names if name.split(".")[0] in ("monitor", "api")
            ]
    assert importers == []
