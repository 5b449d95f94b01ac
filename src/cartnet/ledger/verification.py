"""Verifying an audit chain: every entry edited, deleted, duplicated, moved or inserted.

The first entry (sequence 1) chains to :data:`~cartnet.ledger.canonical.GENESIS_HASH`
(64 zeros), every later one to the hash of the entry before it. :func:`verify`
recomputes the chain and names each entry that was edited, deleted, duplicated or moved
(also when its sequence number was changed, as a swap of two rows in a database does).
The chain alone cannot see its *last* entries deleted, nor a chain rewritten from some
point on with fresh hashes: for that, keep a :class:`~cartnet.ledger.entry.ChainHead`
elsewhere (a signature, a daily export) and pass it to :func:`verify`, which then also
names entries stored beyond it (inserted).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from cartnet.ledger.canonical import GENESIS_HASH
from cartnet.ledger.entry import AuditEntry, ChainHead, reason_problem
from cartnet.ledger.written import written_sequences

__all__ = ["AuditChainError", "AuditProblem", "ProblemKind", "verify"]


class ProblemKind(StrEnum):
    """What :func:`verify` found wrong at one sequence number.

    ``reordered`` covers entries stored out of order and entries whose sequence number
    was changed (the detail names the number each was written with); ``inserted``
    covers entries stored beyond the head kept apart.
    """

    EDITED = "edited"
    BROKEN_LINK = "broken link"
    DELETED = "deleted"
    INSERTED = "inserted"
    DUPLICATED = "duplicated"
    REORDERED = "reordered"
    TIME_ORDER = "time order"
    REWRITTEN = "rewritten"
    RULE = "rule"


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One finding of :func:`verify`: which sequence number, where in the list, and what.

    ``position`` is the 0-based index of the entry in the list that was verified, or
    ``None`` when the entry is not there (deleted).
    """

    sequence: int
    position: int | None
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        where = "" if self.position is None else f" (entry {self.position + 1})"
        return f"sequence {self.sequence}{where}: {self.kind}: {self.detail}"


class AuditChainError(ValueError):
    """Stored entries that do not verify; the problems say which and why."""

    def __init__(self, problems: Sequence[AuditProblem]) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"audit chain does not verify: {listed}{more}")


def verify(
    entries: Sequence[AuditEntry],
    *,
    head: ChainHead | None = None,
    after: ChainHead | None = None,
) -> list[AuditProblem]:
    """Every problem of ``entries`` (in stored order), by sequence number; empty when clean.

    Detects: an entry whose content no longer matches its hash (edited); an entry that
    does not chain to the one before it (rewritten with a recomputed hash, or its
    predecessor was); missing sequence numbers (deleted); a sequence number twice; entries
    out of sequence order, or stored under another entry's sequence number (reordered);
    time going backwards; entries that break the reason rules of :func:`reason_problem`.
    With ``head`` (recorded elsewhere) it also detects deleted last entries, a chain
    rewritten with fresh hashes up to the head, and entries stored beyond it (inserted).

    A store that reads entries back by sequence number turns a swap of two entries into
    two changed sequence numbers. Such an entry's hash still fits its content with the
    number it was written with, so it is reported as moved (naming both numbers), and the
    chain is checked in written order: one swap gives two problems, not a cascade.

    ``after`` verifies a window of a long chain: the entries that follow a checkpoint
    (a sequence number and hash verified before), instead of the whole chain from 1.
    """
    start = after if after is not None else ChainHead(0, GENESIS_HASH)
    written = written_sequences(entries, start)
    placement = _place(entries, written, head)
    problems = [*placement.problems, *_out_of_order(entries, placement.in_place)]
    problems += _duplicates(entries, placement.counted, start.sequence)
    problems += _chain_problems(entries, written, placement.chain, start, head, after is None)
    kinds = list(ProblemKind)
    problems.sort(key=lambda p: (p.sequence, kinds.index(p.kind)))
    return problems


class _Placement(NamedTuple):
    """Where the entries stand against where they were written, and what that shows.

    ``chain`` maps each sequence number as written (the stored one for an edited entry)
    to the position of the entry that stands for it; ``in_place`` lists the entries not
    moved, whose stored order must follow their numbers; ``counted`` those whose stored
    numbers must be unique. Inserted entries and copies stay out of the chain, so they
    cause no follow-on problems.
    """

    problems: list[AuditProblem]
    chain: dict[int, int]
    in_place: list[int]
    counted: list[int]


