"""An append-only, hash-chained audit trail of every change to a GxP record.

21 CFR 11.10(e) asks for computer-generated, time-stamped audit trails that never
obscure earlier values; EU GMP Annex 11 §9 asks for who, what, when, the old and new
values and the reason. Each :class:`AuditEntry` therefore records the actor (id, printed
name, role), the action, the entity, every changed field with its old and new value,
and a reason code. Nothing is ever updated or deleted: a correction is a new entry.

The entries form a hash chain. An entry's hash is the SHA-256 of the canonical JSON
(:mod:`cartnet.ledger.canonical`) of this object, which holds every field except the
hash itself::

    {"action": ..., "actor_id": ..., "actor_name": ..., "changes":
     [{"field": ..., "new": ..., "old": ...}, ...], "entity_id": ..., "entity_type": ...,
     "format": "cartnet.audit-entry/1", "previous_hash": ..., "reason_code": ... | null,
     "reason_text": ... | null, "role": ..., "sequence": ..., "timestamp":
     "YYYY-MM-DDTHH:MM:SS.ffffffZ"}

``changes`` keep the order in which they were given; enum fields are their text
values. The first entry (sequence 1) chains to :data:`GENESIS_HASH` (64 zeros), every
later one to the hash of the entry before it. :func:`verify` recomputes the chain and
names each entry that was edited, deleted, duplicated or moved (also when its sequence
number was changed, as a swap of two rows in a database does). The chain alone cannot
see its *last* entries deleted, nor a chain rewritten from some point on with fresh
hashes: for that, keep a :class:`ChainHead` elsewhere (a signature, a daily export) and
pass it to :func:`verify`, which then also names entries stored beyond it (inserted).

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

import bisect
import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeAlias, cast

from cartnet.ledger.canonical import GENESIS_HASH, canonical_json, is_hex_hash, sha256_hex
from cartnet.ledger.roles import Actor, Role

ENTRY_FORMAT = "cartnet.audit-entry/1"
"""Tag hashed with every entry, so a later layout can be told apart from this one."""
RETENTION_YEARS = 30
"""Keep audit entries at least this long (EU ATMP Regulation 1394/2007 art. 15)."""

FieldValue: TypeAlias = str | int | float | bool | None
"""A recorded value; convert dates, identifiers and amounts to text at the edge."""

__all__ = [
    "ENTRY_FORMAT",
    "GENESIS_HASH",
    "RETENTION_YEARS",
    "AuditAction",
    "AuditChain",
    "AuditChainError",
    "AuditEntry",
    "AuditProblem",
    "AuditRuleError",
    "ChainHead",
    "FieldChange",
    "FieldValue",
    "ProblemKind",
    "ReasonCode",
    "reason_problem",
    "retained_until",
    "verify",
]


class ReasonCode(StrEnum):
    """Why a record was changed, in categories a report can count (Annex 11 §9)."""

    DATA_ENTRY_ERROR = "data_entry_error"
    PATIENT_REQUEST = "patient_request"
    CLINICAL_DECISION = "clinical_decision"
    PATIENT_PROGRESSED = "patient_progressed"
    PATIENT_INELIGIBLE = "patient_ineligible"
    PATIENT_DECEASED = "patient_deceased"
    CAPACITY_CHANGE = "capacity_change"
    LOGISTICS_DELAY = "logistics_delay"
    MANUFACTURING_FAILURE = "manufacturing_failure"
    DEVIATION = "deviation"
    EXPANDED_ACCESS = "expanded_access"
    NETWORK_OPTIMIZATION = "network_optimization"
    OTHER = "other"

    @property
    def description(self) -> str:
        """One line for pick lists and reference pages."""
        return _REASON_DESCRIPTIONS[self]

    @property
    def needs_text(self) -> bool:
        """Whether a free-text reason must go with the code (only ``other``)."""
        return self is ReasonCode.OTHER


_REASON_DESCRIPTIONS = {
    ReasonCode.DATA_ENTRY_ERROR: "a value was entered wrongly and is corrected",
    ReasonCode.PATIENT_REQUEST: "the patient asked for it",
    ReasonCode.CLINICAL_DECISION: "the treating physician decided it",
    ReasonCode.PATIENT_PROGRESSED: "the disease progressed before infusion",
    ReasonCode.PATIENT_INELIGIBLE: "the patient became ineligible for the therapy",
    ReasonCode.PATIENT_DECEASED: "the patient died before infusion",
    ReasonCode.CAPACITY_CHANGE: "manufacturing or apheresis capacity changed",
    ReasonCode.LOGISTICS_DELAY: "courier, customs or shipping delay",
    ReasonCode.MANUFACTURING_FAILURE: "the batch failed in manufacturing or QC",
    ReasonCode.DEVIATION: "a deviation from the procedure, with its own report",
    ReasonCode.EXPANDED_ACCESS: "release of an out-of-specification product under expanded access",
    ReasonCode.NETWORK_OPTIMIZATION: (
        "a planner applied a move of a signed network optimization plan"
    ),
    ReasonCode.OTHER: "another reason, given as free text",
}


class AuditAction(StrEnum):
    """What an audit entry records; ``update`` and ``void`` change an existing record."""

    CREATE = "create"
    UPDATE = "update"
    VOID = "void"
    TRANSITION = "transition"
    SIGN = "sign"
    CUSTODY = "custody"
    EXCEPTION = "exception"
    READ = "read"
    """A read of protected data (patient identity): who looked, when; no values."""
    CAPACITY = "capacity"
    """Capacity taken or given back (a ``slot_usage`` row's count), with the order."""

    @property
    def changes_existing_record(self) -> bool:
        """Whether the action alters values already recorded (and so needs a reason code)."""
        return self in (AuditAction.UPDATE, AuditAction.VOID)


def _check_value(value: object, where: str) -> None:
    if value is None or isinstance(value, str | int | bool):
        return
    if isinstance(value, float):
        canonical_json(value)  # refuses NaN and infinities with a clear message
        return
    raise TypeError(
        f"{where}: a {type(value).__name__} cannot be recorded; give text, a number, "
        "true/false or None"
    )


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of the entity: its value before (``None``: had none) and after."""

    field: str
    old: FieldValue
    new: FieldValue

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field.strip():
            raise ValueError(f"a field change needs a field name, got {self.field!r}")
        _check_value(self.old, f"field {self.field!r}, old value")
        _check_value(self.new, f"field {self.field!r}, new value")


class ChainHead(NamedTuple):
    """The last sequence number and hash of a chain, to keep apart from the chain."""

    sequence: int
    hash: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One immutable entry of the audit trail; build new ones with :meth:`AuditChain.append`.

    ``timestamp`` is an aware datetime in UTC. ``previous_hash`` and ``hash`` are
    64 lower-case hex characters; ``hash`` is what :meth:`computed_hash` gave when the
    entry was written, so an edit shows as a difference between the two.
    """

    sequence: int
    timestamp: datetime
    actor_id: str
    actor_name: str
    role: Role
    action: AuditAction
    entity_type: str
    entity_id: str
    changes: tuple[FieldChange, ...]
    reason_code: ReasonCode | None
    reason_text: str | None
    previous_hash: str
    hash: str

    def __post_init__(self) -> None:
        where = f"audit entry {self.sequence}"
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int):
            raise TypeError(f"audit entry sequence must be an integer, got {self.sequence!r}")
        if self.sequence < 1:
            raise ValueError(f"{where}: sequence numbers start at 1")
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() != timedelta(0):
            raise ValueError(f"{where}: timestamp must be an aware datetime in UTC")
        for name in ("actor_id", "actor_name", "entity_type", "entity_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: {name} must be non-empty text")
        if not isinstance(self.role, Role):
            raise ValueError(f"{where}: role must be a Role, got {self.role!r}")
        if not isinstance(self.action, AuditAction):
            raise ValueError(f"{where}: action must be an AuditAction, got {self.action!r}")
        if self.reason_code is not None and not isinstance(self.reason_code, ReasonCode):
            raise ValueError(f"{where}: reason_code must be a ReasonCode, got {self.reason_code!r}")
        if not all(isinstance(c, FieldChange) for c in self.changes):
            raise TypeError(f"{where}: changes must be FieldChange values")
        for name in ("previous_hash", "hash"):
            if not is_hex_hash(getattr(self, name)):
                raise ValueError(f"{where}: {name} must be 64 lower-case hex characters")

    def content(self) -> dict[str, object]:
        """The hashed content: every field but ``hash``, plus the format tag."""
        return {
            "format": ENTRY_FORMAT,
            "sequence": self.sequence,
            "timestamp": self.timestamp,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "role": self.role,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in self.changes],
            "reason_code": self.reason_code,
            "reason_text": self.reason_text,
            "previous_hash": self.previous_hash,
        }

    def computed_hash(self) -> str:
        """The SHA-256 of :meth:`content` as it is now."""
        return sha256_hex(self.content())

    def as_dict(self) -> dict[str, object]:
        """The entry as JSON-ready values (the store's row); :meth:`from_dict` reads it back."""
        return {
            "sequence": self.sequence,
            "timestamp": self.timestamp.isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "role": self.role.value,
            "action": self.action.value,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "changes": [[c.field, c.old, c.new] for c in self.changes],
            "reason_code": None if self.reason_code is None else self.reason_code.value,
            "reason_text": self.reason_text,
            "previous_hash": self.previous_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AuditEntry:
        """An entry from :meth:`as_dict` output; errors name the entry and the field."""
        where = f"audit entry {data.get('sequence', '?')}"
        missing = [name for name in _DICT_FIELDS if name not in data]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        try:
            timestamp = datetime.fromisoformat(str(data["timestamp"]))
            role = Role(str(data["role"]))
            action = AuditAction(str(data["action"]))
            reason = data["reason_code"]
            reason_code = None if reason is None else ReasonCode(str(reason))
            raw_changes = data["changes"]
            if not isinstance(raw_changes, list | tuple):
                raise ValueError("changes must be a list of [field, old, new]")
            changes = tuple(_field_change(item) for item in raw_changes)
            reason_text = data["reason_text"]
            return cls(
                sequence=_int(data["sequence"]),
                timestamp=timestamp,
                actor_id=str(data["actor_id"]),
                actor_name=str(data["actor_name"]),
                role=role,
                action=action,
                entity_type=str(data["entity_type"]),
                entity_id=str(data["entity_id"]),
                changes=changes,
                reason_code=reason_code,
                reason_text=None if reason_text is None else str(reason_text),
                previous_hash=str(data["previous_hash"]),
                hash=str(data["hash"]),
            )
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}: {err}") from None


