"""Audit trail: hash chain, tamper detection by sequence number, reason-code rules."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartnet.ledger import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    AuditChain,
    AuditChainError,
    AuditEntry,
    AuditProblem,
    AuditRuleError,
    ChainHead,
    FieldChange,
    ProblemKind,
    ReasonCode,
    Role,
    retained_until,
    verify,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COORDINATOR = Actor("u-001", "Ana López", Role.CENTER_COORDINATOR)
PLANNER = Actor("u-002", "Bo Chen", Role.PLANNER)
QA = Actor("u-017", "Jane Doe", Role.QA)


def ticking_clock(step: timedelta = timedelta(minutes=7)) -> Callable[[], datetime]:
    """A clock that starts at T0 and moves on by ``step`` at each call."""
    moments = (T0 + i * step for i in range(10_000))
    return lambda: next(moments)


def build_chain() -> AuditChain:
    """Six entries of one order: enrolment, booking, two corrections, a transition, a void."""
    chain = AuditChain(clock=ticking_clock())
    chain.append(
        COORDINATOR,
        AuditAction.CREATE,
        "order",
        "ORD-1",
        [("product", None, "tisagenlecleucel"), ("center", None, "chop")],
    )
    chain.append(
        PLANNER,
        AuditAction.CREATE,
        "booking",
        "BK-1",
        [("apheresis_date", None, "2026-03-09"), ("site", None, "morris-plains")],
    )
    chain.append(
        PLANNER,
        AuditAction.UPDATE,
        "booking",
        "BK-1",
        [("apheresis_date", "2026-03-09", "2026-03-10")],
        reason_code=ReasonCode.PATIENT_REQUEST,
    )
    chain.append(
        COORDINATOR,
        AuditAction.UPDATE,
        "order",
        "ORD-1",
        [("weight_kg", 71.5, 17.5)],
        reason_code=ReasonCode.OTHER,
        reason_text="weight of another patient was entered",
    )
    chain.append(
        COORDINATOR, AuditAction.TRANSITION, "order", "ORD-1", [("state", "booked", "cancelled")]
    )
    chain.append(
        QA,
        AuditAction.VOID,
        "booking",
        "BK-1",
        [("status", "active", "void")],
        reason_code=ReasonCode.CLINICAL_DECISION,
    )
    return chain


ENTRIES = build_chain().entries
POSITIONS = range(len(ENTRIES))


def rehash(entry: AuditEntry) -> AuditEntry:
    """The entry with its hash recomputed, as a forger with the algorithm would do."""
    return dataclasses.replace(entry, hash=entry.computed_hash())


def kinds_at(problems: list[AuditProblem]) -> set[tuple[int, ProblemKind]]:
    return {(p.sequence, p.kind) for p in problems}


def test_clean_chain_verifies() -> None:
    """A chain written by append verifies with no problem, also against its own head."""
    chain = build_chain()
    assert verify(chain.entries) == []
    assert verify(chain.entries, head=chain.head) == []
    assert [e.sequence for e in chain] == [1, 2, 3, 4, 5, 6]
    assert chain.head == ChainHead(6, chain.entries[-1].hash)


def test_entries_chain_to_genesis_and_to_each_other() -> None:
    """Entry 1 points at 64 zeros; each later entry at the hash of the one before."""
    assert ENTRIES[0].previous_hash == GENESIS_HASH == "0" * 64
    for before, after in itertools.pairwise(ENTRIES):
        assert after.previous_hash == before.hash


def test_hash_is_sha256_of_the_documented_canonical_json() -> None:
    """Anyone can recompute an entry's hash from the canonical form the docstring gives."""
    entry = ENTRIES[3]
    text = (
        '{"action":"update","actor_id":"u-001","actor_name":"Ana López",'
        '"changes":[{"field":"weight_kg","new":17.5,"old":71.5}],'
        '"entity_id":"ORD-1","entity_type":"order","format":"cartnet.audit-entry/1",'
        f'"previous_hash":"{ENTRIES[2].hash}","reason_code":"other",'
        '"reason_text":"weight of another patient was entered","role":"center_coordinator",'
        '"sequence":4,"timestamp":"2026-03-02T09:21:00.000000Z"}'
    )
    assert entry.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_value(entry: AuditEntry, field: str) -> Any:
    """A different, valid value for ``field`` of ``entry``."""
    if field == "sequence":
        return entry.sequence + 100
    if field == "timestamp":
        return entry.timestamp + timedelta(microseconds=1)
    if field == "role":
        return Role.ADMIN
    if field == "action":
        return AuditAction.SIGN
    if field == "changes":
        first = entry.changes[0]
        return (FieldChange(first.field, first.old, f"{first.new}-edited"), *entry.changes[1:])
    if field == "reason_code":
        return ReasonCode.DEVIATION if entry.reason_code else None
    if field == "reason_text":
        return "edited text"
    if field == "previous_hash":
        return "f" * 64
    return getattr(entry, field) + "-edited"


