"""The service's long-lived parts, built once per process, and its transactions.

:class:`ServiceContext` holds the settings, the network, the database engine, the
capacity ledger and the patient vault. :meth:`ServiceContext.transaction` is the unit
of work of every use case: commit on success, roll back on any error.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from cartnet.ledger.chain import Change
from cartnet.ledger.entry import AuditAction, AuditRuleError, FieldChange, reason_problem
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.signatures import SignaturePolicy
from cartnet.network.catalog import open_network
from cartnet.network.model import Network
from cartnet.service.access import Principal
from cartnet.service.security import PatientVault
from cartnet.service.settings import ServiceSettings
from cartnet.service.slots import SlotLedger
from cartnet.store.database import (
    READ_ONLY,
    insert_or_ignore,
    make_engine,
    make_session_factory,
    upgrade,
)
from cartnet.store.records import key_fingerprint
from cartnet.store.repository import AuditRepository
from cartnet.store.tables import CounterRow, KeyCheckRow

PENDING_AUDIT = "cartnet_pending_audit"
"""Key in ``Session.info`` of the audit entries a transaction will write at commit."""


AFTERWARDS = "cartnet_afterwards"
"""Key in ``Session.info`` of work to do in a new transaction once this one has ended,
committed or not: a failed signature password is audited even though the step that
asked for it is rolled back."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ServiceContext:
    """One running service: configuration, network, database and keys."""

    settings: ServiceSettings
    network: Network
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = _utc_now
    audit: AuditRepository = field(default_factory=AuditRepository)
    slots: SlotLedger = field(init=False)
    vault: PatientVault = field(init=False)
    signature_policy: SignaturePolicy = field(init=False)

    def __post_init__(self) -> None:
        sqlite = self.engine.dialect.name == "sqlite"
        self._writer: AbstractContextManager[object] = (
            threading.RLock() if sqlite else nullcontext()
        )
        self.slots = SlotLedger(self.network)
        self.vault = PatientVault(self.settings.patient_key)
        self.signature_policy = self.settings.signature_policy

    @classmethod
    def open(
        cls,
        settings: ServiceSettings,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] = _utc_now,
        **engine_options: object,
    ) -> ServiceContext:
        """Load the network, connect (migrating first unless ``migrate`` is False)."""
        network = open_network(settings.network).with_scenario(settings.scenario)
        if migrate:
            upgrade(settings.database_url)
        engine = make_engine(settings.database_url, **engine_options)
        ctx = cls(settings, network, engine, make_session_factory(engine), clock)
        try:
            ctx.check_keys()
        except Exception:
            engine.dispose()
            raise
        return ctx

    def check_keys(self) -> None:
        """Refuse keys other than those the database was written with.

        A server started with a new patient key could not open any stored identity, and
        one with a new signing key would make every stored signature look forged; the
        first start records a fingerprint of each key, later starts compare.
        """
        with self.transaction() as session:
            for name, key in (
                ("patient_key", self.settings.patient_key),
                ("signing_key", self.settings.signing_key),
            ):
                fingerprint = key_fingerprint(key)
                insert_or_ignore(session, KeyCheckRow, name=name, fingerprint=fingerprint)
                stored = session.get(KeyCheckRow, name)
                if stored is not None and stored.fingerprint != fingerprint:
                    raise KeyMismatchError(
                        f"the {name.replace('_', ' ')} is not the one this database was written "
                        f"with; set CARTNET_{name.upper()} (or the key file) to the original key"
                    )

    def close(self) -> None:
        self.engine.dispose()

    @property
    def signing_key(self) -> bytes:
        return self.settings.signing_key.encode()

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def today(self) -> date:
        return self.now().date()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One use case: everything it writes commits together, or nothing does.

        Its audit entries are appended last, just before the commit: the trail's head is
        the one row every writer locks, so it is held for as short a time as possible.
        On SQLite the writers of this process queue on a lock first, in order, instead of
        polling for the database's write lock (SQLite's busy handler sleeps up to 100 ms
        between tries, so some writers would wait seconds while later ones get in).
        """
        afterwards: list[Callable[[], None]] = []
        try:
            with self._writer, self.sessions() as session, session.begin():
                session.info[AFTERWARDS] = afterwards
                yield session
                for entry in session.info.pop(PENDING_AUDIT, []):
                    self.audit.append(session, **entry, clock=self.now)
        finally:
            for job in afterwards:
                job()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A use case that only reads: it does not take SQLite's write lock.

        Work it leaves in :data:`AFTERWARDS` (auditing a failed password) runs once it
        has ended, in transactions of its own."""
        afterwards: list[Callable[[], None]] = []
        try:
            with self.sessions() as session, session.begin():
                session.info[AFTERWARDS] = afterwards
                session.connection(execution_options=READ_ONLY)
                yield session
        finally:
            for job in afterwards:
                job()

    def record(
        self,
        session: Session,
        principal: Principal,
        action: AuditAction,
        entity_type: str,
        entity_id: str,
        changes: Iterable[Change] = (),
        *,
        reason_code: ReasonCode | None = None,
        reason_text: str | None = None,
    ) -> None:
        """Add an audit entry to the use case's transaction; it is written at commit.

        The entry is checked now (values, reason rules), so a bad one fails the use case
        where it is made. It is stamped once the head is locked at commit: a transaction
        that read the clock earlier but got the lock later would otherwise stamp its
        entry before the last one.
        """
        field_changes = tuple(c if isinstance(c, FieldChange) else FieldChange(*c) for c in changes)
        problem = reason_problem(action, field_changes, reason_code, reason_text)
        if problem is not None:
            raise AuditRuleError(f"{action} of {entity_type} {entity_id}: {problem}")
        session.info.setdefault(PENDING_AUDIT, []).append(
            {
                "actor": principal.actor,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "changes": field_changes,
                "reason_code": reason_code,
                "reason_text": reason_text,
            }
        )

    def add_record(
        self,
        session: Session,
        principal: Principal,
        row: Any,
        entity_type: str,
        entity_id: Callable[[Any], str],
        fields: Sequence[str],
        *,
        action: AuditAction = AuditAction.CREATE,
        also: Iterable[Change] = (),
    ) -> None:
        """Insert a new record and audit it: each of ``fields`` as created, plus ``also``.

        ``entity_id`` names the record once the database has given it its id.
        """
        session.add(row)
        session.flush()
        values = [(name, None, audit_value(getattr(row, name))) for name in fields]
        self.record(session, principal, action, entity_type, entity_id(row), [*values, *also])

    def next_number(self, session: Session, counter: str, first: int = 1) -> int:
        """The next value of a named counter; the row lock serializes concurrent callers."""
        insert_or_ignore(session, CounterRow, name=counter, value=first - 1)
        value = session.execute(
            update(CounterRow)
            .where(CounterRow.name == counter)
            .values(value=CounterRow.value + 1)
            .returning(CounterRow.value)
        ).scalar_one()
        return int(value)


class KeyMismatchError(RuntimeError):
    """The configured keys are not those the database's records were made with."""


def audit_value(value: object) -> str | int | float | bool | None:
    """A column value as the audit trail records it: dates and times as ISO 8601 text."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def new_id(prefix: str) -> str:
    """A random record id such as ``ord_3f2a...`` (80 random bits): carries nothing."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"
