"""The real databases of tests/monitor/conftest.py (SQLite copies of a migrated template, and
PostgreSQL when ``HALLMONITOR_TEST_POSTGRES_URL`` names a server), for the entry points' tests."""

from tests.monitor.conftest import (  # noqa: F401 (fixtures)
    backend,
    empty_url,
    engine,
    engine_url,
    postgres_server,
    postgres_test_url,
    sqlite_template,
)
