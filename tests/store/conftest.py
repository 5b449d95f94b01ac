"""Databases for the store tests: a SQLite file always, PostgreSQL when one is offered.

Set ``CARTNET_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
to run every store test on PostgreSQL as well. Each test gets its own empty schema there,
dropped afterwards, so reruns start clean and tests do not see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cartnet.ledger import Actor, AuditAction, AuditEntry, ReasonCode, Role
from cartnet.store import AuditRepository, make_engine, make_session_factory, upgrade

POSTGRES_URL = os.environ.get("CARTNET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | None]:
    if not POSTGRES_URL:
        yield None
        return
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin: Engine | None
) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'cartnet.db'}"
        return
    assert postgres_admin is not None and POSTGRES_URL is not None
    schema = f"cartnet_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


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
                "order",
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
                    "order",
                    "ORD-1",
                    [("line", f"L{n}", f"L{n + 1}")],
                    reason_code=ReasonCode.CAPACITY_CHANGE,
                    timestamp=START + timedelta(minutes=n),
                )
            )
    return written