def _place(
    entries: Sequence[AuditEntry], written: Sequence[int | None], head: ChainHead | None
) -> _Placement:
    """Name each entry edited, moved, copied or inserted, and place the others in the chain."""
    placement = _Placement([], {}, [], [])
    owners = _owners(entries, written)
    stored = {entry.sequence for entry in entries}
    vouched = {
        entry.previous_hash: f"sequence {origin} chains to"
        for entry, origin in zip(entries, written, strict=True)
        if origin is not None
    }
    if head is not None:
        vouched.setdefault(head.hash, "the head kept apart holds")
    for position, entry in enumerate(entries):
        origin = written[position]
        moved_from: int | None = None
        finding: tuple[ProblemKind, str] | None = None
        if origin is None:
            witness = vouched.get(entry.computed_hash())
            finding = (
                ProblemKind.EDITED,
                "its content no longer matches its hash; a field was changed after it was written"
                if witness is None
                else f"its hash was changed after it was written; its content still hashes "
                f"to what {witness}",
            )
        elif origin != entry.sequence and owners[origin] != position:
            finding = (ProblemKind.DUPLICATED, f"a copy of the entry written as sequence {origin}")
        elif origin != entry.sequence:
            moved_from = origin
            finding = (
                ProblemKind.REORDERED,
                f"holds the entry written as sequence {origin}; its sequence number was "
                "changed, moving entries out of their order",
            )
        if (
            head is not None
            and entry.sequence > head.sequence
            and (moved_from is None or moved_from > head.sequence)
        ):
            detail = "" if finding is None else f"; {finding[1]}"
            placement.problems.append(
                AuditProblem(
                    entry.sequence,
                    position,
                    ProblemKind.INSERTED,
                    f"stored beyond the head kept apart (sequence {head.sequence}); it was "
                    f"added outside the application, or the head was set back{detail}",
                )
            )
            continue
        placement.counted.append(position)
        if finding is not None:
            placement.problems.append(AuditProblem(entry.sequence, position, *finding))
            if finding[0] is ProblemKind.DUPLICATED:
                continue
        if moved_from is None:
            placement.in_place.append(position)
        elif moved_from not in stored:
            placement.problems.append(
                AuditProblem(
                    moved_from,
                    None,
                    ProblemKind.REORDERED,
                    f"its entry is stored as sequence {entry.sequence}; its sequence number "
                    "was changed",
                )
            )
        rule = reason_problem(entry.action, entry.changes, entry.reason_code, entry.reason_text)
        if rule is not None:
            placement.problems.append(
                AuditProblem(entry.sequence, position, ProblemKind.RULE, rule)
            )
        key = entry.sequence if origin is None else origin
        held = placement.chain.get(key)
        if held is None or (written[held] is None and origin is not None):
            placement.chain[key] = position
    return placement


def _owners(entries: Sequence[AuditEntry], written: Sequence[int | None]) -> dict[int, int]:
    """For each sequence number as written, the entry that holds it; any other is a copy.

    The entry still stored under that number wins, else the first one.
    """
    owners: dict[int, int] = {}
    for position, origin in enumerate(written):
        if origin is None:
            continue
        held = owners.get(origin)
        if held is None or entries[position].sequence == origin != entries[held].sequence:
            owners[origin] = position
    return owners


def _out_of_order(entries: Sequence[AuditEntry], in_place: Sequence[int]) -> list[AuditProblem]:
    """Entries stored after a higher sequence number (moved entries are named apart)."""
    problems: list[AuditProblem] = []
    for before, position in itertools.pairwise(in_place):
        if entries[position].sequence < entries[before].sequence:
            problems.append(
                AuditProblem(
                    entries[position].sequence,
                    position,
                    ProblemKind.REORDERED,
                    f"stored after sequence {entries[before].sequence}; entries were "
                    "moved out of their order",
                )
            )
    return problems


