"""The audit trail in the database: append inside the caller's transaction, verify all.

:meth:`AuditRepository.append` writes the next :class:`~cartnet.ledger.entry.AuditEntry`
in the session it is given and does not commit: the entry and the change it records
commit together or not at all. Concurrent appends are serialized on the one-row
``audit_head`` table: PostgreSQL locks the row (``SELECT ... FOR UPDATE``) until the
transaction ends; SQLite's ``BEGIN IMMEDIATE`` (:mod:`cartnet.store.database`) already
gives the transaction the database's write lock. The head also lets
:meth:`AuditRepository.verify` see the chain's last entries deleted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.orm import Session

from cartnet.ledger.chain import AuditChain
from cartnet.ledger.chain import Change as Change
from cartnet.ledger.entry import AuditAction, AuditEntry, AuditRuleError, ChainHead
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Actor
from cartnet.ledger.verification import AuditProblem, ProblemKind, verify
from cartnet.store.tables import AuditEntryRow, AuditHeadRow

HEAD_ID = 1


class ChainHeadMissingError(LookupError):
    """The ``audit_head`` row is missing: the database was not migrated (or was damaged)."""

    def __init__(self) -> None:
        super().__init__(
            "the audit trail has no head row (table audit_head); run `cartnet db upgrade` "
            "on a new database, or restore the row from a backup"
        )


def _row(entry: AuditEntry) -> AuditEntryRow:
    return AuditEntryRow(
        sequence=entry.sequence,
        timestamp=entry.timestamp,
        actor_id=entry.actor_id,
        actor_name=entry.actor_name,
        role=entry.role.value,
        action=entry.action.value,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        changes=[[c.field, c.old, c.new] for c in entry.changes],
        reason_code=None if entry.reason_code is None else entry.reason_code.value,
        reason_text=entry.reason_text,
        previous_hash=entry.previous_hash,
        hash=entry.hash,
    )


_STORED_COLUMNS = (
    AuditEntryRow.sequence,
    # Raw: a value that is no date (SQLite keeps any text) must not stop the reading.
    type_coerce(AuditEntryRow.timestamp, Text()).label("timestamp"),
    AuditEntryRow.actor_id,
    AuditEntryRow.actor_name,
    AuditEntryRow.role,
    AuditEntryRow.action,
    AuditEntryRow.entity_type,
    AuditEntryRow.entity_id,
    # Raw: text that is no JSON (SQLite) must not stop the reading either.
    type_coerce(AuditEntryRow.changes, Text()).label("changes"),
    AuditEntryRow.reason_code,
    AuditEntryRow.reason_text,
    AuditEntryRow.previous_hash,
    AuditEntryRow.hash,
)
"""The columns of ``audit_entries`` as stored, so one damaged row cannot stop a read."""


def _stored_rows(session: Session) -> list[dict[str, Any]]:
    """Every row of ``audit_entries`` in sequence order, timestamps and changes unparsed."""
    query = select(*_STORED_COLUMNS).order_by(AuditEntryRow.sequence, AuditEntryRow.id)
    return [dict(row) for row in session.execute(query).mappings()]


def _entry(row: Mapping[str, Any], dialect: str) -> AuditEntry:
    """The entry a stored row holds; ``ValueError`` (naming the field) if it cannot be one.

    The timestamp and changes come as the driver gives them: text on SQLite, a datetime
    and a list on PostgreSQL. They are parsed here, so a value written into the table by
    hand is reported against its row instead of failing the whole read.
    """
    where = f"audit entry {row['sequence']}"
    stamp = row["timestamp"]
    try:
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    except ValueError:
        moment = None
    if not isinstance(moment, datetime):
        raise ValueError(f"{where}: timestamp {stamp!r} is not a date and time")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    changes = row["changes"]
    if dialect == "sqlite" and isinstance(changes, str):
        try:
            changes = json.loads(changes)
        except ValueError:
            raise ValueError(f"{where}: changes {changes!r} are not JSON") from None
    return AuditEntry.from_dict({**row, "timestamp": moment.isoformat(), "changes": changes})


class AuditRepository:
    """Reads and appends the audit trail; holds no state, every call takes a session."""

    def head(self, session: Session, *, lock: bool = False) -> ChainHead:
        """The stored head; ``lock`` holds its row until the transaction ends (PostgreSQL)."""
        query = select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise ChainHeadMissingError()
        return ChainHead(row.sequence, row.hash)

    def append(
        self,
        session: Session,
        actor: Actor,
        action: AuditAction,
        entity_type: str,
        entity_id: str,
        changes: Iterable[Change] = (),
        *,
        reason_code: ReasonCode | None = None,
        reason_text: str | None = None,
        timestamp: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> AuditEntry:
        """Add the next entry to the session's transaction and return it (not committed).

        Refuses (:class:`~cartnet.ledger.entry.AuditRuleError`) what
        :meth:`AuditChain.append <cartnet.ledger.chain.AuditChain.append>` refuses,
        including a timestamp before the last stored entry's. Without ``timestamp`` the
        time is read from ``clock`` (UTC now) once the head is locked, so concurrent
        writers stamp their entries in the order they append them.
        """
        head_row = session.scalars(
            select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).with_for_update()
        ).one_or_none()
        if head_row is None:
            raise ChainHeadMissingError()
        head = ChainHead(head_row.sequence, head_row.hash)
        chain = AuditChain(after=head) if clock is None else AuditChain(after=head, clock=clock)
        entry = chain.append(
            actor,
            action,
            entity_type,
            entity_id,
            changes,
            reason_code=reason_code,
            reason_text=reason_text,
            timestamp=timestamp,
        )
        if head.sequence > 0:
            last = head_row.timestamp
            if last is None:  # a head written before the column existed
                last = session.scalar(
                    select(AuditEntryRow.timestamp).where(AuditEntryRow.sequence == head.sequence)
                )
            if last is not None and entry.timestamp < last:
                raise AuditRuleError(
                    f"timestamp {entry.timestamp.isoformat()} is before the last entry's "
                    f"({last.isoformat()}); check the clock"
                )
        session.add(_row(entry))
        head_row.sequence = entry.sequence
        head_row.hash = entry.hash
        head_row.timestamp = entry.timestamp
        session.flush()
        return entry

    def count(self, session: Session) -> int:
        """How many entries are stored."""
        return session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0

    def entries(self, session: Session) -> list[AuditEntry]:
        """Every entry in sequence order; ``ValueError`` if a row cannot be read as one."""
        dialect = session.get_bind().dialect.name
        return [_entry(row, dialect) for row in _stored_rows(session)]

    def verify(self, session: Session) -> list[AuditProblem]:
        """Every problem of the stored chain, by sequence number; empty when it is intact.

        Rows are read in sequence order and checked by :func:`cartnet.ledger.verification.verify`
        against the stored head. A row that no longer reads as an entry (an unknown role,
        a malformed hash, a timestamp that is no date, ...) is reported as edited, not as
        missing, or as inserted when it lies beyond the head; the others are verified.
        """
        head = self.head(session)
        dialect = session.get_bind().dialect.name
        entries: list[AuditEntry] = []
        unreadable: list[AuditProblem] = []
        if isinstance(head.sequence, bool) or not isinstance(head.sequence, int):
            unreadable.append(
                AuditProblem(
                    0,
                    None,
                    ProblemKind.EDITED,
                    f"the head kept apart (table audit_head) holds sequence {head.sequence!r}, "
                    "not a whole number; the chain was checked without it",
                )
            )
            checked_head = None
        else:
            checked_head = head
        rows: list[int] = []  # the row position of each entry, as problems give positions
        for position, row in enumerate(_stored_rows(session)):
            try:
                entries.append(_entry(row, dialect))
                rows.append(position)
            except ValueError as err:
                unreadable.append(_unreadable(row["sequence"], position, checked_head, err))
        skipped = {p.sequence for p in unreadable}
        problems = [
            p if p.position is None else dataclasses.replace(p, position=rows[p.position])
            for p in verify(entries, head=checked_head)
            if not (p.kind is ProblemKind.DELETED and p.sequence in skipped)
        ]
        kinds = list(ProblemKind)
        return sorted([*problems, *unreadable], key=lambda p: (p.sequence, kinds.index(p.kind)))


def _unreadable(
    sequence: object, position: int, head: ChainHead | None, err: ValueError
) -> AuditProblem:
    """The problem of a row that is no entry; a sequence that is no number is shown as 0."""
    detail = f"the stored row is not a valid entry any more ({err})"
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        return AuditProblem(
            0,
            position,
            ProblemKind.EDITED,
            f"its sequence number {sequence!r} was changed; {detail}",
        )
    if head is not None and sequence > head.sequence:
        return AuditProblem(
            sequence,
            position,
            ProblemKind.INSERTED,
            f"stored beyond the head kept apart (sequence {head.sequence}); it was added "
            f"outside the application, or the head was set back; {detail}",
        )
    return AuditProblem(sequence, position, ProblemKind.EDITED, detail)
