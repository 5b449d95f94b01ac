"""The service's long-lived parts, built once per process, and its transactions.

:class:`ServiceContext` holds the settings, the network, the database engine, the
capacity ledger and the patient vault. :meth:`ServiceContext.transaction` is the unit
of work of every use case: commit on success, roll back on any error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from cartnet.ledger.audit import AuditAction, Change, ReasonCode
from cartnet.ledger.signatures import SignaturePolicy
from cartnet.network.catalog import open_network
from cartnet.network.model import Network
from cartnet.service.access import Principal
from cartnet.service.security import PatientVault
from cartnet.service.settings import ServiceSettings
from cartnet.service.slots import SlotLedger
from cartnet.store.database import READ_ONLY, make_engine, make_session_factory, upgrade
from cartnet.store.repository import AuditRepository
from cartnet.store.tables import CounterRow


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
        return cls(settings, network, engine, make_session_factory(engine), clock)

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
        """One use case: everything it writes commits together, or nothing does."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A use case that only reads: it does not take SQLite's write lock."""
        with self.sessions() as session, session.begin():
            session.connection(execution_options=READ_ONLY)
            yield session

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
        """Append an audit entry in the use case's transaction (last: it locks the head)."""
        self.audit.append(
            session,
            principal.actor,
            action,
            entity_type,
            entity_id,
            changes,
            reason_code=reason_code,
            reason_text=reason_text,
            timestamp=self.now(),
        )

    def next_number(self, session: Session, counter: str, first: int = 1) -> int:
        """The next value of a named counter; the row lock serializes concurrent callers."""
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(CounterRow).values(name=counter, value=first - 1).on_conflict_do_nothing()
        )
        value = session.execute(
            update(CounterRow)
            .where(CounterRow.name == counter)
            .values(value=CounterRow.value + 1)
            .returning(CounterRow.value)
        ).scalar_one()
        return int(value)


def new_id(prefix: str) -> str:
    """A random record id such as ``ord_3f2a...`` (80 random bits): carries nothing."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"
