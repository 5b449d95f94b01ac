"""The audit trail of one ledger: an append-only hash chain, verified when loaded.

Each entry chains to the hash of the one before it (:mod:`cartnet.ledger.entry` says
what is hashed); :mod:`cartnet.ledger.verification` names what was tampered with.
Entries are kept at least :data:`RETENTION_YEARS` (:func:`retained_until`).

>>> from datetime import UTC, datetime
>>> from cartnet.ledger.roles import Actor, Role
>>> times = iter([datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)])
>>> chain = AuditChain(clock=lambda: next(times))
>>> coordinator = Actor("u-001", "Ana Lopez", Role.CENTER_COORDINATOR)
>>> first = chain.append(coordinator, AuditAction.CREATE, "order", "ORD-1",
...                      [("apheresis_date", None, "2026-03-09")])
>>> second = chain.append(coordinator, AuditAction.UPDATE, "order", "ORD-1",
...                       [("apheresis_date", "2026-03-09", "2026-03-10")],
...                       reason_code=ReasonCode.PATIENT_REQUEST)
>>> second.previous_hash == first.hash, verify(chain.entries)
(True, [])
>>> import dataclasses
>>> edited = dataclasses.replace(first, actor_name="Someone Else")
>>> for problem in verify([edited, second]):
...     print(problem)
sequence 1 (entry 1): edited: its content no longer matches its hash; a field was changed \
after it was written
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TypeAlias

from cartnet.ledger.canonical import GENESIS_HASH
from cartnet.ledger.entry import (
    AuditAction,
    AuditEntry,
    AuditRuleError,
    ChainHead,
    FieldChange,
    FieldValue,
    reason_problem,
)
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Actor
from cartnet.ledger.verification import AuditChainError, verify

RETENTION_YEARS = 30
"""Keep audit entries at least this long (EU ATMP Regulation 1394/2007 art. 15)."""

__all__ = ["RETENTION_YEARS", "AuditChain", "Change", "retained_until"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


Change: TypeAlias = FieldChange | tuple[str, FieldValue, FieldValue]


class AuditChain:
    """The audit trail of one ledger, in memory: verified when loaded, appended to only.

    The store keeps the entries (one row each, a unique sequence number) and hands them
    back in sequence order; ``clock`` is the time source, UTC ``now`` by default.
    Loading entries that do not verify raises :class:`AuditChainError`. A long chain
    need not be loaded whole: pass the entries after a verified checkpoint as ``after``
    (an empty window with ``after`` set continues from the checkpoint).
    """

    def __init__(
        self,
        entries: Iterable[AuditEntry] = (),
        *,
        after: ChainHead | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        loaded = tuple(entries)
        problems = verify(loaded, after=after)
        if problems:
            raise AuditChainError(problems)
        self._entries = list(loaded)
        self._start = after if after is not None else ChainHead(0, GENESIS_HASH)
        self._clock = clock

    @property
    def entries(self) -> tuple[AuditEntry, ...]:
        """The entries held (all, or those after the checkpoint), oldest first."""
        return tuple(self._entries)

    @property
    def head(self) -> ChainHead:
        """Last sequence number and hash (the checkpoint, or 0 and genesis, when empty)."""
        if not self._entries:
            return self._start
        last = self._entries[-1]
        return ChainHead(last.sequence, last.hash)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[AuditEntry]:
        return iter(tuple(self._entries))

    def append(
        self,
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
        """Write the next entry, chained to the last one, and return it.

        Refuses (:class:`AuditRuleError`) an entry that breaks the reason rules of
        :func:`reason_problem`, and a timestamp before the last entry's (a clock that
        went back would make the trail's order unprovable).
        """
        field_changes = tuple(c if isinstance(c, FieldChange) else FieldChange(*c) for c in changes)
        problem = reason_problem(action, field_changes, reason_code, reason_text)
        if problem is not None:
            raise AuditRuleError(f"{action} of {entity_type} {entity_id}: {problem}")
        moment = self._clock() if timestamp is None else timestamp
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"audit timestamp {moment.isoformat()} has no time zone")
        moment = moment.astimezone(UTC)
        head = self.head
        if self._entries and moment < self._entries[-1].timestamp:
            raise AuditRuleError(
                f"timestamp {moment.isoformat()} is before the last entry's "
                f"({self._entries[-1].timestamp.isoformat()}); check the clock"
            )
        draft = AuditEntry(
            sequence=head.sequence + 1,
            timestamp=moment,
            actor_id=actor.id,
            actor_name=actor.name,
            role=actor.role,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            changes=field_changes,
            reason_code=reason_code,
            reason_text=reason_text,
            previous_hash=head.hash,
            hash=GENESIS_HASH,  # placeholder until the content is hashed
        )
        entry = dataclasses.replace(draft, hash=draft.computed_hash())
        self._entries.append(entry)
        return entry


def retained_until(moment: datetime) -> datetime:
    """The earliest time a record made at ``moment`` may be destroyed: 30 years on.

    29 February moves to 1 March when the later year has none.

    >>> retained_until(datetime(2028, 2, 29, 12, tzinfo=UTC)).date()
    datetime.date(2058, 3, 1)
    """
    try:
        return moment.replace(year=moment.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + RETENTION_YEARS, month=3, day=1)
