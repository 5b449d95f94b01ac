"""Shared fixtures: the small example network of the docs and the packaged reference."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from cartnet.network import Network, load_network, open_network
from cartnet.service import security
from cartnet.store import upgrade

POSTGRES_URL = os.environ.get("CARTNET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]
"""Databases the store, service and API tests run on: SQLite always, PostgreSQL when
``CARTNET_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it)."""

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "two-sites.yaml"


CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
"""argon2id at its cheapest: in-process tests make hundreds of accounts, and the production
profile (19 MiB, two passes) would cost seconds of the suite without testing anything more.
A test that needs the real cost is marked ``real_password_cost``; servers started as
subprocesses always hash with the production profile."""


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_password_cost") is None:
        monkeypatch.setattr(security, "_hasher", CHEAP_HASHER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs, so ``-m "not browser"`` or ``-m "not postgres"`` can leave it
    out on a machine without Chromium or PostgreSQL (CI runs everything)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgresql" in params.values():
            item.add_marker(pytest.mark.postgres)
        if {"page", "browser", "context"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def example() -> Network:
    return load_network(EXAMPLE)


@pytest.fixture(scope="session")
def kymriah() -> Network:
    return open_network("kymriah-2020")


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
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema (dropped after)."""
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
