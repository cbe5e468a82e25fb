"""Real databases for the store, engine and runner tests: SQLite files and a PostgreSQL server.

SQLite: the schema is migrated once per session into a template file (``alembic upgrade
head``, never ``create_all``), and each test gets its own copy. PostgreSQL: each session
creates its own template database on the server named by ``HALLMONITOR_TEST_POSTGRES_URL``
and each test gets ``CREATE DATABASE ... TEMPLATE`` of it (a file copy, about 30 ms); all of
them are dropped at the end. Without that variable the PostgreSQL tests skip, except on CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from monitor.store.db import make_engine, normalise_url, upgrade_schema

POSTGRES_URL_VARIABLE = "HALLMONITOR_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class PostgresServer:
    """Creates and drops databases on the test server through an AUTOCOMMIT connection."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.prefix = f"hm_test_{uuid.uuid4().hex[:10]}"
        self._admin = create_engine(url, isolation_level="AUTOCOMMIT")
        self._created: list[str] = []
        self.template: str | None = None

    def create_database(self, *, template: str | None = None) -> URL:
        name = f"{self.prefix}_{len(self._created)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self._admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}{clause}"))
        self._created.append(name)
        return self.url.set(database=name)

    def drop_database(self, url: URL) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)"))
        if url.database in self._created:
            self._created.remove(url.database)

    def close(self) -> None:
        with self._admin.connect() as connection:
            for name in reversed(self._created):
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        self._admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def postgres_test_url() -> str | None:
    """The server URL, read before the per-test ``clean_environ`` removes HALLMONITOR_* vars."""
    return os.environ.get(POSTGRES_URL_VARIABLE)


@pytest.fixture(scope="session")
def postgres_server(postgres_test_url: str | None) -> Iterator[PostgresServer]:
    """The test server, with a migrated template database; skips (or fails on CI) without it."""
    raw = postgres_test_url
    if not raw:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{POSTGRES_URL_VARIABLE} is not set: CI must run the PostgreSQL tests "
                "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
            )
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    server = PostgresServer(normalise_url(raw))
    try:
        template_url = server.create_database()
        upgrade_schema(template_url.render_as_string(hide_password=False))
        server.template = template_url.database
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session."""
    path = tmp_path_factory.mktemp("schema") / "template.sqlite3"
    upgrade_schema(f"sqlite:///{path}")
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def fresh_database(backend: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A fresh database at the schema head (an SQLite file in ``directory``), dropped after."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = directory / "hallmonitor.sqlite3"
        path.parent.mkdir()
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(template=server.template)
    yield url.render_as_string(hide_password=False)
    server.drop_database(url)


@pytest.fixture
def engine_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the schema head, on each backend."""
    with fresh_database(backend, request, tmp_path / "db") as url:
        yield url


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database (no schema), on each backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url.render_as_string(hide_password=False)
    server.drop_database(url)


@pytest.fixture
def engine(engine_url: str) -> Iterator[Engine]:
    engine = make_engine(engine_url)
    yield engine
    engine.dispose()


@pytest.fixture
def second_engine_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """Another fresh database at the schema head, on the same backend as ``engine_url``."""
    with fresh_database(backend, request, tmp_path / "second-db") as url:
        yield url
