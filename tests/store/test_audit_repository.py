"""The audit trail in the database: appends in the caller's transaction, serialized, verified."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import typer
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cartnet.cli.db import audit_app
from cartnet.ledger import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    AuditChain,
    AuditEntry,
    AuditProblem,
    AuditRuleError,
    ChainHead,
    ProblemKind,
    Role,
)
from cartnet.store import AuditEntryRow, AuditRepository

repository = AuditRepository()
OPERATOR = Actor("u-042", "Sam Okafor", Role.SITE_OPERATOR)


def test_entries_read_back_exactly_as_written(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """Stored entries equal what append returned: UTC times, floats, reason codes, hashes."""
    with sessions() as session:
        assert repository.entries(session) == written
        assert repository.head(session) == ChainHead(4, written[-1].hash)
        assert repository.verify(session) == []


def test_a_rolled_back_transaction_leaves_no_entry(sessions: sessionmaker[Session]) -> None:
    """Entries appended in a transaction that rolls back vanish with it, head included."""
    with sessions() as session:
        session.begin()
        for n in range(3):
            repository.append(session, OPERATOR, AuditAction.CREATE, "order", f"ORD-{n}")
        assert repository.head(session).sequence == 3
        session.rollback()
    with sessions() as session, session.begin():
        assert repository.count(session) == 0
        assert repository.head(session) == ChainHead(0, GENESIS_HASH)
        entry = repository.append(session, OPERATOR, AuditAction.CREATE, "order", "ORD-9")
    assert entry.sequence == 1 and entry.previous_hash == GENESIS_HASH


def test_an_exception_in_the_callers_transaction_discards_its_entries(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """The entry and the change it records commit together or not at all."""

    def record_then_fail() -> None:
        with sessions() as session, session.begin():
            repository.append(session, OPERATOR, AuditAction.CREATE, "order", "ORD-2")
            raise RuntimeError("the order update failed")

    with pytest.raises(RuntimeError):
        record_then_fail()
    with sessions() as session:
        assert repository.entries(session) == written


def test_a_refused_entry_writes_nothing(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """An update without a reason code, or a clock gone back, is refused before writing."""
    with sessions() as session, session.begin():
        with pytest.raises(AuditRuleError, match="needs a reason code"):
            repository.append(
                session, OPERATOR, AuditAction.UPDATE, "order", "ORD-1", [("line", "L1", "L2")]
            )
        with pytest.raises(AuditRuleError, match="check the clock"):
            repository.append(
                session,
                OPERATOR,
                AuditAction.CREATE,
                "order",
                "ORD-2",
                timestamp=datetime(2020, 1, 1, tzinfo=UTC),
            )
    with sessions() as session:
        assert repository.count(session) == 4
        assert repository.verify(session) == []


def _tampered(sessions: sessionmaker[Session], sql: str) -> list[AuditProblem]:
    """Run ``;``-separated raw SQL in one committed transaction, then verify."""
    with sessions() as session, session.begin():
        for statement in sql.split(";"):
            session.execute(text(statement))
    with sessions() as session:
        return repository.verify(session)


def _kinds(problems: list[AuditProblem]) -> dict[int, set[ProblemKind]]:
    found: dict[int, set[ProblemKind]] = {}
    for problem in problems:
        found.setdefault(problem.sequence, set()).add(problem.kind)
    return found


def _problems(sessions: sessionmaker[Session], sql: str) -> dict[int, set[ProblemKind]]:
    return _kinds(_tampered(sessions, sql))


def test_verify_names_an_entry_edited_in_the_database(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """A raw UPDATE of one field shows as that sequence number, edited."""
    found = _problems(sessions, "UPDATE audit_entries SET actor_name = 'Eve' WHERE sequence = 2")
    assert found == {2: {ProblemKind.EDITED}}


def test_verify_names_an_entry_deleted_in_the_database(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """A raw DELETE in the middle shows as that sequence number, deleted."""
    found = _problems(sessions, "DELETE FROM audit_entries WHERE sequence = 3")
    assert found == {3: {ProblemKind.DELETED}}


def test_verify_sees_the_last_entry_deleted_through_the_stored_head(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """The chain alone cannot see its tail cut off; the head row can."""
    found = _problems(sessions, "DELETE FROM audit_entries WHERE sequence = 4")
    assert found == {4: {ProblemKind.DELETED}}


CONTENT = (
    '"timestamp", actor_id, actor_name, role, action, entity_type, entity_id, changes, '
    "reason_code, reason_text, previous_hash, hash"
)
"""Every column of audit_entries but its id and sequence number."""


def _copy_content(source: int, target: int) -> str:
    return (
        f"UPDATE audit_entries SET ({CONTENT}) = "
        f"(SELECT {CONTENT} FROM audit_entries WHERE sequence = {source}) "
        f"WHERE sequence = {target}"
    )


SWAP_SEQUENCES = (
    "UPDATE audit_entries SET sequence = -2 WHERE sequence = 2;"
    "UPDATE audit_entries SET sequence = 2 WHERE sequence = 3;"
    "UPDATE audit_entries SET sequence = 3 WHERE sequence = -2"
)
SWAP_CONTENTS = (
    f"INSERT INTO audit_entries (sequence, {CONTENT}) "
    f"SELECT -2, {CONTENT} FROM audit_entries WHERE sequence = 2;"
    f"{_copy_content(3, 2)};{_copy_content(-2, 3)};"
    "DELETE FROM audit_entries WHERE sequence = -2"
)


@pytest.mark.parametrize("sql", [SWAP_SEQUENCES, SWAP_CONTENTS], ids=["sequences", "contents"])
def test_verify_names_both_entries_of_a_swapped_pair_reordered(
    sessions: sessionmaker[Session], written: list[AuditEntry], sql: str
) -> None:
    """Two rows swapped (numbers or contents exchanged): both reordered, nothing else."""
    problems = _tampered(sessions, sql)
    assert [(p.sequence, p.kind) for p in problems] == [
        (2, ProblemKind.REORDERED),
        (3, ProblemKind.REORDERED),
    ]
    assert "holds the entry written as sequence 3" in problems[0].detail
    assert "holds the entry written as sequence 2" in problems[1].detail


FF = "f" * 64
TAMPERING = {
    "field edited": (
        "UPDATE audit_entries SET entity_id = 'ORD-2' WHERE sequence = 3",
        {3: {ProblemKind.EDITED}},
    ),
    "hash edited": (
        f"UPDATE audit_entries SET hash = '{FF}' WHERE sequence = 2",
        {2: {ProblemKind.EDITED}},
    ),
    "last hash edited": (
        f"UPDATE audit_entries SET hash = '{FF}' WHERE sequence = 4",
        {4: {ProblemKind.EDITED}},
    ),
    "previous hash edited": (
        f"UPDATE audit_entries SET previous_hash = '{FF}' WHERE sequence = 3",
        {3: {ProblemKind.EDITED, ProblemKind.BROKEN_LINK}},
    ),
    "time moved before the previous entry": (
        "UPDATE audit_entries SET \"timestamp\" = '2026-03-02 08:00:00+00:00' WHERE sequence = 3",
        {3: {ProblemKind.EDITED, ProblemKind.TIME_ORDER}},
    ),
    "time moved after the next entry": (
        "UPDATE audit_entries SET \"timestamp\" = '2026-03-02 10:00:00+00:00' WHERE sequence = 2",
        {2: {ProblemKind.EDITED}},
    ),
    "first entry deleted": (
        "DELETE FROM audit_entries WHERE sequence = 1",
        {1: {ProblemKind.DELETED}},
    ),
    "last two deleted": (
        "DELETE FROM audit_entries WHERE sequence >= 3",
        {3: {ProblemKind.DELETED}, 4: {ProblemKind.DELETED}},
    ),
    "moved into a gap": (
        "UPDATE audit_entries SET sequence = 10 WHERE sequence = 2",
        {2: {ProblemKind.REORDERED}, 10: {ProblemKind.REORDERED}},
    ),
    "three rows rotated": (
        "UPDATE audit_entries SET sequence = -1 WHERE sequence = 1;"
        "UPDATE audit_entries SET sequence = 1 WHERE sequence = 2;"
        "UPDATE audit_entries SET sequence = 2 WHERE sequence = 3;"
        "UPDATE audit_entries SET sequence = 3 WHERE sequence = -1",
        {n: {ProblemKind.REORDERED} for n in (1, 2, 3)},
    ),
    "deleted, later ones renumbered, head set back": (
        "DELETE FROM audit_entries WHERE sequence = 2;"
        "UPDATE audit_entries SET sequence = 2 WHERE sequence = 3;"
        "UPDATE audit_entries SET sequence = 3 WHERE sequence = 4;"
        "UPDATE audit_head SET sequence = 3",
        {
            2: {ProblemKind.DELETED, ProblemKind.REORDERED},
            3: {ProblemKind.REORDERED, ProblemKind.REWRITTEN},
            4: {ProblemKind.REORDERED},
        },
    ),
    "copy inserted beyond the head": (
        f"INSERT INTO audit_entries (sequence, {CONTENT}) "
        f"SELECT 5, {CONTENT} FROM audit_entries WHERE sequence = 4",
        {5: {ProblemKind.INSERTED}},
    ),
    "unreadable row inserted beyond the head": (
        f"INSERT INTO audit_entries (sequence, {CONTENT}) "
        f"SELECT 5, {CONTENT} FROM audit_entries WHERE sequence = 4;"
        "UPDATE audit_entries SET role = 'superuser' WHERE sequence = 5",
        {5: {ProblemKind.INSERTED}},
    ),
    "head set back": (
        "UPDATE audit_head SET sequence = 3, "
        "hash = (SELECT hash FROM audit_entries WHERE sequence = 3)",
        {4: {ProblemKind.INSERTED}},
    ),
}


@pytest.mark.parametrize(("sql", "expected"), TAMPERING.values(), ids=TAMPERING.keys())
def test_verify_names_each_kind_of_tampering(
    sessions: sessionmaker[Session],
    written: list[AuditEntry],
    sql: str,
    expected: dict[int, set[ProblemKind]],
) -> None:
    """Raw SQL edits, deletions, moves and insertions: the right kinds at the right numbers."""
    assert _problems(sessions, sql) == expected


def test_verify_names_a_valid_entry_inserted_beyond_the_head(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """A row with a correct hash and link, written past the head, is still named inserted."""
    forged = AuditChain(after=ChainHead(4, written[-1].hash)).append(
        OPERATOR, AuditAction.CREATE, "order", "ORD-9", timestamp=datetime(2026, 3, 3, tzinfo=UTC)
    )
    with sessions() as session, session.begin():
        session.execute(
            insert(AuditEntryRow).values({**forged.as_dict(), "timestamp": forged.timestamp})
        )
    with sessions() as session:
        problems = repository.verify(session)
    assert [(p.sequence, p.kind) for p in problems] == [(5, ProblemKind.INSERTED)]
    assert "stored beyond the head kept apart (sequence 4)" in problems[0].detail


def test_verify_reports_an_unreadable_row_as_edited(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """A row that no longer parses (unknown role) is named, not a crash or a 'deletion'."""
    found = _problems(sessions, "UPDATE audit_entries SET role = 'superuser' WHERE sequence = 1")
    assert found == {1: {ProblemKind.EDITED}}


GARBAGE = {
    "timestamp not a date": (
        "UPDATE audit_entries SET \"timestamp\" = 'garbage' WHERE sequence = 3",
        {3: {ProblemKind.EDITED}},
        "timestamp 'garbage' is not a date and time",
    ),
    "timestamp a number": (
        'UPDATE audit_entries SET "timestamp" = 12 WHERE sequence = 3',
        {3: {ProblemKind.EDITED}},
        "timestamp 12 is not a date and time",
    ),
    "changes not JSON": (
        "UPDATE audit_entries SET changes = '[1' WHERE sequence = 3",
        {3: {ProblemKind.EDITED}},
        "changes '[1' are not JSON",
    ),
    "sequence not a number": (
        "UPDATE audit_entries SET sequence = 'x' WHERE sequence = 2",
        {0: {ProblemKind.EDITED}, 2: {ProblemKind.DELETED}},
        "its sequence number 'x' was changed",
    ),
    "head not a number": (
        "UPDATE audit_head SET sequence = 'x'",
        {0: {ProblemKind.EDITED}},
        "the head kept apart (table audit_head) holds sequence 'x'",
    ),
}


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""SQLite stores any value in any column; PostgreSQL's column types refuse these values."""


