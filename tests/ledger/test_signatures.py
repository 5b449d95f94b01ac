"""E-signatures: bound to their record, made only after re-authentication, counted by person."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartnet.ledger import (
    DEFAULT_SIGNATURE_POLICY,
    Actor,
    ElectronicSignature,
    PasswordCheck,
    Reauthentication,
    Role,
    SignatureMeaning,
    SignaturePolicy,
    SignatureRefusedError,
    distinct_signers,
    record_hash,
    required_signatures,
    sign,
    verification_problems,
    verify_signature,
)

AT = datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
QA = Actor("u-017", "Jane Doe", Role.QA)
OPERATOR = Actor("u-021", "Kenji Sato", Role.SITE_OPERATOR)
RECEIPT = {
    "record_id": "RC-7",
    "order": "ORD-1",
    "coi": "CHG123426A1B2C3",
    "temperature_c": -182.5,
    "seal_intact": True,
}
OTHER_RECEIPT = {**RECEIPT, "record_id": "RC-8", "order": "ORD-2"}


class StoredPasswords:
    """What the service does: compare a password with the stored one, record the time."""

    def __init__(self, passwords: dict[str, str], now: datetime) -> None:
        self.passwords = passwords
        self.now = now

    def reauthenticate(self, user_id: str, password: str) -> Reauthentication:
        return Reauthentication(user_id, self.now, self.passwords.get(user_id) == password)


CHECK: PasswordCheck = StoredPasswords({"u-017": "correct horse", "u-021": "battery"}, AT)


def signed_by(
    actor: Actor,
    password: str,
    content: dict[str, object] = RECEIPT,
    key: bytes | None = None,
) -> ElectronicSignature:
    """``actor`` signs the receipt record after re-entering ``password``."""
    return sign(
        CHECK.reauthenticate(actor.id, password),
        actor,
        SignatureMeaning.RESPONSIBILITY,
        "receipt",
        str(content["record_id"]),
        content,
        signed_at=AT,
        key=key,
    )


def test_signature_shows_printed_name_time_and_meaning() -> None:
    """21 CFR 11.50: the signed record shows printed name, date and time, and meaning."""
    sig = signed_by(QA, "correct horse")
    assert (sig.printed_name, sig.signed_at, sig.meaning) == ("Jane Doe", AT, "responsibility")
    assert sig.manifestation() == "Jane Doe (u-017), responsibility, 2026-03-02 14:05:09 UTC"
    assert sig.record_hash == record_hash(RECEIPT)


def test_signature_verifies_only_against_its_own_record() -> None:
    """11.70: a signature cannot be moved to another record."""
    sig = signed_by(QA, "correct horse")
    assert verify_signature(sig, RECEIPT)
    assert verify_signature(sig, dict(reversed(list(RECEIPT.items()))))  # key order is no edit
    assert not verify_signature(sig, OTHER_RECEIPT)
    assert verify_signature(sig, RECEIPT, record_type="receipt", record_id="RC-7")
    assert not verify_signature(sig, RECEIPT, record_id="RC-8")
    assert not verify_signature(sig, RECEIPT, record_type="batch_release")


@pytest.mark.parametrize("field", sorted(RECEIPT))
def test_editing_any_field_of_the_record_breaks_the_signature(field: str) -> None:
    """Change one value of the signed record and the signature no longer verifies."""
    sig = signed_by(QA, "correct horse")
    value = RECEIPT[field]
    edited = {**RECEIPT, field: (not value) if isinstance(value, bool) else f"{value}x"}
    assert not verify_signature(sig, edited)
    assert not verify_signature(sig, {k: v for k, v in RECEIPT.items() if k != field})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signer_id", "u-021"),
        ("printed_name", "Kenji Sato"),
        ("signed_at", AT + timedelta(seconds=1)),
        ("meaning", SignatureMeaning.APPROVAL),
        ("record_type", "batch_release"),
        ("record_id", "RC-8"),
        ("record_hash", record_hash(OTHER_RECEIPT)),
    ],
)
def test_editing_any_field_of_the_signature_breaks_it(field: str, value: Any) -> None:
    """Change the signer, time, meaning or target of a stored signature and it fails."""
    sig = signed_by(QA, "correct horse")
    assert not verify_signature(dataclasses.replace(sig, **{field: value}), RECEIPT)


def test_copying_a_signature_to_another_record_fails_even_with_its_hash_replaced() -> None:
    """Pointing a signature's record hash at another record breaks its signature hash."""
    sig = signed_by(QA, "correct horse")
    moved = dataclasses.replace(sig, record_id="RC-8", record_hash=record_hash(OTHER_RECEIPT))
    assert not verify_signature(moved, OTHER_RECEIPT)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_signature_binds_arbitrary_record_content(
    content: dict[str, object], data: st.DataObject
) -> None:
    """For any record, the signature verifies on it and fails once any value changes."""
    sig = signed_by(QA, "correct horse", {**content, "record_id": "R-1"})
    record = {**content, "record_id": "R-1"}
    assert verify_signature(sig, record)
    key = data.draw(st.sampled_from(sorted(record)))
    changed = {**record, key: [record[key]]}  # same value wrapped: a different record
    assert not verify_signature(sig, changed)


