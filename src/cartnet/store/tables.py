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

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
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
    pseudonym: Mapped[str] = mapped_column(String(16), unique=True)
    patient_identity: Mapped[str] = mapped_column(Text)
    """Fernet token of the patient's identity (JSON); only the service's key opens it."""
    country: Mapped[str] = mapped_column(String(2))
    earliest_apheresis: Mapped[date] = mapped_column(Date)
    site: Mapped[str | None] = mapped_column(String(64), index=True)
    apheresis_on: Mapped[date | None] = mapped_column(Date)
    start_on: Mapped[date | None] = mapped_column(Date)
    release_on: Mapped[date | None] = mapped_column(Date)
    delivery_on: Mapped[date | None] = mapped_column(Date)
    infusion_on: Mapped[date | None] = mapped_column(Date)
    din: Mapped[str | None] = mapped_column(String(16), unique=True)
    """DIN of the current apheresis collection (earlier ones stay in ``collections``)."""
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
        Index("ix_orders_center_created", "center", "created_at", "id"),
    )
    __mapper_args__ = {"version_id_col": version}


class AuditEntryRow(Base):
    """One :class:`~cartnet.ledger.entry.AuditEntry`; ``changes`` is a list of [field, old, new]."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(200))
    changes: Mapped[list[list[Any]]] = mapped_column(JSON)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    previous_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class AuditHeadRow(Base):
    """The last sequence number and hash of the audit trail: one row, ``id`` 1.

    Appending locks this row (``SELECT ... FOR UPDATE`` on PostgreSQL), which serializes
    writers; :func:`cartnet.ledger.verification.verify` uses it to see deleted last entries.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Of the last entry: the next must not be earlier (no second read to check it)."""

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


def _big_id() -> Any:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class SlotUsageRow(Base):
    """Booked capacity of one resource on one day: manufacturing starts, apheresis or QC.

    Booking raises ``booked`` with ``UPDATE ... WHERE booked < capacity``: the database
    decides who gets the last slot, so two clients can never both get it.
    """

    __tablename__ = "slot_usage"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    booked: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("kind IN ('manufacturing', 'apheresis', 'qc')", name="kind"),
        CheckConstraint("booked >= 0", name="booked_not_negative"),
    )


class CounterRow(Base):
    """A named counter for identifier sequences (CoI and DIN per facility and year)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class OrderStepRow(Base):
    """One lifecycle step of an order (a transition): the record its e-signatures bind to."""

    __tablename__ = "order_steps"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    record_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class SignatureRow(Base):
    """One :class:`~cartnet.ledger.signatures.ElectronicSignature` on a record."""

    __tablename__ = "signatures"

    id: Mapped[int] = _big_id()
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    signer_id: Mapped[str] = mapped_column(String(64))
    printed_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    meaning: Mapped[str] = mapped_column(String(32))
    record_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    signature_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


class CollectionRow(Base):
    """One apheresis collection of an order and its DIN; a new apheresis adds a row."""

    __tablename__ = "collections"

    id: Mapped[int] = _big_id()
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    din: Mapped[str] = mapped_column(String(16), unique=True)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QcResultRow(Base):
    """One QC release test result of an order's batch."""

    __tablename__ = "qc_results"

    id: Mapped[int] = _big_id()
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    test: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(200))
    specification: Mapped[str] = mapped_column(String(200))
    passed: Mapped[bool] = mapped_column(Boolean)
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))


class ShipmentRow(Base):
    """One courier shipment of an order: the apheresis to the site or the product back."""

    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    direction: Mapped[str] = mapped_column(String(16))
    courier: Mapped[str] = mapped_column(String(200))
    tracking: Mapped[str] = mapped_column(String(200))
    low_c: Mapped[float | None] = mapped_column(Float)
    high_c: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("direction IN ('to_site', 'to_center')", name="direction"),)


class TemperatureLogRow(Base):
    """A temperature-logger file of a shipment, kept as uploaded, and what it showed."""

    __tablename__ = "temperature_logs"

    id: Mapped[int] = _big_id()
    shipment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("shipments.id", ondelete="RESTRICT"), index=True
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
    content: Mapped[str] = mapped_column(Text)
    readings: Mapped[int] = mapped_column(Integer)
    excursions: Mapped[int] = mapped_column(Integer)


class OrderExceptionRow(Base):
    """A deviation on an order (a refused scan, a temperature excursion) until QA closes it."""

    __tablename__ = "order_exceptions"

    id: Mapped[int] = _big_id()
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raised_by: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closure_reason: Mapped[str | None] = mapped_column(Text)