EDITABLE = [f.name for f in dataclasses.fields(AuditEntry) if f.name not in ("hash", "sequence")]
"""Fields whose change is an edit; a changed sequence number is a move (tested below)."""


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("field", EDITABLE)
def test_editing_any_field_of_any_entry_is_detected_and_named(position: int, field: str) -> None:
    """Change one stored value: verify names that entry as edited, and no other entry."""
    entry = ENTRIES[position]
    value = new_value(entry, field)
    if field == "reason_code" and value is None:
        value = ReasonCode.DATA_ENTRY_ERROR  # entries without a code gain one
    tampered = list(ENTRIES)
    tampered[position] = dataclasses.replace(entry, **{field: value})
    problems = verify(tampered)
    edited = [p for p in problems if p.kind is ProblemKind.EDITED]
    assert len(edited) == 1
    assert edited[0].position == position
    assert edited[0].sequence == tampered[position].sequence
    assert "no longer matches its hash" in str(edited[0])
    assert {p.position for p in problems} == {position}


@pytest.mark.parametrize("position", POSITIONS[:-1])
def test_rewritten_entry_with_fresh_hash_breaks_the_next_link(position: int) -> None:
    """An edit with a recomputed hash shows where the next entry no longer chains to it."""
    tampered = list(ENTRIES)
    tampered[position] = rehash(dataclasses.replace(ENTRIES[position], actor_name="Mallory"))
    problems = verify(tampered)
    sequence = position + 1
    assert kinds_at(problems) == {(sequence + 1, ProblemKind.BROKEN_LINK)}
    assert f"not the hash of sequence {sequence}" in str(problems[0])


def test_rewritten_last_entry_is_caught_by_the_head_kept_apart() -> None:
    """The last entry has no successor to betray it; the head kept elsewhere does."""
    head = ChainHead(ENTRIES[-1].sequence, ENTRIES[-1].hash)
    tampered = [*ENTRIES[:-1], rehash(dataclasses.replace(ENTRIES[-1], actor_name="Mallory"))]
    assert verify(tampered) == []
    assert kinds_at(verify(tampered, head=head)) == {(6, ProblemKind.REWRITTEN)}


@pytest.mark.parametrize("position", POSITIONS[:-1])
def test_deleting_an_entry_is_detected_and_named(position: int) -> None:
    """Remove one entry: verify names its sequence number as deleted, and nothing else."""
    tampered = [e for i, e in enumerate(ENTRIES) if i != position]
    problems = verify(tampered)
    assert problems == [
        AuditProblem(position + 1, None, ProblemKind.DELETED, problems[0].detail),
    ]
    assert str(problems[0]).startswith(f"sequence {position + 1}: deleted: no entry;")