_DICT_FIELDS = (
    "sequence",
    "timestamp",
    "actor_id",
    "actor_name",
    "role",
    "action",
    "entity_type",
    "entity_id",
    "changes",
    "reason_code",
    "reason_text",
    "previous_hash",
    "hash",
)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"sequence must be an integer, got {value!r}")
    return value


def _field_change(item: object) -> FieldChange:
    if not isinstance(item, list | tuple) or len(item) != 3:
        raise ValueError(f"a change must be [field, old, new], got {item!r}")
    field, old, new = item
    if not isinstance(field, str):
        raise ValueError(f"a change's field name must be text, got {field!r}")
    return FieldChange(field, cast(FieldValue, old), cast(FieldValue, new))  # checks them


def reason_problem(
    action: AuditAction,
    changes: Sequence[FieldChange],
    reason_code: ReasonCode | None,
    reason_text: str | None,
) -> str | None:
    """What is wrong with the reason (and changes) of an entry, or ``None`` when it is fine.

    The rules: changing an existing record (``update``, ``void``) needs a reason code;
    ``other`` needs a free-text reason; free text needs a code to file it under; an
    ``update`` changes at least one field and each field once, to a different value; a
    ``create`` has no old values (else it hides an update).

    >>> reason_problem(AuditAction.UPDATE, [FieldChange("line", "L1", "L2")], None, None)
    'update of an existing record needs a reason code'
    """
    if reason_code is ReasonCode.OTHER and not (reason_text and reason_text.strip()):
        return "reason code 'other' needs a free-text reason"
    if reason_text is not None and reason_code is None:
        return "a free-text reason needs a reason code (use 'other' if none fits)"
    if action.changes_existing_record and reason_code is None:
        return f"{action} of an existing record needs a reason code"
    names = Counter(c.field for c in changes)
    repeated = sorted(name for name, n in names.items() if n > 1)
    if repeated:
        return f"field {repeated[0]!r} appears more than once in one entry"
    if action is AuditAction.UPDATE:
        if not changes:
            return "an update must change at least one field"
        for c in changes:
            if c.old == c.new and type(c.old) is type(c.new):
                return f"field {c.field!r}: old and new value are both {c.old!r}; nothing changes"
    if action is AuditAction.CREATE:
        for c in changes:
            if c.old is not None:
                return (
                    f"field {c.field!r} has an old value {c.old!r}: a create has none; "
                    "record a change to an existing record as an update"
                )
    return None


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


