"""The audit trail in the database: append inside the caller's transaction, verify all.

:meth:`AuditRepository.append` writes the next :class:`~cartnet.ledger.audit.AuditEntry`
in the session it is given and does not commit: the entry and the change it records
commit together or not at all. Concurrent appends are serialized on the one-row
``audit_head`` table: PostgreSQL locks the row (``SELECT ... FOR UPDATE``) until the
transaction ends; SQLite's ``BEGIN IMMEDIATE`` (:mod:`cartnet.store.database`) already
gives the transaction the database's write lock. The head also lets
:meth:`AuditRepository.verify` see the chain's last entries deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartnet.ledger.audit import (
    AuditAction,
    AuditChain,
    AuditEntry,
    AuditProblem,
    AuditRuleError,
    ChainHead,
    ProblemKind,
    ReasonCode,
    verify,
)
from cartnet.ledger.audit import Change as Change
from cartnet.ledger.roles import Actor
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


def _entry(row: AuditEntryRow) -> AuditEntry:
    """The entry a row holds; ``ValueError`` (naming the field) if it cannot be one."""
    return AuditEntry.from_dict(
        {
            "sequence": row.sequence,
            "timestamp": row.timestamp.isoformat(),
            "actor_id": row.actor_id,
            "actor_name": row.actor_name,
            "role": row.role,
            "action": row.action,
            "entity_type": row.entity_type,
            "entity_id": row.entity_id,
            "changes": row.changes,
            "reason_code": row.reason_code,
            "reason_text": row.reason_text,
            "previous_hash": row.previous_hash,
            "hash": row.hash,
        }
    )


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
    ) -> AuditEntry:
        """Add the next entry to the session's transaction and return it (not committed).

        Refuses (:class:`~cartnet.ledger.audit.AuditRuleError`) what
        :meth:`AuditChain.append <cartnet.ledger.audit.AuditChain.append>` refuses,
        including a timestamp before the last stored entry's.
        """
        head_row = session.scalars(
            select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).with_for_update()
        ).one_or_none()
        if head_row is None:
            raise ChainHeadMissingError()
        head = ChainHead(head_row.sequence, head_row.hash)
        chain = AuditChain(after=head)
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
        session.flush()
        return entry

    def count(self, session: Session) -> int:
        """How many entries are stored."""
        return session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0

    def entries(self, session: Session) -> list[AuditEntry]:
        """Every entry in sequence order; ``ValueError`` if a row cannot be read as one."""
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.sequence))
        return [_entry(row) for row in rows]

    def verify(self, session: Session) -> list[AuditProblem]:
        """Every problem of the stored chain, by sequence number; empty when it is intact.

        Rows are read in sequence order and checked by :func:`cartnet.ledger.audit.verify`
        against the stored head. A row that no longer reads as an entry (an unknown role,
        a malformed hash, ...) is reported as edited, not as missing.
        """
        head = self.head(session)
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.sequence)).all()
        entries: list[AuditEntry] = []
        unreadable: list[AuditProblem] = []
        for position, row in enumerate(rows):
            try:
                entries.append(_entry(row))
            except ValueError as err:
                unreadable.append(
                    AuditProblem(
                        row.sequence,
                        position,
                        ProblemKind.EDITED,
                        f"the stored row is not a valid entry any more ({err})",
                    )
                )
        skipped = {p.sequence for p in unreadable}
        problems = [
            p
            for p in verify(entries, head=head)
            if not (p.kind is ProblemKind.DELETED and p.sequence in skipped)
        ]
        kinds = list(ProblemKind)
        return sorted([*problems, *unreadable], key=lambda p: (p.sequence, kinds.index(p.kind)))