def test_deleting_the_last_entries_is_caught_by_the_head() -> None:
    """Cutting off the tail leaves a valid shorter chain; the recorded head shows the cut."""
    head = ChainHead(ENTRIES[-1].sequence, ENTRIES[-1].hash)
    truncated = list(ENTRIES[:-2])
    assert verify(truncated) == []
    problems = verify(truncated, head=head)
    assert kinds_at(problems) == {(5, ProblemKind.DELETED), (6, ProblemKind.DELETED)}
    assert "its head, kept apart, is 6" in problems[0].detail


@pytest.mark.parametrize("position", POSITIONS[:-1])
def test_swapping_neighbours_is_detected_and_named(position: int) -> None:
    """Exchange two stored entries: verify names the one stored after its successor."""
    swapped = list(ENTRIES)
    swapped[position], swapped[position + 1] = swapped[position + 1], swapped[position]
    problems = verify(swapped)
    assert problems == [
        AuditProblem(
            position + 1,
            position + 1,
            ProblemKind.REORDERED,
            f"stored after sequence {position + 2}; entries were moved out of their order",
        )
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(POSITIONS)))
def test_any_reordering_is_reported_as_reordering_only(order: list[int]) -> None:
    """A shuffled but complete chain is named reordered, never edited or deleted."""
    shuffled = [ENTRIES[i] for i in order]
    problems = verify(shuffled)
    if order == sorted(order):
        assert problems == []
    else:
        assert problems
        assert {p.kind for p in problems} == {ProblemKind.REORDERED}


def renumbered(order: list[int]) -> list[AuditEntry]:
    """What a store reading by sequence number shows once rows' numbers were exchanged.

    The entry written at position ``order[i]`` now carries number i+1.
    """
    return [dataclasses.replace(ENTRIES[i], sequence=n) for n, i in enumerate(order, start=1)]


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(POSITIONS, 2)))
def test_swapped_sequence_numbers_name_both_entries_reordered(first: int, second: int) -> None:
    """Two rows' numbers exchanged in the store: both named reordered, each naming the other."""
    order = list(POSITIONS)
    order[first], order[second] = second, first
    problems = verify(renumbered(order), head=build_chain().head)
    assert problems == [
        AuditProblem(
            first + 1,
            first,
            ProblemKind.REORDERED,
            f"holds the entry written as sequence {second + 1}; its sequence number was changed, "
            "moving entries out of their order",
        ),
        AuditProblem(
            second + 1,
            second,
            ProblemKind.REORDERED,
            f"holds the entry written as sequence {first + 1}; its sequence number was changed, "
            "moving entries out of their order",
        ),
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(POSITIONS)))
def test_any_renumbering_names_exactly_the_moved_entries(order: list[int]) -> None:
    """Sequence numbers shuffled among the rows: only the moved ones, only as reordered."""
    problems = verify(renumbered(order), head=build_chain().head)
    moved = {n for n, i in enumerate(order, start=1) if i + 1 != n}
    assert {p.sequence for p in problems} == moved
    assert {p.kind for p in problems} <= {ProblemKind.REORDERED}


@pytest.mark.parametrize("position", POSITIONS)
def test_a_changed_sequence_number_names_the_old_and_the_new_number(position: int) -> None:
    """An entry renumbered into a gap is moved, not edited: both numbers are named."""
    tampered = list(ENTRIES)
    tampered[position] = dataclasses.replace(ENTRIES[position], sequence=position + 101)
    tampered.sort(key=lambda entry: entry.sequence)
    problems = verify(tampered)
    assert kinds_at(problems) == {
        (position + 1, ProblemKind.REORDERED),
        (position + 101, ProblemKind.REORDERED),
    }
    assert f"stored as sequence {position + 101}" in str(problems[0])
    assert f"holds the entry written as sequence {position + 1}" in str(problems[1])


