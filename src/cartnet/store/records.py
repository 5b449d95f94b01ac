"""Do the stored records say what their audit trail says?

The hash chain proves the trail itself untouched; this check ties the operational rows
to it. Folding every audited change of a record, oldest first, gives the value each
audited field must have now; a row that differs was changed outside the service (an
UPDATE in the database), a row with no trail was inserted outside it, a trail with no
row lost its row. Stored e-signatures are checked against their seal (with the signing
key) and against the step they sign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from cartnet.ledger.signatures import ElectronicSignature, SignatureMeaning, seal_intact
from cartnet.store.tables import (
    AuditEntryRow,
    Base,
    CosignatureRequestRow,
    CustodyEventRow,
    OrderExceptionRow,
    OrderRow,
    OrderStepRow,
    QcResultRow,
    ShipmentRow,
    SignatureRow,
    TemperatureLogRow,
    UserRow,
)

UNCHECKED = frozenset({"patient_identity"})
"""Audited as "sealed" only: the sealed value itself is not in the trail."""


@dataclass(frozen=True)
class Audited:
    """A table whose rows the trail describes, and how an entity id names a row."""

    entity_type: str
    model: type[Base]
    key: Callable[[str], object]
    label: str


def _last_int(entity_id: str) -> object:
    tail = entity_id.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _last(entity_id: str) -> object:
    return entity_id.rsplit("/", 1)[-1]


AUDITED = (
    Audited("order", OrderRow, _last, "order"),
    Audited("custody_event", CustodyEventRow, _last_int, "custody event"),
    Audited("qc_result", QcResultRow, _last_int, "QC result"),
    Audited("shipment", ShipmentRow, _last, "shipment"),
    Audited("order_exception", OrderExceptionRow, _last_int, "exception"),
    Audited("temperature_log", TemperatureLogRow, _last_int, "temperature log"),
    Audited("user", UserRow, _last, "user"),
    Audited("cosignature_request", CosignatureRequestRow, _last, "co-signature request"),
)


def _same(stored: Any, audited: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(audited, str):
        try:
            return stored == datetime.fromisoformat(audited)
        except ValueError:
            return False
    if isinstance(stored, date):
        return bool(stored.isoformat() == audited)
    if isinstance(stored, float) and isinstance(audited, int | float):
        return bool(stored == float(audited))
    return bool(stored == audited) and type(stored) is type(audited)


def record_problems(session: Session, signing_key: bytes | None = None) -> list[str]:
    """Every stored record that disagrees with its audit trail, as a sentence naming it."""
    problems: list[str] = []
    for audited in AUDITED:
        problems += _table_problems(session, audited)
    problems += _log_problems(session)
    problems += signature_problems(session, signing_key)
    return problems


def _table_problems(session: Session, audited: Audited) -> list[str]:
    expected: dict[object, tuple[str, dict[str, Any]]] = {}
    columns = frozenset(c.key for c in audited.model.__table__.columns)
    rows = session.execute(
        select(AuditEntryRow.entity_id, AuditEntryRow.changes)
        .where(AuditEntryRow.entity_type == audited.entity_type)
        .order_by(AuditEntryRow.sequence)
    )
    for entity_id, changes in rows:
        key = audited.key(entity_id)
        _, fields = expected.setdefault(key, (entity_id, {}))
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, list) and len(change) == 3 and change[0] in columns:
                fields[change[0]] = change[2]
    (pk,) = inspect(audited.model).primary_key
    problems: list[str] = []
    seen: set[object] = set()
    for row in session.scalars(select(audited.model).order_by(pk)):
        key = getattr(row, str(pk.key))
        seen.add(key)
        name = f"{audited.label} {key}"
        if key not in expected:
            problems.append(f"{name}: has no audit trail (inserted outside cartnet)")
            continue
        for field, value in sorted(expected[key][1].items()):
            stored = getattr(row, field)
            if field not in UNCHECKED and not _same(stored, value):
                shown = stored.isoformat() if isinstance(stored, date) else stored
                problems.append(
                    f"{name}: {field} is {shown!r} in the {audited.model.__tablename__} table "
                    f"but {value!r} in the audit trail (changed outside cartnet)"
                )
    for key in sorted(set(expected) - seen, key=str):
        problems.append(
            f"{audited.label} {expected[key][0]}: in the audit trail but not in the "
            f"{audited.model.__tablename__} table (deleted outside cartnet)"
        )
    return problems


def _log_problems(session: Session) -> list[str]:
    """A stored logger file must still hash to the digest recorded with it."""
    return [
        f"temperature log {log.id}: its content no longer matches its SHA-256 (edited "
        "outside cartnet)"
        for log in session.scalars(select(TemperatureLogRow).order_by(TemperatureLogRow.id))
        if hashlib.sha256(log.content.encode()).hexdigest() != log.sha256
    ]


def stored_signature(row: SignatureRow) -> ElectronicSignature:
    """The signature a row holds; ``ValueError`` if it cannot be one any more."""
    return ElectronicSignature(
        row.signer_id,
        row.printed_name,
        row.signed_at,
        SignatureMeaning(row.meaning),
        row.record_type,
        row.record_id,
        row.record_hash,
        row.signature_hash,
    )


def signature_problems(session: Session, signing_key: bytes | None) -> list[str]:
    """Signatures whose seal is broken, or that no longer bind their step's record hash.

    Without the signing key only the binding to the step can be checked.
    """
    steps: dict[str, str] = {}
    for step_id, record_hash in session.execute(select(OrderStepRow.id, OrderStepRow.record_hash)):
        steps[step_id] = record_hash
    problems: list[str] = []
    for row in session.scalars(select(SignatureRow).order_by(SignatureRow.id)):
        name = f"signature {row.id} ({row.printed_name}, {row.record_type} {row.record_id})"
        if steps.get(row.record_id) != row.record_hash:
            problems.append(f"{name}: does not bind the record it names (moved or edited)")
            continue
        if signing_key is None:
            continue
        try:
            sig = stored_signature(row)
        except ValueError as err:
            problems.append(f"{name}: not a valid signature any more ({err})")
            continue
        if not seal_intact(sig, key=signing_key):
            problems.append(f"{name}: its seal does not match (edited outside cartnet)")
    return problems
