"""An account's credentials: their seal, their audit entries, and what ``verify`` checks.

The credential columns of a ``users`` row (password hash, role, tenant, active flag,
enrolment, pending grant) are sealed with an HMAC under a key derived from the signing
key, which is not in the database: a row changed by hand (a swapped password hash, a
role granted in SQL) no longer matches its seal and is refused at login, at every
request and at signing. Every change is also an audit entry (the password as a
fingerprint), and bearer tokens and portal sessions are audited when issued and ended,
so :func:`credential_problems` can name rows that disagree with the trail even
without the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.reasons import ReasonCode
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext, audit_value
from cartnet.service.security import derived_key, fingerprint, seal
from cartnet.store.findings import Findings
from cartnet.store.records import checkable_key
from cartnet.store.tables import AuditEntryRow, TokenRow, UserRow, WebSessionRow

SEALED = (
    "id",
    "username",
    "login_name",
    "printed_name",
    "password_hash",
    "password_set_at",
    "enrolment_hash",
    "enrolment_expires",
    "role",
    "center",
    "site",
    "active",
    "pending_grant",
)
"""The columns the seal covers (not the failure counters, which change on every try)."""
AUDITED = (*(f for f in SEALED if f not in ("id", "password_hash")), "password")
"""What each account entry records; ``password`` is a fingerprint of the hash."""
LOCKOUT = ("failed_logins", "locked_until")


def seal_key(signing_key: str) -> bytes:
    return derived_key(signing_key, "credential seal")


def token_key(ctx: ServiceContext) -> bytes:
    return derived_key(ctx.settings.signing_key, "token hash")


def name_key(printed_name: str, center: str | None, site: str | None) -> str:
    """Printed names are unique per tenant (center, site, or the network), case-folded."""
    tenant = f"center:{center}" if center else f"site:{site}" if site else "network"
    return f"{tenant}|{' '.join(printed_name.casefold().split())}"


def credential_seal(key: bytes, row: UserRow) -> str:
    return seal(key, {name: audit_value(getattr(row, name)) for name in SEALED})


def reseal(ctx: ServiceContext, row: UserRow) -> None:
    row.seal = credential_seal(seal_key(ctx.settings.signing_key), row)


def seal_intact(ctx: ServiceContext, row: UserRow) -> bool:
    expected = credential_seal(seal_key(ctx.settings.signing_key), row)
    return row.seal is not None and hmac.compare_digest(row.seal, expected)


def audited_values(row: UserRow) -> dict[str, Any]:
    """The account as its audit entries record it."""
    values = {name: audit_value(getattr(row, name)) for name in AUDITED if name != "password"}
    values["password"] = fingerprint(row.password_hash)
    return values


def record_account(
    ctx: ServiceContext,
    session: Session,
    by: Principal,
    row: UserRow,
    before: dict[str, Any] | None,
    why: str,
) -> None:
    """Seal ``row`` and audit what changed since ``before`` (None: it was created)."""
    reseal(ctx, row)
    after = audited_values(row)
    if before is None:
        ctx.record(
            session,
            by,
            AuditAction.CREATE,
            "user",
            row.id,
            [(k, None, v) for k, v in after.items()],
        )
        return
    changes = [(k, before[k], v) for k, v in after.items() if before.get(k) != v]
    if changes:
        ctx.record(
            session,
            by,
            AuditAction.UPDATE,
            "user",
            row.id,
            changes,
            reason_code=ReasonCode.OTHER,
            reason_text=why,
        )


def record_lockout(
    ctx: ServiceContext,
    session: Session,
    by: Principal,
    row: UserRow,
    before: tuple[Any, Any],
    why: str,
) -> None:
    """Audit a change of the failure counter and lockout of ``row``."""
    after = (row.failed_logins, audit_value(row.locked_until))
    old = (before[0], audit_value(before[1]))
    changes = [(n, o, v) for n, o, v in zip(LOCKOUT, old, after, strict=True) if o != v]
    if changes:
        ctx.record(
            session,
            by,
            AuditAction.UPDATE,
            "user",
            row.id,
            changes,
            reason_code=ReasonCode.OTHER,
            reason_text=why,
        )


# --- verify -------------------------------------------------------------------------------


def _trail(session: Session, entity_type: str) -> dict[str, dict[str, Any]]:
    """The latest audited value of each field, per entity id of ``entity_type``."""
    found: dict[str, dict[str, Any]] = {}
    rows = session.execute(
        select(AuditEntryRow.entity_id, AuditEntryRow.changes)
        .where(AuditEntryRow.entity_type == entity_type)
        .order_by(AuditEntryRow.sequence)
    )
    for entity_id, changes in rows:
        fields = found.setdefault(entity_id, {})
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, list) and len(change) == 3 and isinstance(change[0], str):
                fields[change[0]] = change[2]
    return found


def _same(stored: object, audited: object) -> bool:
    if isinstance(stored, datetime):
        return isinstance(audited, str) and audit_value(stored) == audited
    return stored == audited


def credential_findings(session: Session, signing_key: bytes | None) -> Findings:
    """The accounts check of ``cartnet audit verify``: :func:`credential_problems`, the
    seals only with the key the database was written with (else a notice says so)."""
    key, notice = checkable_key(session, signing_key, "credential seals")
    found = Findings(credential_problems(session, None if key is None else key.decode()))
    if notice is not None:
        found.notices.append(notice)
    return found


def credential_problems(session: Session, signing_key: str | None) -> list[str]:
    """Accounts, bearer tokens and portal sessions whose rows disagree with the trail
    (or, with the signing key, with their seal): changed or inserted outside cartnet."""
    problems: list[str] = []
    users = _trail(session, "user")
    key = None if signing_key is None else seal_key(signing_key)
    names: dict[str, str] = {}
    for row in session.scalars(select(UserRow).order_by(UserRow.id)):
        names[row.id] = row.username
        name = f"user {row.username} ({row.id})"
        audited = users.get(row.id, {})
        if "password" not in audited:
            problems.append(
                f"{name}: its credentials were never recorded in the audit trail (made "
                "outside cartnet, or before credential auditing: `cartnet users seal`)"
            )
        elif audited["password"] != fingerprint(row.password_hash):
            problems.append(
                f"{name}: its password hash is not the one the audit trail last recorded "
                "(swapped outside cartnet)"
            )
        for field in (*AUDITED, *LOCKOUT):
            if field != "password" and field in audited:
                stored = getattr(row, field)
                if not _same(stored, audited[field]):
                    problems.append(
                        f"{name}: {field} is {audit_value(stored)!r} in the users table but "
                        f"{audited[field]!r} in the audit trail (changed outside cartnet)"
                    )
        if key is not None and not (
            row.seal is not None and hmac.compare_digest(row.seal, credential_seal(key, row))
        ):
            problems.append(f"{name}: its credential seal does not match (changed outside cartnet)")
    for sequence, entity_id, when in session.execute(
        select(AuditEntryRow.sequence, AuditEntryRow.entity_id, AuditEntryRow.timestamp)
        .where(
            AuditEntryRow.entity_type == "user",
            AuditEntryRow.reason_text.contains("altered outside cartnet"),
        )
        .order_by(AuditEntryRow.sequence)
    ):
        problems.append(
            f"user {names.get(entity_id, entity_id)} ({entity_id}): at {audit_value(when)} "
            f"(audit entry {sequence}) a password was tried against credentials changed "
            "outside cartnet"
        )
    problems += _issued(session, TokenRow, "token", "bearer token", ("revoked_at",), names)
    problems += _issued(
        session, WebSessionRow, "web_session", "portal session", ("ended_at",), names
    )
    return problems


def _issued(
    session: Session,
    model: Any,
    entity_type: str,
    label: str,
    ended: Iterable[str],
    names: dict[str, str],
) -> list[str]:
    trail = _trail(session, entity_type)
    problems: list[str] = []
    seen: set[str] = set()
    for row in session.scalars(select(model).order_by(model.token_hash)):
        seen.add(row.token_hash)
        name = f"{label} {row.token_hash[:12]}… of {names.get(row.user_id, row.user_id)}"
        audited = trail.get(row.token_hash)
        if audited is None:
            problems.append(f"{name}: has no audit trail (inserted outside cartnet)")
            continue
        for field in ("user_id", *ended):
            if field in audited and not _same(getattr(row, field), audited[field]):
                problems.append(
                    f"{name}: {field} is {audit_value(getattr(row, field))!r} in the "
                    f"{model.__tablename__} table but {audited[field]!r} in the audit trail "
                    "(changed outside cartnet)"
                )
        for field in ended:
            if field not in audited and getattr(row, field) is not None:
                problems.append(f"{name}: {field} was set outside cartnet")
    for token in sorted(set(trail) - seen):
        problems.append(
            f"{label} {token[:12]}…: in the audit trail but not in the {model.__tablename__} "
            "table (deleted outside cartnet)"
        )
    return problems
