"""Alembic environment: Hall Monitor's models, engines and database URL.

The URL comes, in order, from ``config.attributes["url"]`` (set by ``monitor.store.db``), from
``-x url=...`` on the ``alembic`` command line, or from ``HALLMONITOR_DATABASE__URL``. A caller
that already holds a connection passes it as ``config.attributes["connection"]`` and owns the
transaction.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from monitor.store.db import make_engine, normalise_url
from monitor.store.models import Base

config = context.config
target_metadata = Base.metadata

if config.cmd_opts is not None and config.config_file_name is not None:
    # Only the `alembic` command line configures logging; Hall Monitor has its own.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("HALLMONITOR_DATABASE__URL")
    if not url:
        raise SystemExit(
            "no database URL: pass `-x url=...` or set HALLMONITOR_DATABASE__URL "
            "(or run `hallmonitor db upgrade`, which reads the config file)"
        )
    return str(url)


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,  # make_engine gives SQLite real BEGIN/COMMIT around DDL
    )


def run_migrations_offline() -> None:
    url = normalise_url(database_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as own_connection:
            configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
