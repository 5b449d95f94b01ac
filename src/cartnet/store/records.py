"""Do the stored records say what their audit trail says?

The hash chain proves the trail itself untouched; this check ties the operational rows
to it. Folding every audited change of a record, oldest first, gives the value each
evidence column (:mod:`cartnet.store.evidence`) must have now; a row that differs was
changed outside the service (an UPDATE in the database), a row with no trail was
inserted outside it, a trail with no row lost its row (a DELETE). A column the trail
never mentions must still hold nothing. Records of orders audited before the trail
held every column (migration 0007) cannot be checked in full: they are reported as
notices, not as verified. Stored e-signatures are also checked against their seal
(with the signing key) and against the step they sign.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, Table, select
from sqlalchemy.orm import Session

from cartnet.ledger.signatures import ElectronicSignature, SignatureMeaning, seal_intact
from cartnet.store.evidence import COVERAGE_REVISION, GXP_TABLES, GxpTable, sha256_text
from cartnet.store.findings import Findings
from cartnet.store.tables import (
    AuditEntryRow,
    Base,
    KeyCheckRow,
    OrderStepRow,
    PlanApplicationRow,
    SignatureRow,
    TrailCoverageRow,
)


@dataclass
class _Trail:
    """What the trail says of one record: its entity id, first sequence, fields' values."""

    entity_id: str
    first: int
    fields: dict[str, Any] = field(default_factory=dict)


def _trails(session: Session) -> dict[str, dict[tuple[str, ...], _Trail]]:
    """Per entity type, per key (the entity id's last parts), the folded trail."""
    keys = {t.entity_type: len(t.key) for t in GXP_TABLES}
    trails: dict[str, dict[tuple[str, ...], _Trail]] = defaultdict(dict)
    rows = session.execute(
        select(
            AuditEntryRow.sequence,
            AuditEntryRow.entity_type,
            AuditEntryRow.entity_id,
            AuditEntryRow.changes,
        ).order_by(AuditEntryRow.sequence)
    )
    for sequence, entity_type, entity_id, changes in rows:
        size = keys.get(entity_type)
        if size is None:
            continue
        key = tuple(str(entity_id).split("/")[-size:])
        trail = trails[entity_type].setdefault(key, _Trail(str(entity_id), sequence))
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, list) and len(change) == 3 and isinstance(change[0], str):
                trail.fields[change[0]] = change[2]
    return trails


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


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


def _coverage(session: Session) -> int:
    """The audit sequence up to which records may predate full coverage (0: none may)."""
    return session.scalar(select(TrailCoverageRow.since_sequence)) or 0


def record_findings(session: Session, signing_key: bytes | None = None) -> Findings:
    """Every GxP record that disagrees with its trail (problems) or predates it (notices)."""
    trails = _trails(session)
    orders = {key[0]: trail.first for key, trail in trails.get("order", {}).items()}
    findings = Findings()
    mark = _coverage(session)
    for declared in GXP_TABLES:
        findings.add(
            _table_findings(session, declared, trails.get(declared.entity_type, {}), orders, mark)
        )
    return findings


def _table_findings(
    session: Session,
    declared: GxpTable,
    trails: Mapping[tuple[str, ...], _Trail],
    orders: Mapping[str, int],
    mark: int,
) -> Findings:
    table: Table = Base.metadata.tables[declared.table]
    findings = Findings()
    seen: set[tuple[str, ...]] = set()
    older: dict[str, int] = defaultdict(int)  # column -> rows that predate its coverage
    untrailed = 0
    for row in session.execute(select(table).order_by(*table.primary_key.columns)).mappings():
        key = tuple(_text(row[c]) for c in declared.key)
        seen.add(key)
        name = f"{declared.label} {'/'.join(key)}"
        trail = trails.get(key)
        legacy = mark > 0 and _predates(declared, row, trail, orders, mark)
        if trail is None:
            if legacy:
                untrailed += 1
            else:
                findings.problems.append(f"{name}: has no audit trail (inserted outside cartnet)")
            continue
        for column in declared.evidence:
            stored = row[column]
            if column in trail.fields:
                audited = trail.fields[column]
                if not _same(stored, audited):
                    findings.problems.append(
                        f"{name}: {column} is {_shown(stored)!r} in the {declared.table} table "
                        f"but {audited!r} in the audit trail (changed outside cartnet)"
                    )
            elif stored is not None:
                if legacy:
                    older[column] += 1
                else:
                    findings.problems.append(
                        f"{name}: {column} is {_shown(stored)!r} in the {declared.table} table "
                        "but not in its audit trail (set outside cartnet)"
                    )
        for column, trail_field in declared.digests.items():
            digest = sha256_text(row[column])
            if trail_field not in trail.fields:
                if legacy:
                    older[column] += 1
                else:
                    findings.problems.append(
                        f"{name}: the audit trail holds no SHA-256 of its {column}"
                    )
            elif trail.fields[trail_field] != digest:
                findings.problems.append(
                    f"{name}: its {column} no longer matches the SHA-256 in its audit trail "
                    "(changed outside cartnet)"
                )
    for key in sorted(set(trails) - seen):
        findings.problems.append(
            f"{declared.label} {trails[key].entity_id}: in the audit trail but not in the "
            f"{declared.table} table (deleted outside cartnet)"
        )
    if untrailed:
        findings.notices.append(
            f"{declared.table}: {untrailed} row(s) written before the audit trail covered "
            f"this table (migration {COVERAGE_REVISION}) have no trail; not checked"
        )
    if older:
        columns = ", ".join(f"{c} ({n})" for c, n in sorted(older.items()))
        findings.notices.append(
            f"{declared.table}: columns written before the audit trail covered them "
            f"(migration {COVERAGE_REVISION}) are not checked: {columns} row(s)"
        )
    return findings