@SQLITE_ONLY
@pytest.mark.parametrize(("sql", "expected", "detail"), GARBAGE.values(), ids=GARBAGE.keys())
def test_verify_names_a_value_of_the_wrong_type_on_sqlite(
    engine: Engine,
    sessions: sessionmaker[Session],
    written: list[AuditEntry],
    sql: str,
    expected: dict[int, set[ProblemKind]],
    detail: str,
) -> None:
    """SQLite stores any value in any column: a row holding one is named, verify goes on."""
    problems = _tampered(sessions, sql)
    assert _kinds(problems) == expected
    assert any(detail in p.detail for p in problems)


@SQLITE_ONLY
def test_audit_verify_names_a_timestamp_that_is_no_date(
    engine: Engine, migrated_url: str, sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """`cartnet audit verify` reports the row (exit 1) instead of failing with a traceback."""
    _tampered(sessions, "UPDATE audit_entries SET \"timestamp\" = 'garbage' WHERE sequence = 3")
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")
    result = CliRunner().invoke(app, ["audit", "verify", "--db", migrated_url])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "sequence 3 (entry 3): edited:" in result.output
    assert "timestamp 'garbage' is not a date and time" in result.output
    with sessions() as session, pytest.raises(ValueError, match="audit entry 3: timestamp"):
        repository.entries(session)


def test_concurrent_appends_from_eight_threads_form_one_gap_free_chain(
    sessions: sessionmaker[Session],
) -> None:
    """8 threads × 5 transactions: sequences 1..40, each chained to the one before."""
    threads, per_thread = 8, 5
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with sessions() as session, session.begin():
                    repository.append(
                        session, OPERATOR, AuditAction.CREATE, "order", f"ORD-{worker}-{n}"
                    )
        except BaseException as error:  # surfaced by the assertion below
            failures.append(error)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    with sessions() as session:
        sequences = session.scalars(
            select(AuditEntryRow.sequence).order_by(AuditEntryRow.sequence)
        ).all()
        assert list(sequences) == list(range(1, threads * per_thread + 1))
        assert repository.verify(session) == []
        ids = {entry.entity_id for entry in repository.entries(session)}
    assert len(ids) == threads * per_thread
