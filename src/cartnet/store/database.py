"""Engines, sessions and schema migrations for SQLite and PostgreSQL.

The database is named by a URL: ``--db`` on the command line, else the
``CARTNET_DATABASE_URL`` environment variable, else a SQLite file ``cartnet.db`` in the
user data directory (``platformdirs``; ``~/.local/share/cartnet`` without it). A new
SQLite file is made readable by its owner only (0600), a new folder for it 0700.

SQLite (``sqlite+pysqlite:///path``) runs in WAL mode with foreign keys on, and every
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock at once, so two
writers queue (up to the busy timeout) instead of one failing half-way when it tries to
upgrade a read snapshot that has gone stale. That serializes audit appends on SQLite;
transactions that only read (:data:`READ_ONLY`) use a deferred ``BEGIN`` instead.
PostgreSQL (``postgresql+psycopg://``) serializes them with a row lock instead
(:mod:`cartnet.store.repository`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

DATABASE_URL_VARIABLE = "CARTNET_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another one's transaction before giving up."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
POOL = {"pool_size": 10, "max_overflow": 30}
"""Up to 40 connections: as many as the 40 threads a server runs requests on, so no
request waits for a connection while its thread is free."""
READ_ONLY_OPTION = "cartnet_read_only"
READ_ONLY = {READ_ONLY_OPTION: True, "postgresql_readonly": True}
"""Execution options of a transaction that only reads: on SQLite a plain (deferred)
``BEGIN``, so readers do not queue behind writers; on PostgreSQL ``READ ONLY``."""


class DatabaseError(ValueError):
    """A database URL cartnet cannot use; the message says which and why."""


def data_dir() -> Path:
    """Where cartnet keeps its files on this machine (the SQLite database, the keys)."""
    try:
        from platformdirs import user_data_dir
    except ImportError:  # pragma: no cover - platformdirs is a declared dependency
        return Path.home() / ".local" / "share" / "cartnet"
    return Path(user_data_dir("cartnet", appauthor=False))


def default_database_url() -> str:
    """The SQLite file in the user data directory (the directory is created on use)."""
    return f"sqlite+pysqlite:///{data_dir() / 'cartnet.db'}"


def database_url(url: str | None = None) -> str:
    """``url`` if given, else ``$CARTNET_DATABASE_URL``, else :func:`default_database_url`."""
    if url:
        return url
    return os.environ.get(DATABASE_URL_VARIABLE) or default_database_url()


def make_engine(url: str | None = None, **options: Any) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), set up as the module docstring says.

    Raises :class:`DatabaseError` for a malformed URL or a database other than SQLite
    and PostgreSQL.
    """
    text = database_url(url)
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise DatabaseError(
            f"{text!r} is not a database URL; use sqlite+pysqlite:///path/to/cartnet.db "
            "or postgresql+psycopg://user@host/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername == "sqlite":
            parsed = parsed.set(drivername="sqlite+pysqlite")
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database).expanduser())
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        engine = create_engine(parsed, connect_args=connect_args, **{**POOL, **options})
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, **{**POOL, **options})
    raise DatabaseError(
        f"database {parsed.drivername!r} is not supported; use sqlite+pysqlite:// or "
        "postgresql+psycopg://"
    )


def create_private_file(path: Path) -> None:
    """Make ``path`` readable by its owner only (0600), in a folder made 0700 if new.

    A SQLite file holds the audit trail and the encrypted identities; other accounts on
    the machine have no business reading it. SQLite gives its ``-wal`` and ``-shm``
    files the database file's permissions. An existing file or folder is left as it is.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is cut by the umask; say it exactly
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_or_ignore(session: Session, model: type[Any], **values: Any) -> None:
    """Insert a row unless one with its key exists (``ON CONFLICT DO NOTHING``).

    Under concurrency the loser of the race waits for the winner and inserts nothing,
    on SQLite and PostgreSQL alike; the caller then reads or updates the row.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration, built in code: no ``alembic.ini`` on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates "%"; URL-encoded characters must survive it.
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; running it again changes nothing."""
    engine = make_engine(url)
    try:
        config = alembic_config(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
