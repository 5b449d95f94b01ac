"""The database tables: orders, the audit trail and its head, and custody events.

Rows are plain storage; the rules live in :mod:`cartnet.ledger`. Times are stored in
UTC (:class:`UTCDateTime`) and read back as aware UTC datetimes on both SQLite and
PostgreSQL. A custody event also keeps the UTC offset of the place, so the local time
the person saw can be shown again. ``orders.version`` is SQLAlchemy's optimistic lock:
an update of a row changed meanwhile by someone else raises ``StaleDataError``.

The schema is created by the Alembic migrations in ``migrations/versions``; a test
checks that they and these classes agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so batch migrations on SQLite can find and alter them."""

HASH_LENGTH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; SQLite keeps it naive, PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone; store aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every cartnet table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OrderRow(Base):
    """One patient's therapy order: its chain-of-identity id, where, what, and its state."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    coi: Mapped[str] = mapped_column(String(32), unique=True)
    center: Mapped[str] = mapped_column(String(64))
    market: Mapped[str] = mapped_column(String(32))
    product: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    trial: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utc_now, onupdate=_utc_now)
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("scope IN ('commercial', 'clinical')", name="scope"),
        CheckConstraint(
            "(scope = 'clinical' AND trial IS NOT NULL) "
            "OR (scope = 'commercial' AND trial IS NULL)",
            name="trial_matches_scope",
        ),
    )
    __mapper_args__ = {"version_id_col": version}


class AuditEntryRow(Base):
    """One :class:`~cartnet.ledger.audit.AuditEntry`; ``changes`` is a list of [field, old, new]."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[list[list[Any]]] = mapped_column(JSON)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    previous_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class AuditHeadRow(Base):
    """The last sequence number and hash of the audit trail: one row, ``id`` 1.

    Appending locks this row (``SELECT ... FOR UPDATE`` on PostgreSQL), which serializes
    writers; :func:`cartnet.ledger.audit.verify` uses it to see deleted last entries.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class CustodyEventRow(Base):
    """One :class:`~cartnet.ledger.custody.CustodyEvent` and whether its scan was accepted."""

    __tablename__ = "custody_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    step: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    organisation: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    utc_offset_minutes: Mapped[int] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    scanned: Mapped[str] = mapped_column(Text)
    accepted: Mapped[bool] = mapped_column(Boolean)
    refusal_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "(accepted AND refusal_reason IS NULL) "
            "OR (NOT accepted AND refusal_reason IS NOT NULL)",
            name="refusal_has_reason",
        ),
    )