def test_deleting_an_entry_and_renumbering_the_rest_is_named() -> None:
    """The cover-up of a deletion (renumber the later rows, set the head back) is named."""
    later = [dataclasses.replace(e, sequence=e.sequence - 1) for e in ENTRIES[3:]]
    tampered = [*ENTRIES[:2], *later]
    renumbered_only = {
        (3, ProblemKind.DELETED),
        (3, ProblemKind.REORDERED),
        (4, ProblemKind.REORDERED),
        (5, ProblemKind.REORDERED),
        (6, ProblemKind.REORDERED),
    }
    problems = verify(tampered, head=build_chain().head)
    assert kinds_at(problems) == renumbered_only
    assert [str(p) for p in problems if p.sequence in (3, 6)] == [
        "sequence 3: deleted: no entry; the chain goes from 2 to 4",
        "sequence 3 (entry 3): reordered: holds the entry written as sequence 4; its sequence "
        "number was changed, moving entries out of their order",
        "sequence 6: reordered: its entry is stored as sequence 5; its sequence number was changed",
    ]
    set_back = verify(tampered, head=ChainHead(5, ENTRIES[-1].hash))
    assert kinds_at(set_back) == {*renumbered_only, (5, ProblemKind.REWRITTEN)}
    assert "the head kept apart gives it the hash of sequence 6" in str(set_back)


@pytest.mark.parametrize("position", POSITIONS)
def test_an_edited_hash_names_only_that_entry(position: int) -> None:
    """A changed hash value is that entry's edit; the next link and the head still hold."""
    tampered = list(ENTRIES)
    tampered[position] = dataclasses.replace(ENTRIES[position], hash="f" * 64)
    problems = verify(tampered, head=build_chain().head)
    assert kinds_at(problems) == {(position + 1, ProblemKind.EDITED)}
    assert "its hash was changed" in problems[0].detail


def test_an_edited_time_names_only_that_entry() -> None:
    """A time moved past the next entry's is one edit, not also the next entry's problem."""
    tampered = list(ENTRIES)
    tampered[2] = dataclasses.replace(ENTRIES[2], timestamp=T0 + timedelta(days=1))
    assert kinds_at(verify(tampered)) == {(3, ProblemKind.EDITED)}
    tampered[2] = dataclasses.replace(ENTRIES[2], timestamp=T0 - timedelta(days=1))
    assert kinds_at(verify(tampered)) == {(3, ProblemKind.EDITED), (3, ProblemKind.TIME_ORDER)}


def test_entries_beyond_the_head_are_named_inserted() -> None:
    """Entries after the head kept apart were added outside the chain (or the head set back)."""
    chain = build_chain()
    forged = chain.append(QA, AuditAction.SIGN, "batch", "B-1")  # a valid hash and link
    problems = verify(chain.entries, head=ChainHead(6, ENTRIES[-1].hash))
    assert problems == [
        AuditProblem(
            7,
            6,
            ProblemKind.INSERTED,
            "stored beyond the head kept apart (sequence 6); it was added outside the "
            "application, or the head was set back",
        )
    ]
    assert forged.sequence == 7
    set_back = verify(ENTRIES, head=ChainHead(4, ENTRIES[3].hash))
    assert kinds_at(set_back) == {(5, ProblemKind.INSERTED), (6, ProblemKind.INSERTED)}


def test_a_copy_under_a_new_number_is_named() -> None:
    """A copy of entry 3 stored as 7: a duplicate, or inserted when a head is kept apart."""
    copy = dataclasses.replace(ENTRIES[2], sequence=7)
    problems = verify([*ENTRIES, copy])
    assert problems == [
        AuditProblem(7, 6, ProblemKind.DUPLICATED, "a copy of the entry written as sequence 3")
    ]
    problems = verify([*ENTRIES, copy], head=build_chain().head)
    assert kinds_at(problems) == {(7, ProblemKind.INSERTED)}
    assert problems[0].detail.endswith("a copy of the entry written as sequence 3")


def test_duplicated_entry_is_named() -> None:
    """The same sequence number stored twice is reported once, with the count."""
    problems = verify([*ENTRIES[:3], ENTRIES[2], *ENTRIES[3:]])
    assert kinds_at(problems) == {(3, ProblemKind.DUPLICATED)}
    assert "2 entries carry this sequence number" in str(problems[0])