def _duplicates(
    entries: Sequence[AuditEntry], counted: Sequence[int], base: int
) -> list[AuditProblem]:
    """Sequence numbers stored twice, or at or before the checkpoint of a window."""
    counts = Counter(entries[position].sequence for position in counted)
    first_position: dict[int, int] = {}
    for position in counted:
        first_position.setdefault(entries[position].sequence, position)
    problems: list[AuditProblem] = []
    for sequence, count in counts.items():
        if sequence <= base:
            detail = f"the window starts after the checkpoint at sequence {base}"
        elif count > 1:
            detail = f"{count} entries carry this sequence number"
        else:
            continue
        problems.append(
            AuditProblem(sequence, first_position[sequence], ProblemKind.DUPLICATED, detail)
        )
    return problems


def _chain_problems(
    entries: Sequence[AuditEntry],
    written: Sequence[int | None],
    chain: Mapping[int, int],
    start: ChainHead,
    head: ChainHead | None,
    from_genesis: bool,
) -> list[AuditProblem]:
    """Missing sequence numbers, broken links, time going back and a head that differs.

    Checked in written order, so entries that were only moved break nothing here; time
    is compared with the last entry not edited, so one edited time names one entry.
    """
    base, base_hash = start
    problems: list[AuditProblem] = []
    present = sorted(s for s in chain if s > base)
    last = present[-1] if present else base
    end = head.sequence if head is not None and head.sequence > last else last
    for sequence in range(base + 1, end + 1):
        if sequence not in chain:
            index = bisect.bisect_left(present, sequence)
            lower = present[index - 1] if index > 0 else base
            if index == len(present):
                span = f"the chain ends at {lower} but its head, kept apart, is {end}"
            elif lower == 0:
                span = f"the chain starts at {present[index]}"
            else:
                span = f"the chain goes from {lower} to {present[index]}"
            problems.append(AuditProblem(sequence, None, ProblemKind.DELETED, f"no entry; {span}"))
    reference: tuple[int, AuditEntry] | None = None  # the last entry not edited
    for sequence in present:
        position = chain[sequence]
        entry = entries[position]
        if reference is not None and entry.timestamp < reference[1].timestamp:
            problems.append(
                AuditProblem(
                    entry.sequence,
                    position,
                    ProblemKind.TIME_ORDER,
                    f"written at {entry.timestamp.isoformat()}, before sequence "
                    f"{reference[0]} ({reference[1].timestamp.isoformat()})",
                )
            )
        if written[position] is not None:  # an edited time says nothing of the next entry
            reference = (sequence, entry)
        if sequence == base + 1:
            if entry.previous_hash != base_hash:
                anchor = (
                    "the genesis hash (64 zeros)"
                    if from_genesis
                    else f"the checkpoint's hash (sequence {base})"
                )
                problems.append(
                    AuditProblem(
                        entry.sequence,
                        position,
                        ProblemKind.BROKEN_LINK,
                        f"the first entry must chain to {anchor}",
                    )
                )
            continue
        before = chain.get(sequence - 1)
        if before is None:
            continue  # reported as deleted
        predecessor = entries[before]
        if entry.previous_hash != predecessor.hash and not (
            written[before] is None and entry.previous_hash == predecessor.computed_hash()
        ):  # an edited hash of the predecessor is its own problem, not this entry's
            problems.append(
                AuditProblem(
                    entry.sequence,
                    position,
                    ProblemKind.BROKEN_LINK,
                    f"its previous hash is not the hash of sequence {sequence - 1}; one of the "
                    "two was rewritten after this entry was written",
                )
            )
    if head is not None and head.sequence in chain:
        position = chain[head.sequence]
        kept = entries[position]
        if kept.hash != head.hash and not (
            written[position] is None and kept.computed_hash() == head.hash
        ):
            holder = next(
                (w for e, w in zip(entries, written, strict=True) if e.hash == head.hash), None
            )
            problems.append(
                AuditProblem(
                    head.sequence,
                    position,
                    ProblemKind.REWRITTEN,
                    "its hash differs from the head kept apart from the chain; the chain was "
                    "rewritten up to here",
                )
                if holder is None
                else AuditProblem(
                    head.sequence,
                    None,
                    ProblemKind.REWRITTEN,
                    f"the head kept apart gives it the hash of sequence {holder}; the head "
                    "was changed",
                )
            )
    return problems
