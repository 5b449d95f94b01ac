"""One lifecycle step of an order, with its checks and its e-signatures.

:func:`take_step` is the only way an order changes state: the lifecycle table decides
whether the step may happen now and by whom (409 / 403 otherwise); the signature
policy decides how many people must sign (21 CFR 11.50, 11.200: each re-enters their
password in their own session; a step that needs co-signers waits for them in
:mod:`cartnet.service.cosign` and is taken here once all have signed); the step is
written as an ``order_steps`` record whose hash every signature binds, and the state
change is audited, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.chain import Change
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import (
    IllegalTransition,
    OrderEvent,
    OrderState,
    Transition,
    TransitionRefusedError,
    authorize,
    transition_rule,
)
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import (
    ElectronicSignature,
    SignatureMeaning,
    SignatureRefusedError,
    distinct_signers,
    record_hash,
    sign,
    verify_signature,
)
from cartnet.service.access import Principal
from cartnet.service.accounts import DatabasePasswordCheck
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Forbidden, Invalid, Unauthorized
from cartnet.service.schemas import SignatureInput, SignatureView, StepView
from cartnet.service.trail import record_signature, record_step
from cartnet.store.records import stored_signature
from cartnet.store.tables import OrderRow, OrderStepRow, SignatureRow

RECORD_TYPE = "order_step"


COSIGN_IN_OWN_SESSION = (
    "co-signers sign in their own session: send only your own signature; the step then "
    "awaits co-signature (GET /api/v1/cosignatures, POST /api/v1/cosignatures/{id}/sign)"
)
"""The answer to a request that carries another person's password (an API change)."""


@dataclass(frozen=True, slots=True)
class Presigned:
    """A step whose signatures were all made before it is taken: a completed co-signature.

    The first signature fixed the step's id and time (they are in the signed content);
    :func:`take_step` writes the step with them and checks every signature against it.
    """

    step_id: str
    at: datetime
    signatures: tuple[ElectronicSignature, ...]


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
    presigned: Presigned | None = None,
) -> OrderStepRow:
    """Move ``order`` by ``event``: checks, step record, signatures, state and audit.

    A step that needs more than one signature is taken with ``presigned``, once every
    co-signer signed in their own session (:mod:`cartnet.service.cosign`).
    """
    before = OrderState(order.state)
    rule = authorize_step(principal, order, event, reason_code, reason_text)
    now = ctx.now()
    step = new_step(principal, order, rule, now, reason_code, reason_text)
    if presigned is not None:
        step.id, step.at = presigned.step_id, presigned.at
    content = step_content(step, order.coi, details or {})
    step.record_hash = record_hash(content)
    needed = signatures_needed(ctx, order, event)
    signed: list[ElectronicSignature] = []
    if rule.signature is not None and presigned is not None:
        signed = _check_presigned(ctx, presigned, content, step.id, needed)
    elif rule.signature is not None:
        if needed > 1:
            raise Conflict(
                f"{event.value} needs {needed} signatures from different people in "
                f"{order.country}: it awaits co-signature first",
                code="cosignature-needed",
            )
        signed = [
            own_signature(ctx, session, principal, signatures, rule.signature, step.id, content)
        ]
    elif signatures:
        raise Invalid(f"{event.value} is not a signed step; send no signatures", field="signatures")
    record_step(ctx, session, principal, step)
    for sig in signed:
        record_signature(ctx, session, principal, order.id, signature_row(sig))
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
    return step


def authorize_step(
    principal: Principal,
    order: OrderRow,
    event: OrderEvent,
    reason_code: ReasonCode | None,
    reason_text: str | None,
) -> Transition:
    """The rule of ``event`` now, if ``principal`` may take it: 409, 403 or 422 if not."""
    before = OrderState(order.state)
    try:
        return authorize(
            before, event, principal.role, reason_code=reason_code, reason_text=reason_text
        )
    except IllegalTransition as err:
        raise Conflict(str(err), code="illegal-transition") from None
    except TransitionRefusedError as err:
        if principal.role not in transition_roles(before, event):
            raise Forbidden(str(err)) from None
        raise Invalid(str(err), field="reason_code") from None


def new_step(
    principal: Principal,
    order: OrderRow,
    rule: Transition,
    at: datetime,
    reason_code: ReasonCode | None,
    reason_text: str | None,
) -> OrderStepRow:
    """The step record ``principal`` takes now (its record hash is set by the caller)."""
    return OrderStepRow(
        id=new_id("stp"),
        order_id=order.id,
        event=rule.event.value,
        from_state=rule.source.value,
        to_state=rule.target.value,
        at=at,
        actor_id=principal.user_id,
        actor_name=principal.name,
        role=principal.role.value,
        reason_code=None if reason_code is None else reason_code.value,
        reason_text=reason_text,
        record_hash="",
    )


def signatures_needed(ctx: ServiceContext, order: OrderRow, event: OrderEvent) -> int:
    """Independent signatures ``event`` needs for this order now (0 for unsigned steps)."""
    try:
        rule = transition_rule(OrderState(order.state), event)
    except IllegalTransition:
        return 0
    return rule.required_signatures(order.country, ctx.signature_policy)


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


def own_signature(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    given: Sequence[SignatureInput],
    meaning: SignatureMeaning,
    record_id: str,
    content: Mapping[str, object],
) -> ElectronicSignature:
    """The caller's own signature of a step: their password, checked again now.

    Another person's username and password in the request are refused: each co-signer
    signs in their own session (:mod:`cartnet.service.cosign`).
    """
    if not given:
        raise Invalid(
            "this step needs your e-signature: re-enter your password", field="signatures"
        )
    if len(given) > 1:
        raise Invalid(COSIGN_IN_OWN_SESSION, field="signatures.1")
    if given[0].username != principal.username:
        raise Invalid("the signature must be your own", field="signatures.0.username")
    check = DatabasePasswordCheck(ctx, session)
    try:
        return sign(
            check.reauthenticate(principal.user_id, given[0].password),
            principal.actor,
            meaning,
            RECORD_TYPE,
            record_id,
            content,
            signed_at=ctx.now(),
            key=ctx.signing_key,
        )
    except SignatureRefusedError:
        raise Unauthorized("wrong username or password", field="signatures.0.password") from None


def _check_presigned(
    ctx: ServiceContext,
    presigned: Presigned,
    content: Mapping[str, object],
    record_id: str,
    needed: int,
) -> list[ElectronicSignature]:
    """The co-signed step's signatures, if each binds exactly this step and enough people signed."""
    for sig in presigned.signatures:
        if not verify_signature(
            sig, content, record_type=RECORD_TYPE, record_id=record_id, key=ctx.signing_key
        ):
            raise Conflict(
                f"the signature of {sig.manifestation()} does not match the step as it would be "
                "taken now; the step cannot be taken with it",
                code="signature-mismatch",
            )
    people = distinct_signers(presigned.signatures)
    if people < needed:
        raise Conflict(
            f"this step needs {needed} independent signatures from different people; has {people}",
            code="cosignature-needed",
        )
    return list(presigned.signatures)


def signature_row(sig: ElectronicSignature) -> SignatureRow:
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