class UserRow(Base):
    """A local user account: one role, and the center or site it belongs to.

    ``login_name`` is the username case-folded (unique: ``Ada`` and ``ada`` are one
    login); ``name_key`` the printed name case-folded within its tenant (unique: no two
    people of one center or site sign with the same name). ``password_hash`` is empty
    until the person enrols with their one-time ``enrolment_hash`` token. ``seal`` is an
    HMAC of the credential columns under a server key that is not in the database.
    """

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    login_name: Mapped[str] = mapped_column(String(64), unique=True)
    printed_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(300), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enrolment_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    enrolment_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    role: Mapped[str] = mapped_column(String(32))
    center: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    pending_grant: Mapped[str | None] = mapped_column(String(200))
    """A GxP role grant awaiting a second administrator: ``role center site by`` as JSON."""
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seal: Mapped[str | None] = mapped_column(String(HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenRow(Base):
    """A bearer token, stored as its HMAC-SHA256 under a key not in the database: a stolen
    table opens no session and a row inserted by hand is refused."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRow(Base):
    """The stored response of a request made with an ``Idempotency-Key`` header."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = _big_id()
    user_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(HASH_LENGTH))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)


class KeyCheckRow(Base):
    """A fingerprint of a key the data was written with, to refuse starting with another."""

    __tablename__ = "key_checks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(HASH_LENGTH))


class WebSessionRow(Base):
    """A logged-in browser: kept server-side so logout and timeouts end it for certain.

    The cookie carries a random token; the row keeps its keyed hash only, like bearer
    tokens, and the session's CSRF token, which every state-changing form must echo.
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrailCoverageRow(Base):
    """Where the trail began to hold every evidence column (:mod:`cartnet.store.evidence`).

    One row, ``id`` 1, written by migration 0007: the audit head's sequence then
    (0 on a new database). ``verify`` reports records of orders audited up to that
    sequence, whose older entries lack columns recorded since, as not checked.
    """

    __tablename__ = "trail_coverage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    since_sequence: Mapped[int] = mapped_column(BigInteger)
    since_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class JobRow(Base):
    """A long computation a planner started from the portal: its parameters, progress, result.

    The row is the job's whole state, so a browser refresh or another server process
    sees the same progress, and a restart can tell a job that stopped with its server
    (``heartbeat_at`` gone stale) from one still running.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    runner: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CosignatureRequestRow(Base):
    """A signed step awaiting co-signature: the step is not taken until all have signed.

    The first signer's request fixes the step (its id, time and record hash) and keeps
    what is needed to take it later (``payload``: the request without signatures); each
    co-signer adds a sealed signature in their own session. ``state``: ``pending``, then
    ``completed`` (the step was taken), ``withdrawn`` (by the first signer) or
    ``expired`` (refused after ``expires_at``).
    """

    __tablename__ = "cosignature_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    step_id: Mapped[str] = mapped_column(String(64), unique=True)
    step_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[str] = mapped_column(String(32))
    record_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    meaning: Mapped[str] = mapped_column(String(32))
    required: Mapped[int] = mapped_column(Integer)
    tenant: Mapped[str] = mapped_column(String(8))
    requested_by: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    signatures: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QuotaRow(Base):
    """Slots of a site a center, market or trial holds over a period (planners set them).

    A quota is never deleted: retiring it sets ``retired_at``, so the rules bookings
    were checked against stay readable; each change is in the audit trail.
    ``slots`` or ``share`` (of the site's starts in the period), never both.
    """

    __tablename__ = "quotas"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(64))
    slots: Mapped[int | None] = mapped_column(Integer)
    share: Mapped[float | None] = mapped_column(Float)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    release_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("holder_kind IN ('center', 'market', 'trial')", name="holder_kind"),
        CheckConstraint(
            "(slots IS NULL AND share IS NOT NULL) OR (slots IS NOT NULL AND share IS NULL)",
            name="slots_or_share",
        ),
        CheckConstraint("slots IS NULL OR slots >= 0", name="slots_not_negative"),
        CheckConstraint("share IS NULL OR (share >= 0 AND share <= 1)", name="share_range"),
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("release_days >= 0", name="release_days_not_negative"),
    )


class PlanApplicationRow(Base):
    """A planner's signed decision to apply moves of an optimization plan to real orders.

    The e-signature (``signatures`` row, record type ``plan_application``) binds
    ``record_hash``, the SHA-256 of the application's canonical content: the job, the
    time, the signer and every selected move (order, from chain, to chain). Each move
    is then a reschedule of its own, audited with the reason ``network_optimization``
    and this application's id.
    """

    __tablename__ = "plan_applications"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("jobs.id", ondelete="RESTRICT"), index=True
    )
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    moves: Mapped[str] = mapped_column(Text)
    """The selected moves as canonical JSON (what the signature binds, with the rest)."""
    record_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
