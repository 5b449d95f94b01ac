"""One audit trail entry: who changed what, when, from which value to which, and why.

21 CFR 11.10(e) asks for computer-generated, time-stamped audit trails that never
obscure earlier values; EU GMP Annex 11 §9 asks for who, what, when, the old and new
values and the reason. Each :class:`AuditEntry` therefore records the actor (id, printed
name, role), the action, the entity, every changed field with its old and new value,
and a reason code. Nothing is ever updated or deleted: a correction is a new entry.

An entry's hash is the SHA-256 of the canonical JSON (:mod:`cartnet.ledger.canonical`)
of this object, which holds every field except the hash itself::

    {"action": ..., "actor_id": ..., "actor_name": ..., "changes":
     [{"field": ..., "new": ..., "old": ...}, ...], "entity_id": ..., "entity_type": ...,
     "format": "cartnet.audit-entry/1", "previous_hash": ..., "reason_code": ... | null,
     "reason_text": ... | null, "role": ..., "sequence": ..., "timestamp":
     "YYYY-MM-DDTHH:MM:SS.ffffffZ"}

``changes`` keep the order in which they were given; enum fields are their text
values. :func:`reason_problem` holds the rules an entry's reason must follow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeAlias, cast

from cartnet.ledger.canonical import canonical_json, is_hex_hash, sha256_hex
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role

ENTRY_FORMAT = "cartnet.audit-entry/1"
"""Tag hashed with every entry, so a later layout can be told apart from this one."""

FieldValue: TypeAlias = str | int | float | bool | None
"""A recorded value; convert dates, identifiers and amounts to text at the edge."""

__all__ = [
    "ENTRY_FORMAT",
    "AuditAction",
    "AuditEntry",
    "AuditRuleError",
    "ChainHead",
    "FieldChange",
    "FieldValue",
    "reason_problem",
]


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


class AuditRuleError(ValueError):
    """An entry that may not be written (missing reason code, no-op update, ...)."""
