"""Persistence of the ledger: SQLAlchemy tables, engines, migrations and repositories.

An adapter over :mod:`cartnet.ledger`: the core builds and checks the records, this
package writes them to SQLite (one file, the default) or PostgreSQL (many users) and
reads them back. Schema changes go through the Alembic migrations in
``cartnet/store/migrations`` (:func:`upgrade`), never through ``create_all``.
"""

from cartnet.store.database import (
    DATABASE_URL_VARIABLE,
    DatabaseError,
    data_dir,
    database_url,
    default_database_url,
    make_engine,
    make_session_factory,
    upgrade,
)
from cartnet.store.repository import AuditRepository, ChainHeadMissingError
from cartnet.store.tables import (
    AuditEntryRow,
    AuditHeadRow,
    Base,
    CustodyEventRow,
    OrderRow,
)

__all__ = [
    "DATABASE_URL_VARIABLE",
    "AuditEntryRow",
    "AuditHeadRow",
    "AuditRepository",
    "Base",
    "ChainHeadMissingError",
    "CustodyEventRow",
    "DatabaseError",
    "OrderRow",
    "data_dir",
    "database_url",
    "default_database_url",
    "make_engine",
    "make_session_factory",
    "upgrade",
]
