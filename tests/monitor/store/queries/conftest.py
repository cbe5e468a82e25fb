"""One migrated database per test module and backend; each test runs in a transaction that is
rolled back, so tests stay independent without paying for a new database each."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.store.db import make_engine
from tests.monitor.conftest import BACKENDS, PostgresServer


@pytest.fixture(scope="module", params=BACKENDS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database at the schema head for this module, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("queries") / "hallmonitor.sqlite3"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(template=server.template)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    server.drop_database(url)


@pytest.fixture
def db(module_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test (commits included)."""
    with module_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()
