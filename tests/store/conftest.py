"""Engines, sessions and a written audit trail for the store tests.

The databases themselves (``database_url``, ``migrated_url``: SQLite always, PostgreSQL
when ``CARTNET_TEST_POSTGRES_URL`` is set) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cartnet.ledger import Actor, AuditAction, AuditEntry, ReasonCode, Role
from cartnet.store import AuditRepository, make_engine, make_session_factory


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


COORDINATOR = Actor("u-001", "Ana Lopez", Role.CENTER_COORDINATOR)
QA = Actor("u-017", "Jane Doe", Role.QA)
START = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def written(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    """Four committed entries on order ORD-1: a create, then updates with reasons."""
    repository = AuditRepository()
    written: list[AuditEntry] = []
    with sessions() as session, session.begin():
        written.append(
            repository.append(
                session,
                COORDINATOR,
                AuditAction.CREATE,
                "batch_record",
                "ORD-1",
                [("apheresis_date", None, "2026-03-09"), ("weight_kg", None, 71.5)],
                timestamp=START,
            )
        )
        for n in range(1, 4):
            written.append(
                repository.append(
                    session,
                    QA,
                    AuditAction.UPDATE,
                    "batch_record",
                    "ORD-1",
                    [("line", f"L{n}", f"L{n + 1}")],
                    reason_code=ReasonCode.CAPACITY_CHANGE,
                    timestamp=START + timedelta(minutes=n),
                )
            )
    return written
