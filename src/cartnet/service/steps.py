"""One lifecycle step of an order, with its checks and its e-signatures.

:func:`take_step` is the only way an order changes state: the lifecycle table decides
whether the step may happen now and by whom (409 / 403 otherwise); the signature
policy decides how many people must sign (21 CFR 11.50, 11.200: each re-enters their
password); the step is written as an ``order_steps`` record whose hash every signature
binds, and the state change is audited, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.audit import AuditAction, Change, ReasonCode
from cartnet.ledger.lifecycle import (
    IllegalTransition,
    OrderEvent,
    OrderState,
    TransitionRefusedError,
    authorize,
    transition_rule,
)
from cartnet.ledger.roles import Actor, Role
from cartnet.ledger.signatures import (
    ElectronicSignature,
    SignatureMeaning,
    SignatureRefusedError,
    record_hash,
    sign,
)
from cartnet.service.access import Principal, visible_orders
from cartnet.service.accounts import DatabasePasswordCheck, user_by_name
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Forbidden, Invalid, Unauthorized
from cartnet.service.schemas import SignatureInput, SignatureView, StepView
from cartnet.store.records import stored_signature
from cartnet.store.tables import OrderRow, OrderStepRow, SignatureRow

RECORD_TYPE = "order_step"


def take_step(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order: OrderRow,
    event: OrderEvent,
    *,
    reason_code: ReasonCode | None = None,
    reason_text: str | None = None,
    signatures: Sequence[SignatureInput] = (),
    details: Mapping[str, str | int | float | bool | None] | None = None,
    changes: Sequence[Change] = (),
) -> OrderStepRow:
    """Move ``order`` by ``event``: checks, step record, signatures, state and audit."""
    before = OrderState(order.state)
    try:
        rule = authorize(
            before, event, principal.role, reason_code=reason_code, reason_text=reason_text
        )
    except IllegalTransition as err:
        raise Conflict(str(err), code="illegal-transition") from None
    except TransitionRefusedError as err:
        if principal.role not in transition_roles(before, event):
            raise Forbidden(str(err)) from None
        raise Invalid(str(err), field="reason_code") from None
    now = ctx.now()
    step = OrderStepRow(
        id=new_id("stp"),
        order_id=order.id,
        event=event.value,
        from_state=before.value,
        to_state=rule.target.value,
        at=now,
        actor_id=principal.user_id,
        actor_name=principal.name,
        role=principal.role.value,
        reason_code=None if reason_code is None else reason_code.value,
        reason_text=reason_text,
        record_hash="",
    )
    content = step_content(step, order.coi, details or {})
    step.record_hash = record_hash(content)
    needed = rule.required_signatures(order.country, ctx.signature_policy)
    signed: list[ElectronicSignature] = []
    if rule.signature is not None:
        signed = _signatures(
            ctx,
            session,
            principal,
            signatures,
            rule.signature,
            rule.roles,
            step.id,
            content,
            needed,
            order.id,
        )
    elif signatures:
        raise Invalid(f"{event.value} is not a signed step; send no signatures", field="signatures")
    session.add(step)
    for sig in signed:
        session.add(_signature_row(sig))
    order.state = rule.target.value
    order.updated_at = now
    session.flush()
    ctx.record(
        session,
        principal,
        AuditAction.TRANSITION,
        "order",
        order.id,
        [("state", before.value, rule.target.value), *changes],
        reason_code=reason_code,
        reason_text=reason_text,
    )
    for sig in signed:
        ctx.record(
            session,
            principal,
            AuditAction.SIGN,
            RECORD_TYPE,
            f"{order.id}/step/{step.id}",
            [
                ("signer_id", None, sig.signer_id),
                ("meaning", None, sig.meaning.value),
                ("record_hash", None, sig.record_hash),
            ],
        )
    return step


def transition_roles(state: OrderState, event: OrderEvent) -> frozenset[Role]:
    """Who may take ``event`` in ``state`` (none if the step is not allowed at all)."""
    try:
        return transition_rule(state, event).roles
    except IllegalTransition:
        return frozenset()


def step_content(
    step: OrderStepRow, coi: str, details: Mapping[str, str | int | float | bool | None]
) -> dict[str, object]:
    """What a step's signatures bind: the step, the order's CoI and the step's details."""
    return {
        "record_type": RECORD_TYPE,
        "id": step.id,
        "order_id": step.order_id,
        "coi": coi,
        "event": step.event,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "at": step.at,
        "actor_id": step.actor_id,
        "reason_code": step.reason_code,
        "reason_text": step.reason_text,
        "details": dict(details),
    }


