"""The Alembic migrations: they build the schema the tables describe, and rerun safely."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from cartnet.ledger import GENESIS_HASH
from cartnet.store import Base, make_engine, upgrade
from cartnet.store.database import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgrade_creates_the_tables_and_the_chain_head(database_url: str) -> None:
    """A new database gets every table, the latest version, and an empty chain's head."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {
            "orders", "audit_entries", "audit_head", "custody_events", "slot_usage", "counters",
            "order_steps", "signatures", "collections", "qc_results", "shipments",
            "temperature_logs", "order_exceptions", "users", "tokens", "idempotency_keys", "quotas",
        } <= tables  # fmt: skip
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (HEAD,)
            ]
            head = connection.execute(text("SELECT id, sequence, hash FROM audit_head")).all()
        assert head == [(1, 0, GENESIS_HASH)]
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    """Running the migrations on a migrated database keeps one head row and one version."""
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_head")).scalar() == 1
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(HEAD,)]
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_table_classes(migrated_url: str) -> None:
    """Autogenerate finds nothing to add: the migration and tables.py agree."""
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_each_migration_steps_up_and_down(database_url: str) -> None:
    """0001 → head → 0001 → head: every downgrade undoes its upgrade, on both databases."""
    from alembic import command

    upgrade(database_url, "0001")
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        assert "users" not in set(inspect(engine).get_table_names())
        assert "pseudonym" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    finally:
        engine.dispose()
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert "users" in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0008_adds_the_quotas_table_with_its_rules(database_url: str) -> None:
    """0007 → 0008 adds ``quotas``: a quota holds slots or a share, never both, and its
    period cannot end before it starts; 0008 → 0007 removes the table again."""
    from datetime import UTC, date, datetime

    from alembic import command
    from sqlalchemy.exc import IntegrityError

    upgrade(database_url, "0007")
    engine = make_engine(database_url)
    try:
        assert "quotas" not in set(inspect(engine).get_table_names())
        upgrade(database_url, "0008")
        row = {
            "id": "quo_1", "site": "leipzig", "holder_kind": "center", "holder": "charite-berlin",
            "slots": 4, "share": None, "period_start": date(2027, 1, 1),
            "period_end": date(2027, 1, 31), "release_days": 14,
            "created_at": datetime(2026, 12, 5, tzinfo=UTC), "created_by": "u-1",
        }  # fmt: skip
        insert = text(
            "INSERT INTO quotas (id, site, holder_kind, holder, slots, share, period_start, "
            "period_end, release_days, created_at, created_by) VALUES (:id, :site, "
            ":holder_kind, :holder, :slots, :share, :period_start, :period_end, "
            ":release_days, :created_at, :created_by)"
        )
        with engine.begin() as connection:
            connection.execute(insert, row)
        for bad in (
            {"id": "quo_2", "share": 0.5},
            {"id": "quo_3", "slots": None},
            {"id": "quo_4", "period_end": date(2026, 12, 31)},
            {"id": "quo_5", "holder_kind": "country"},
        ):
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(insert, {**row, **bad})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id FROM quotas")).scalars().all() == ["quo_1"]
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
        assert "quotas" not in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0009_adds_signed_plan_applications_after_the_quotas(database_url: str) -> None:
    """0008 → 0009 adds ``plan_applications`` (each bound to its job) on top of the quotas;
    0009 → 0008 removes it and leaves the quotas."""
    from alembic import command

    upgrade(database_url, "0008")
    engine = make_engine(database_url)
    try:
        assert "plan_applications" not in set(inspect(engine).get_table_names())
        upgrade(database_url, "0009")
        tables = set(inspect(engine).get_table_names())
        assert {"plan_applications", "quotas"} <= tables
        (foreign,) = inspect(engine).get_foreign_keys("plan_applications")
        assert foreign["referred_table"] == "jobs" and foreign["constrained_columns"] == ["job_id"]
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
        tables = set(inspect(engine).get_table_names())
        assert "plan_applications" not in tables and "quotas" in tables
    finally:
        engine.dispose()