def _predates(
    declared: GxpTable,
    row: RowMapping,
    trail: _Trail | None,
    orders: Mapping[str, int],
    mark: int,
) -> bool:
    """Whether the record, or the order it belongs to, was audited before full coverage."""
    if trail is not None and trail.first <= mark:
        return True
    if not declared.per_order:
        return trail is None
    if trail is not None:
        order_id: object = trail.entity_id.split("/")[0]
    else:
        order_id = row["id"] if declared.entity_type == "order" else row.get("order_id")
    first = orders.get(str(order_id))
    return first is None or first <= mark


# --- e-signatures ------------------------------------------------------------------------


def key_fingerprint(key: str) -> str:
    """An HMAC of a fixed text under the key: tells keys apart, reveals nothing of them."""
    return hmac.new(key.encode(), b"cartnet key check", hashlib.sha256).hexdigest()


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


def checkable_key(
    session: Session, signing_key: bytes | None, what: str
) -> tuple[bytes | None, str | None]:
    """The signing key if seals can be checked with it, else ``None`` and a notice why not.

    Another key than the one the database was written with (``key_checks``) would make
    every seal look forged, so seals are then not checked at all.
    """
    if signing_key is None:
        return None, (
            f"{what} not checked: no signing key (CARTNET_SIGNING_KEY or "
            "signing-key.txt in the data directory)"
        )
    recorded = session.get(KeyCheckRow, "signing_key")
    if recorded is not None and recorded.fingerprint != key_fingerprint(signing_key.decode()):
        return None, (
            f"{what} not checked: the signing key given is not the one this "
            "database was written with (table key_checks)"
        )
    return signing_key, None


SIGNED_RECORDS: tuple[tuple[str, type[OrderStepRow] | type[PlanApplicationRow]], ...] = (
    ("order_step", OrderStepRow),
    ("plan_application", PlanApplicationRow),
)
"""The records a signature may bind, by its ``record_type``: each has ``record_hash``."""


def signature_findings(session: Session, signing_key: bytes | None) -> Findings:
    """Signatures whose seal is broken, or that no longer bind their record's hash.

    A signature names its record by type and id: an order step, or a planner's
    application of an optimization plan.

    Without the signing key, or with another key than the one the database was written
    with (``key_checks``), seals cannot be checked: a notice says so, only the binding
    to the step is checked.
    """
    findings = Findings()
    signing_key, notice = checkable_key(session, signing_key, "signature seals")
    if notice is not None:
        findings.notices.append(notice)
    signed: dict[tuple[str, str], str] = {}
    for record_type, table in SIGNED_RECORDS:
        for record_id, hashed in session.execute(select(table.id, table.record_hash)):
            signed[(record_type, record_id)] = hashed
    for row in session.scalars(select(SignatureRow).order_by(SignatureRow.id)):
        name = f"signature {row.id} ({row.printed_name}, {row.record_type} {row.record_id})"
        if signed.get((row.record_type, row.record_id)) != row.record_hash:
            findings.problems.append(f"{name}: does not bind the record it names (moved or edited)")
            continue
        if signing_key is None:
            continue
        try:
            sig = stored_signature(row)
        except ValueError as err:
            findings.problems.append(f"{name}: not a valid signature any more ({err})")
            continue
        if not seal_intact(sig, key=signing_key):
            findings.problems.append(f"{name}: its seal does not match (edited outside cartnet)")
    return findings


def record_problems(session: Session, signing_key: bytes | None = None) -> list[str]:
    """The problems of :func:`record_findings` and :func:`signature_findings` (no notices)."""
    found = record_findings(session, signing_key)
    found.add(signature_findings(session, signing_key))
    return found.problems
