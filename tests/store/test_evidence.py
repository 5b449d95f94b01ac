"""Every column of every table is evidence, or declared not to be with a reason."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table

from cartnet.store import Base
from cartnet.store.evidence import GXP_TABLES, NOT_GXP, undeclared

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