def _signatures(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    given: Sequence[SignatureInput],
    meaning: SignatureMeaning,
    roles: frozenset[Role],
    record_id: str,
    content: Mapping[str, object],
    needed: int,
    order_id: str,
) -> list[ElectronicSignature]:
    """Check each signer's password and authority and sign; enough different people."""
    if not given:
        raise Invalid(
            f"this step needs {needed} e-signature(s): re-enter your password", field="signatures"
        )
    if given[0].username != principal.username:
        raise Invalid("the first signature must be your own", field="signatures.0.username")
    names = [item.username for item in given]
    if len(set(names)) < len(names):
        raise Invalid("each person signs once; the same username appears twice", field="signatures")
    check = DatabasePasswordCheck(ctx, session)
    signed: list[ElectronicSignature] = []
    for i, item in enumerate(given):
        user = user_by_name(session, item.username)
        if user is None:
            raise Unauthorized(
                f"signature {i + 1}: wrong username or password", field=f"signatures.{i}"
            )
        role = Role(user.role)
        signer = Principal(user.id, user.username, user.printed_name, role, user.center, user.site)
        if role not in roles and role is not Role.QA:
            raise Forbidden(
                f"signature {i + 1}: {user.printed_name} ({role.value}) may not sign this step"
            )
        if i > 0 and not _may_see(session, signer, order_id):
            raise Forbidden(
                f"signature {i + 1}: {user.printed_name} works for another center or site and "
                "may not sign for this order"
            )
        try:
            signed.append(
                sign(
                    check.reauthenticate(user.id, item.password),
                    Actor(user.id, user.printed_name, role),
                    meaning,
                    RECORD_TYPE,
                    record_id,
                    content,
                    signed_at=ctx.now(),
                    key=ctx.signing_key,
                )
            )
        except SignatureRefusedError:
            raise Unauthorized(
                f"signature {i + 1}: wrong username or password", field=f"signatures.{i}.password"
            ) from None
    people = len({s.signer_id for s in signed})
    if people < needed:
        raise Invalid(
            f"this step needs {needed} independent signatures from different people in "
            f"this country; got {people}",
            field="signatures",
        )
    return signed


def _may_see(session: Session, signer: Principal, order_id: str) -> bool:
    """Whether a co-signer's tenancy covers the order (QA and operators: its site)."""
    query = visible_orders(signer, select(OrderRow).where(OrderRow.id == order_id))
    return session.scalar(query) is not None


def _signature_row(sig: ElectronicSignature) -> SignatureRow:
    return SignatureRow(
        record_type=sig.record_type,
        record_id=sig.record_id,
        signer_id=sig.signer_id,
        printed_name=sig.printed_name,
        signed_at=sig.signed_at,
        meaning=sig.meaning.value,
        record_hash=sig.record_hash,
        signature_hash=sig.signature_hash,
    )


def signature_view(row: SignatureRow) -> SignatureView:
    sig = stored_signature(row)
    return SignatureView(
        signer_id=sig.signer_id,
        printed_name=sig.printed_name,
        signed_at=sig.signed_at,
        meaning=sig.meaning,
        record_type=sig.record_type,
        record_id=sig.record_id,
        record_hash=sig.record_hash,
        signature_hash=sig.signature_hash,
        manifestation=sig.manifestation(),
    )


def step_view(session: Session, step: OrderStepRow) -> StepView:
    rows = session.scalars(
        select(SignatureRow)
        .where(SignatureRow.record_type == RECORD_TYPE, SignatureRow.record_id == step.id)
        .order_by(SignatureRow.id)
    )
    return StepView(
        id=step.id,
        order_id=step.order_id,
        event=OrderEvent(step.event),
        from_state=OrderState(step.from_state),
        to_state=OrderState(step.to_state),
        at=step.at,
        actor_name=step.actor_name,
        role=Role(step.role),
        reason_code=None if step.reason_code is None else ReasonCode(step.reason_code),
        record_hash=step.record_hash,
        signatures=[signature_view(r) for r in rows],
    )