def test_time_going_backwards_is_named() -> None:
    """An entry dated before its predecessor (with a forged hash) is a time-order problem."""
    tampered = list(ENTRIES)
    tampered[3] = rehash(dataclasses.replace(ENTRIES[3], timestamp=T0 - timedelta(days=1)))
    problems = verify(tampered)
    assert (4, ProblemKind.TIME_ORDER) in kinds_at(problems)


def test_loading_a_broken_chain_is_refused_naming_the_entry() -> None:
    """AuditChain(entries) verifies what the store hands back before appending to it."""
    tampered = list(ENTRIES)
    tampered[1] = dataclasses.replace(ENTRIES[1], entity_id="BK-2")
    with pytest.raises(AuditChainError, match=r"sequence 2 \(entry 2\): edited") as caught:
        AuditChain(tampered)
    assert caught.value.problems[0].sequence == 2


def test_loaded_chain_continues_the_sequence() -> None:
    """A chain rebuilt from stored entries appends sequence 7, chained to entry 6."""
    chain = AuditChain(ENTRIES, clock=lambda: T0 + timedelta(days=1))
    entry = chain.append(QA, AuditAction.SIGN, "batch", "B-1", [("signature", None, "abc")])
    assert (entry.sequence, entry.previous_hash) == (7, ENTRIES[-1].hash)
    assert verify(chain.entries) == []


def test_window_after_a_checkpoint_verifies_and_continues() -> None:
    """A long chain is checked from a verified checkpoint on, not from sequence 1."""
    checkpoint = ChainHead(3, ENTRIES[2].hash)
    window = list(ENTRIES[3:])
    assert verify(window, after=checkpoint) == []
    assert kinds_at(verify(window)) == {
        (1, ProblemKind.DELETED),
        (2, ProblemKind.DELETED),
        (3, ProblemKind.DELETED),
    }
    wrong = ChainHead(3, ENTRIES[1].hash)
    problems = verify(window, after=wrong)
    assert kinds_at(problems) == {(4, ProblemKind.BROKEN_LINK)}
    assert "must chain to the checkpoint's hash (sequence 3)" in str(problems[0])
    assert kinds_at(verify(list(ENTRIES[2:]), after=checkpoint)) == {(3, ProblemKind.DUPLICATED)}
    chain = AuditChain(window, after=checkpoint, clock=lambda: T0 + timedelta(days=1))
    entry = chain.append(QA, AuditAction.SIGN, "batch", "B-1")
    assert (entry.sequence, entry.previous_hash) == (7, ENTRIES[-1].hash)
    empty = AuditChain(after=ChainHead(6, ENTRIES[-1].hash), clock=lambda: T0)
    assert empty.append(QA, AuditAction.SIGN, "batch", "B-1").sequence == 7


def test_store_round_trip_through_json_keeps_the_hash() -> None:
    """as_dict → JSON → from_dict gives back equal entries that still verify."""
    stored = json.loads(json.dumps([e.as_dict() for e in ENTRIES]))
    loaded = [AuditEntry.from_dict(row) for row in stored]
    assert loaded == list(ENTRIES)
    assert verify(loaded) == []


def test_from_dict_names_the_entry_and_the_problem() -> None:
    """A malformed stored row is refused with its sequence number and what is wrong."""
    row = ENTRIES[2].as_dict()
    row["role"] = "surgeon"
    with pytest.raises(ValueError, match="audit entry 3: 'surgeon' is not a valid Role"):
        AuditEntry.from_dict(row)
    del row["hash"]
    with pytest.raises(ValueError, match="audit entry 3: missing hash"):
        AuditEntry.from_dict(row)