class AuditRuleError(ValueError):
    """An entry that may not be written (missing reason code, no-op update, ...)."""


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
    written = _written_sequences(entries, start)
    placement = _place(entries, written, head)
    problems = [*placement.problems, *_out_of_order(entries, placement.in_place)]
    problems += _duplicates(entries, placement.counted, start.sequence)
    problems += _chain_problems(entries, written, placement.chain, start, head, after is None)
    kinds = list(ProblemKind)
    problems.sort(key=lambda p: (p.sequence, kinds.index(p.kind)))
    return problems


_SEARCH_SPAN = 32
"""How far from its stored number an entry's written number is searched for, when the
entry it chains to is gone (deleted, and the later ones renumbered to hide the gap)."""
_SEARCH_BUDGET = 4096
"""Most hashes spent on that search, so a table tampered with throughout stays quick."""


def _written_sequences(entries: Sequence[AuditEntry], start: ChainHead) -> list[int | None]:
    """The sequence number each entry was written with; ``None`` where none fits its hash.

    An entry whose sequence number was changed in the store no longer matches its hash,
    but it does with the number it was written with: one more than that of the entry
    whose hash it chains to. Following the links from ``start`` finds that number with
    one or two extra hashes per such entry, which tells a moved entry from an edited one.
    An entry whose predecessor is gone is tried with nearby numbers instead.
    """
    written: list[int | None] = [None] * len(entries)
    waiting: dict[str, list[int]] = {}
    stored_hashes = {start.hash}
    found = [start]
    for position, entry in enumerate(entries):
        stored_hashes.add(entry.hash)
        found.append(ChainHead(entry.sequence, entry.hash))  # until shown to be moved
        if entry.computed_hash() == entry.hash:
            written[position] = entry.sequence
        else:
            waiting.setdefault(entry.previous_hash, []).append(position)

    def fits(position: int, candidate: int) -> bool:
        entry = entries[position]
        content = {**entry.content(), "sequence": candidate}
        if candidate == entry.sequence or sha256_hex(content) != entry.hash:
            return False
        written[position] = candidate
        found.append(ChainHead(candidate, entry.hash))
        return True

    def follow_links() -> None:
        while found:
            before = found.pop()
            for position in waiting.get(before.hash, []):
                if written[position] is None:
                    fits(position, before.sequence + 1)

    follow_links()
    budget = _SEARCH_BUDGET
    for position, entry in enumerate(entries):
        if written[position] is not None or entry.previous_hash in stored_hashes:
            continue
        for distance in range(1, _SEARCH_SPAN + 1):
            near = [entry.sequence + distance, entry.sequence - distance]
            candidates = [c for c in near if c > start.sequence][:budget]
            budget -= len(candidates)
            if any(fits(position, c) for c in candidates):
                follow_links()
                break
    return written


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
