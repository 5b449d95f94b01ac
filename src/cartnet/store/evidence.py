"""Which columns are evidence: written into the audit trail and compared by ``verify``.

21 CFR 11.10(e) wants an audit trail of every change to an electronic record, and
``cartnet audit verify`` can only vouch for what the trail holds. So every column of
every table is declared here, once:

- a **GxP table** (:class:`GxpTable`) lists its *evidence* columns, whose values go into
  the audit entry when the row is written or changed and which ``verify`` compares with
  the row; its *key* columns, which are part of the entry's entity id; columns kept as a
  SHA-256 in the trail (*digests*, for content too large or too secret to copy); and,
  for every other column, why it is **not evidence**;
- a table that holds no GxP record (:data:`NOT_GXP`) says why.

``tests/store/test_evidence.py`` reads the columns from the SQLAlchemy metadata and
fails on a table or column declared nowhere, so a new column must be decided on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import MetaData

COVERAGE_REVISION = "0007"
"""The migration from which the trail holds every evidence column of every GxP table."""


@dataclass(frozen=True)
class GxpTable:
    """A table of GxP records and how the trail describes each of its columns.

    ``entity_type`` is the audit entries' ``entity_type`` of its rows; the entity id ends
    with the ``key`` columns' values, joined by ``/``. ``per_order``: the entity id
    starts with the order's id.
    """

    table: str
    entity_type: str
    label: str
    key: tuple[str, ...]
    evidence: tuple[str, ...]
    not_evidence: Mapping[str, str] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)
    """Column -> the trail field that holds the SHA-256 of its value (hex)."""
    per_order: bool = True

    def columns(self) -> frozenset[str]:
        """Every column this declaration decides on."""
        return frozenset(
            [*self.key, *self.evidence, *self.not_evidence, *self.digests],
        )


_ORDER_VERSION = "SQLAlchemy's optimistic-lock counter; no fact about the therapy"
_UPDATED_AT = (
    "time of the row's last change, kept for sorting; the time of each change is the "
    "timestamp of its audit entry"
)
_ACCOUNTS = (
    "account credentials and state; their changes are checked by the accounts check "
    "of verify (issue 13, finding 2), not by this table's fold"
)

GXP_TABLES: tuple[GxpTable, ...] = (
    GxpTable(
        "orders",
        "order",
        "order",
        key=("id",),
        evidence=(
            "coi",
            "center",
            "market",
            "product",
            "scope",
            "trial",
            "state",
            "pseudonym",
            "country",
            "earliest_apheresis",
            "site",
            "apheresis_on",
            "start_on",
            "release_on",
            "delivery_on",
            "infusion_on",
            "din",
            "created_at",
        ),
        digests={"patient_identity": "patient_identity_sha256"},
        not_evidence={"updated_at": _UPDATED_AT, "version": _ORDER_VERSION},
        per_order=True,
    ),
    GxpTable(
        "custody_events",
        "custody_event",
        "custody event",
        key=("id",),
        evidence=(
            "order_id",
            "step",
            "actor_id",
            "actor_name",
            "role",
            "organisation",
            "place",
            "at",
            "utc_offset_minutes",
            "temperature_c",
            "scanned",
            "accepted",
            "refusal_reason",
        ),
    ),
    GxpTable(
        "order_steps",
        "order_step",
        "order step",
        key=("id",),
        evidence=(
            "order_id",
            "event",
            "from_state",
            "to_state",
            "at",
            "actor_id",
            "actor_name",
            "role",
            "reason_code",
            "reason_text",
            "record_hash",
        ),
    ),
    GxpTable(
        "signatures",
        "signature",
        "signature",
        key=("id",),
        evidence=(
            "record_type",
            "record_id",
            "signer_id",
            "printed_name",
            "signed_at",
            "meaning",
            "record_hash",
            "signature_hash",
        ),
    ),
    GxpTable(
        "collections",
        "collection",
        "collection",
        key=("id",),
        evidence=("order_id", "din", "collected_at"),
    ),
    GxpTable(
        "qc_results",
        "qc_result",
        "QC result",
        key=("id",),
        evidence=(
            "order_id",
            "test",
            "result",
            "specification",
            "passed",
            "tested_at",
            "recorded_at",
            "recorded_by",
        ),
    ),
    GxpTable(
        "shipments",
        "shipment",
        "shipment",
        key=("id",),
        evidence=(
            "order_id",
            "direction",
            "courier",
            "tracking",
            "low_c",
            "high_c",
            "created_at",
            "created_by",
        ),
    ),
    GxpTable(
        "temperature_logs",
        "temperature_log",
        "temperature log",
        key=("id",),
        evidence=(
            "shipment_id",
            "uploaded_at",
            "uploaded_by",
            "sha256",
            "readings",
            "excursions",
        ),
        digests={"content": "sha256"},
    ),
    GxpTable(
        "order_exceptions",
        "order_exception",
        "exception",
        key=("id",),
        evidence=(
            "order_id",
            "kind",
            "detail",
            "raised_at",
            "raised_by",
            "closed_at",
            "closed_by",
            "closure_reason",
        ),
    ),
    GxpTable(
        "slot_usage",
        "slot_usage",
        "slot usage",
        key=("kind", "resource", "day"),
        evidence=("booked",),
        per_order=False,
    ),
    GxpTable(
        "quotas",
        "quota",
        "quota",
        key=("id",),
        evidence=(
            "site",
            "holder_kind",
            "holder",
            "slots",
            "share",
            "period_start",
            "period_end",
            "release_days",
            "created_at",
            "created_by",
            "retired_at",
            "retired_by",
        ),
        per_order=False,
    ),
    GxpTable(
        "users",
        "user",
        "user",
        key=("id",),
        evidence=("username", "printed_name", "role", "center", "site"),
        not_evidence={
            "login_name": _ACCOUNTS,
            "password_hash": _ACCOUNTS,
            "password_set_at": _ACCOUNTS,
            "enrolment_hash": _ACCOUNTS,
            "enrolment_expires": _ACCOUNTS,
            "active": _ACCOUNTS,
            "pending_grant": _ACCOUNTS,
            "failed_logins": _ACCOUNTS,
            "locked_until": _ACCOUNTS,
            "seal": (
                "the HMAC over the credential columns under a key derived from the signing "
                "key; the accounts check of verify recomputes it"
            ),
            "name_key": (
                "printed_name and tenant folded to keep printed names unique per tenant; "
                "derived from evidence columns, no fact of its own"
            ),
            "created_at": "the time of the account's create entry in the trail is the evidence",
        },
        per_order=False,
    ),
    GxpTable(
        "plan_applications",
        "plan_application",
        "plan application",
        key=("id",),
        evidence=("job_id", "applied_at", "actor_id", "actor_name", "record_hash"),
        digests={"moves": "moves_sha256"},
        per_order=False,
    ),
    GxpTable(
        "cosignature_requests",
        "cosignature_request",
        "co-signature request",
        key=("id",),
        evidence=(
            "order_id",
            "event",
            "kind",
            "step_id",
            "step_at",
            "from_state",
            "record_hash",
            "meaning",
            "required",
            "tenant",
            "requested_by",
            "created_at",
            "expires_at",
            "state",
            "closed_at",
        ),
        not_evidence={
            "payload": (
                "the request the step is taken with once co-signed; every part the step "
                "records (its details, reason, the order's state and CoI) is bound by the "
                "signatures' record hash, which completion re-checks against each seal, "
                "so an edited payload makes the step refuse to be taken; the step, its "
                "custody event and collection are then evidence of their own"
            ),
            "signatures": (
                "sealed e-signatures awaiting the step: completion re-checks each seal and "
                "record hash before the step is taken, and each becomes a signatures row "
                "(evidence); each signer is in a sign entry of the request's trail"
            ),
        },
    ),
)
"""Every table that holds GxP records, in the order ``verify`` reports them."""

NOT_GXP: Mapping[str, str] = {
    "audit_entries": "the audit trail itself: its hash chain is checked entry by entry",
    "audit_head": "the chain's head kept apart: checked against the chain",
    "counters": (
        "next numbers for CoI and DIN sequences; the identifiers themselves are evidence "
        "(orders.coi, collections.din) and unique in the database"
    ),
    "tokens": _ACCOUNTS,
    "web_sessions": (
        "portal log-in sessions: access control, not a record of the therapy; issued and "
        "ended as audit entries that the accounts check of verify compares with the rows"
    ),
    "idempotency_keys": ("stored responses for retried bookings; the booking itself is audited"),
    "key_checks": (
        "fingerprints of the keys; the service refuses to start with other keys and "
        "verify refuses to check seals with another signing key"
    ),
    "jobs": (
        "the portal's long computations (what-if runs, plans): planning aids whose results "
        "change no order; a booking they lead to is audited as such"
    ),
    "trail_coverage": (
        "where full coverage began (migration 0007); rows older than it are reported as "
        "not checked, never as verified"
    ),
}
"""Tables that hold no GxP record, with the reason."""


def gxp_table(table: str) -> GxpTable:
    """The declaration of one GxP table; ``KeyError`` if it is not one."""
    for declared in GXP_TABLES:
        if declared.table == table:
            return declared
    raise KeyError(f"{table} is not declared as a GxP table in cartnet.store.evidence")


def written_fields(table: str) -> list[str]:
    """The evidence columns a new row's create entry records (all but the order's plan).

    Columns set later by their own audited change (an order's plan, an exception's
    closing) are written with that change instead, and read as ``None`` until then.
    """
    return [c for c in gxp_table(table).evidence if c not in _SET_LATER.get(table, ())]


_SET_LATER: Mapping[str, tuple[str, ...]] = {
    "orders": (
        "site",
        "apheresis_on",
        "start_on",
        "release_on",
        "delivery_on",
        "infusion_on",
        "din",
    ),
    "order_exceptions": ("closed_at", "closed_by", "closure_reason"),
    "cosignature_requests": ("closed_at",),
    "quotas": ("retired_at", "retired_by"),
}


def sha256_text(value: object) -> str:
    """The SHA-256 (hex) of a value's text, as the trail keeps a digest column."""
    return hashlib.sha256(str(value).encode()).hexdigest()


def undeclared(metadata: MetaData) -> list[str]:
    """Tables and columns of ``metadata`` decided nowhere here (``table.column``); and
    columns declared for a GxP table that it does not have."""
    found: list[str] = []
    gxp = {t.table: t for t in GXP_TABLES}
    for name, table in sorted(metadata.tables.items()):
        declared = gxp.get(name)
        if declared is None:
            if name not in NOT_GXP:
                found.append(f"{name}: neither a GxP table nor listed as not GxP")
            continue
        columns = {c.name for c in table.columns}
        found += [f"{name}.{c}: neither evidence nor not evidence" for c in
                  sorted(columns - declared.columns())]  # fmt: skip
        found += [f"{name}.{c}: declared but not a column" for c in
                  sorted(declared.columns() - columns)]  # fmt: skip
    return found