def test_keyed_signature_needs_the_service_key() -> None:
    """With a seal key, a signature forged without the key does not verify."""
    key = b"k" * 32
    sig = signed_by(QA, "correct horse", key=key)
    assert verify_signature(sig, RECEIPT, key=key)
    assert not verify_signature(sig, RECEIPT)
    forged = signed_by(QA, "correct horse")  # same fields, plain SHA-256: no key
    assert not verify_signature(forged, RECEIPT, key=key)


def test_sign_requires_a_passed_reauthentication() -> None:
    """A wrong password, someone else's password or a stale re-entry do not sign."""
    with pytest.raises(SignatureRefusedError, match="password re-entry failed"):
        signed_by(QA, "wrong")
    reauth = CHECK.reauthenticate(OPERATOR.id, "battery")
    with pytest.raises(SignatureRefusedError, match="re-entered by 'u-021', not by the signer"):
        sign(reauth, QA, SignatureMeaning.APPROVAL, "receipt", "RC-7", RECEIPT, signed_at=AT)
    qa_reauth = CHECK.reauthenticate(QA.id, "correct horse")
    with pytest.raises(SignatureRefusedError, match="more than 0:05:00; enter it again"):
        sign(
            qa_reauth,
            QA,
            SignatureMeaning.APPROVAL,
            "receipt",
            "RC-7",
            RECEIPT,
            signed_at=AT + timedelta(minutes=6),
        )
    with pytest.raises(SignatureRefusedError, match="dated after the signature"):
        sign(
            qa_reauth,
            QA,
            SignatureMeaning.APPROVAL,
            "receipt",
            "RC-7",
            RECEIPT,
            signed_at=AT - timedelta(seconds=1),
        )


def test_signature_time_is_stored_in_utc() -> None:
    """A signing time given with an offset is stored as UTC; a naive one is refused."""
    tokyo = AT.astimezone(timezone(timedelta(hours=9)))
    reauth = CHECK.reauthenticate(QA.id, "correct horse")
    sig = sign(reauth, QA, SignatureMeaning.REVIEW, "receipt", "RC-7", RECEIPT, signed_at=tokyo)
    assert sig.signed_at == AT and sig.signed_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="has no time zone"):
        sign(
            reauth,
            QA,
            SignatureMeaning.REVIEW,
            "receipt",
            "RC-7",
            RECEIPT,
            signed_at=AT.replace(tzinfo=None),
        )


def test_two_signatures_by_one_person_are_one_verification() -> None:
    """Where two independent verifications are required, one person signing twice fails."""
    twice = [signed_by(QA, "correct horse"), signed_by(QA, "correct horse")]
    assert distinct_signers(twice) == 1
    problems = verification_problems(twice, RECEIPT, required=2)
    assert problems == [
        "needs 2 independent signatures from different people, has 1 "
        "(Jane Doe (u-017) signed 2 times; one person counts once)"
    ]
    two_people = [signed_by(QA, "correct horse"), signed_by(OPERATOR, "battery")]
    assert distinct_signers(two_people) == 2
    assert verification_problems(two_people, RECEIPT, required=2) == []


def test_a_signature_on_another_record_does_not_count() -> None:
    """A second signature taken from another record is named and not counted."""
    sigs = [signed_by(QA, "correct horse"), signed_by(OPERATOR, "battery", OTHER_RECEIPT)]
    problems = verification_problems(sigs, RECEIPT, required=2)
    assert problems[0].startswith("signature of Kenji Sato (u-021), responsibility")
    assert problems[0].endswith("does not match this record")
    assert problems[1] == "needs 2 independent signatures from different people, has 1"
    assert verification_problems(sigs[:1], RECEIPT, required=1) == []


def test_required_signatures_default_to_one() -> None:
    """Without configuration, every signed step needs one signature in every country."""
    assert required_signatures("receipt_at_site", "DE") == 1
    assert DEFAULT_SIGNATURE_POLICY.required("release", "US") == 1


def test_policy_table_sets_counts_per_step_and_country() -> None:
    """A country rule beats the step's '*' rule, which beats the default."""
    policy = SignaturePolicy.from_mapping(
        {
            "receipt_at_site": {"de": 2, "*": 1},
            "handover_to_courier": {"*": 2, "CH": 3},
        }
    )
    assert required_signatures("receipt_at_site", "DE", policy) == 2
    assert required_signatures("receipt_at_site", "FR", policy) == 1
    assert required_signatures("handover_to_courier", "ch", policy) == 3
    assert required_signatures("handover_to_courier", "US", policy) == 2
    assert required_signatures("infusion", "DE", policy) == 1


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({("receipt_at_site", "Germany"): 2}, "ISO 3166-1 alpha-2"),
        ({("receipt_at_site", "DE"): 0}, "at least 1"),
        ({("", "DE"): 2}, "step must not be empty"),
    ],
)
def test_bad_policy_entries_are_refused(rules: dict[tuple[str, str], int], message: str) -> None:
    """A policy with an unknown country form, a zero count or no step name is refused."""
    with pytest.raises(ValueError, match=message):
        SignaturePolicy(rules)
