"""Alembic environment: runs the migrations on the connection :func:`upgrade` hands in.

Batch mode (``render_as_batch``) lets later revisions alter SQLite tables, which have
no ``ALTER COLUMN``: Alembic copies the table, which needs named constraints (see
:data:`cartnet.store.tables.NAMING_CONVENTION`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cartnet.store.database import make_engine
from cartnet.store.tables import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the SQL for ``alembic upgrade --sql`` instead of running it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()


# Alembic installs ``context.config`` while it runs this file; a plain import (doctest
# collection, documentation tools) must not try to migrate anything.
if hasattr(context, "config"):
    main()
