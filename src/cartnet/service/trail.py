"""Audit entries for records written as part of another use case: steps, signatures, slots.

Each writes the record's evidence columns (:mod:`cartnet.store.evidence`) into the
trail, so ``cartnet audit verify`` can compare the stored row with them: an order step
and its signatures when a step is taken, the ``slot_usage`` counts a booking changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.slots import SlotChange
from cartnet.store.evidence import written_fields
from cartnet.store.tables import OrderStepRow, SignatureRow


def record_step(
    ctx: ServiceContext, session: Session, principal: Principal, step: OrderStepRow
) -> None:
    """Insert an order step and audit every evidence column of it."""
    ctx.add_record(
        session,
        principal,
        step,
        "order_step",
        lambda r: f"{r.order_id}/step/{r.id}",
        written_fields("order_steps"),
    )


def record_signature(
    ctx: ServiceContext, session: Session, principal: Principal, order_id: str, row: SignatureRow
) -> None:
    """Insert a signature of a step of ``order_id`` and audit it (signer in its values)."""
    ctx.add_record(
        session,
        principal,
        row,
        "signature",
        lambda r: f"{order_id}/signature/{r.id}",
        written_fields("signatures"),
        action=AuditAction.SIGN,
    )


def record_slots(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order_id: str,
    changes: Iterable[SlotChange],
) -> None:
    """Audit each ``slot_usage`` count a booking, rescheduling or cancellation changed."""
    for change in changes:
        ctx.record(
            session,
            principal,
            AuditAction.CAPACITY,
            "slot_usage",
            change.claim.entity_id,
            [("booked", change.old, change.new), ("order_id", None, order_id)],
        )
