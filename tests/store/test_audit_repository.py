"""The audit trail in the database: appends in the caller's transaction, serialized, verified."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from cartnet.ledger import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    AuditEntry,
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


def _problems(sessions: sessionmaker[Session], sql: str) -> dict[int, set[ProblemKind]]:
    with sessions() as session, session.begin():
        for statement in sql.split(";"):
            session.execute(text(statement))
    with sessions() as session:
        found: dict[int, set[ProblemKind]] = {}
        for problem in repository.verify(session):
            found.setdefault(problem.sequence, set()).add(problem.kind)
        return found


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


def test_verify_names_both_entries_of_a_reordered_pair(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """Swapping two sequence numbers with raw SQL names both of them."""
    found = _problems(
        sessions,
        "UPDATE audit_entries SET sequence = -2 WHERE sequence = 2;"
        "UPDATE audit_entries SET sequence = 2 WHERE sequence = 3;"
        "UPDATE audit_entries SET sequence = 3 WHERE sequence = -2",
    )
    assert set(found) == {2, 3, 4}  # 4 no longer chains to what now stands at 3
    assert ProblemKind.EDITED in found[2] and ProblemKind.EDITED in found[3]


def test_verify_reports_an_unreadable_row_as_edited(
    sessions: sessionmaker[Session], written: list[AuditEntry]
) -> None:
    """A row that no longer parses (unknown role) is named, not a crash or a 'deletion'."""
    found = _problems(sessions, "UPDATE audit_entries SET role = 'superuser' WHERE sequence = 1")
    assert found == {1: {ProblemKind.EDITED}}


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