@pytest.mark.parametrize(
    ("action", "changes", "code", "text", "message"),
    [
        (
            AuditAction.UPDATE,
            [("site", "a", "b")],
            None,
            None,
            "update of an existing record needs a reason code",
        ),
        (AuditAction.VOID, [], None, None, "void of an existing record needs a reason code"),
        (
            AuditAction.UPDATE,
            [("site", "a", "b")],
            ReasonCode.OTHER,
            " ",
            "reason code 'other' needs a free-text reason",
        ),
        (AuditAction.CREATE, [("site", None, "b")], None, "why", "needs a reason code"),
        (
            AuditAction.UPDATE,
            [("site", "a", "a")],
            ReasonCode.DATA_ENTRY_ERROR,
            None,
            "nothing changes",
        ),
        (AuditAction.UPDATE, [], ReasonCode.DATA_ENTRY_ERROR, None, "at least one field"),
        (AuditAction.CREATE, [("site", "a", "b")], None, None, "a create has none"),
        (
            AuditAction.UPDATE,
            [("site", "a", "b"), ("site", "b", "c")],
            ReasonCode.DEVIATION,
            None,
            "appears more than once",
        ),
    ],
)
def test_append_refuses_changes_without_proper_reason(
    action: AuditAction,
    changes: list[tuple[str, str | None, str]],
    code: ReasonCode | None,
    text: str | None,
    message: str,
) -> None:
    """Changes to existing records need a reason code; 'other' needs words; no no-ops."""
    chain = AuditChain(clock=lambda: T0)
    with pytest.raises(AuditRuleError, match=message):
        chain.append(
            PLANNER, action, "booking", "BK-1", changes, reason_code=code, reason_text=text
        )
    assert len(chain) == 0


def test_entries_that_break_the_rules_are_reported_by_verify() -> None:
    """An update forged without a reason (with a valid hash) is named as a rule problem."""
    tampered = list(ENTRIES)
    tampered[2] = rehash(dataclasses.replace(ENTRIES[2], reason_code=None))
    problems = verify(tampered)
    assert (3, ProblemKind.RULE) in kinds_at(problems)


def test_timestamps_are_utc_and_never_go_back() -> None:
    """Aware times are stored in UTC; naive times and a clock going back are refused."""
    chain = AuditChain()
    paris = timezone(timedelta(hours=1))
    entry = chain.append(
        COORDINATOR,
        AuditAction.CREATE,
        "order",
        "ORD-9",
        timestamp=datetime(2026, 3, 2, 10, 0, tzinfo=paris),
    )
    assert entry.timestamp == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert entry.timestamp.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="has no time zone"):
        chain.append(COORDINATOR, AuditAction.CREATE, "order", "O", timestamp=datetime(2026, 3, 3))
    with pytest.raises(AuditRuleError, match="before the last entry's"):
        chain.append(
            COORDINATOR, AuditAction.CREATE, "order", "O", timestamp=T0 - timedelta(seconds=1)
        )


def test_default_clock_is_utc_now() -> None:
    """Without a clock the chain stamps entries with the current UTC time."""
    before = datetime.now(UTC)
    entry = AuditChain().append(COORDINATOR, AuditAction.CREATE, "order", "ORD-1")
    assert before <= entry.timestamp <= datetime.now(UTC)


def test_values_that_cannot_be_recorded_are_refused() -> None:
    """Only text, numbers, booleans and None are recorded; NaN and objects are refused."""
    with pytest.raises(TypeError, match="a date cannot be recorded"):
        FieldChange("apheresis_date", None, T0.date())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite number"):
        FieldChange("weight_kg", None, float("nan"))


def test_reason_codes_describe_themselves() -> None:
    """Every reason code has a description; only 'other' needs free text."""
    assert all(code.description for code in ReasonCode)
    assert [code for code in ReasonCode if code.needs_text] == [ReasonCode.OTHER]


def test_retention_is_thirty_years() -> None:
    """Records are kept at least 30 years (EU ATMP Regulation art. 15)."""
    assert retained_until(T0) == datetime(2056, 3, 2, 9, 0, tzinfo=UTC)
    assert retained_until(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2058, 3, 1, tzinfo=UTC)
