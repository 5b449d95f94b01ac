"""Every column of every table is evidence, or declared not to be with a reason."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, select

from cartnet.ledger import Actor, AuditAction, Role
from cartnet.store import AuditRepository, Base, make_engine, make_session_factory, upgrade
from cartnet.store.evidence import GXP_TABLES, NOT_GXP, undeclared
from cartnet.store.tables import TrailCoverageRow

SYSTEM = Actor("u-000", "cartnet", Role.ADMIN)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "background" / "orchestration.md"


def test_every_table_and_column_is_declared() -> None:
    assert undeclared(Base.metadata) == []


def test_a_new_column_or_table_declared_nowhere_is_named() -> None:
    copy = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(copy)
    copy.tables["custody_events"].append_column(Column("witness", String(64)))
    copy.tables["signatures"].append_column(Column("device", String(64)))
    Table("notes", copy, Column("id", String(64), primary_key=True))
    assert undeclared(copy) == [
        "custody_events.witness: neither evidence nor not evidence",
        "notes: neither a GxP table nor listed as not GxP",
        "signatures.device: neither evidence nor not evidence",
    ]


def test_declarations_are_consistent() -> None:
    """No column is both evidence and not; each reason says something."""
    for table in GXP_TABLES:
        kinds = [set(table.key), set(table.evidence), set(table.not_evidence), set(table.digests)]
        for i, a in enumerate(kinds):
            for b in kinds[i + 1 :]:
                assert not a & b, (table.table, a & b)
        assert all(len(reason) > 20 for reason in table.not_evidence.values())
    assert all(len(reason) > 20 for reason in NOT_GXP.values())


def test_the_docs_list_what_is_not_evidence() -> None:
    """The background page names each column and table that is not evidence."""
    text = DOCS.read_text(encoding="utf-8")
    for table in GXP_TABLES:
        for column in table.not_evidence:
            assert f"`{table.table}.{column}`" in text, f"{table.table}.{column}"
    for name in NOT_GXP:
        if name in Base.metadata.tables:
            assert f"`{name}`" in text, name


def test_the_coverage_mark_is_the_head_when_migrated_and_zero_when_new(database_url: str) -> None:
    """A database written before 0007 keeps where full coverage began; a new one starts at 0."""
    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            for n in range(3):
                AuditRepository().append(
                    session, SYSTEM, AuditAction.CREATE, "batch_record", f"B-{n}", [("n", None, n)]
                )
        upgrade(database_url)
        with engine.connect() as connection:
            assert connection.execute(select(TrailCoverageRow.since_sequence)).all() == [(3,)]
        with make_session_factory(engine)() as session:
            assert AuditRepository().verify(session) == [], "the widened trail is intact"
    finally:
        engine.dispose()


def test_a_new_database_is_fully_covered(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(select(TrailCoverageRow.since_sequence)).all() == [(0,)]
    finally:
        engine.dispose()
