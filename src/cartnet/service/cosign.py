"""Co-signatures: a step that needs several people waits until each signs in their own session.

Where the country asks for more than one independent signature at a step, the first
signer's request does not take the step: it fixes it (its id, time and record hash),
keeps the first signature, and records a *co-signature request* that expires after
``cosignature_hours``. The order does not move. Each co-signer, logged in with their
own token or portal session, sees the requests they may sign and signs one by
re-entering their password and declaring the step's meaning (step-up
re-authentication in their own client, 21 CFR 11.200(a)); nobody ever types another
person's password. The last signature takes the step exactly as a single-signer step
is taken (:func:`cartnet.service.steps.take_step`: same checks, records, signatures,
seals and audit entries), as the first signer, who can withdraw the request until then.

Who may co-sign is the :class:`~cartnet.ledger.signatures.SignatureRule` of the step
and the order's country: a role it names (by default the roles that may take the step)
and the tenant where the step happens (the order's center or site) unless the rule
allows other tenants; never the first signer, never twice. A refused co-signature says
the same for a wrong password, a request that does not exist and a person who may not
sign it: the answer tells nothing about the request or anyone else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import OrderEvent, OrderState, transition_rule
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.signatures import (
    ElectronicSignature,
    Reauthentication,
    SignatureMeaning,
    SignatureRefusedError,
    distinct_signers,
    record_hash,
    sign_record_hash,
    step_tenant,
)
from cartnet.service.access import Principal, visible_orders
from cartnet.service.accounts import DatabasePasswordCheck, principal_of
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Forbidden, Invalid
from cartnet.service.schemas import (
    CosignatureList,
    CosignatureView,
    CosignInput,
    SignatureInput,
    StepResult,
)
from cartnet.service.steps import (
    RECORD_TYPE,
    Presigned,
    authorize_step,
    new_step,
    own_signature,
    signatures_needed,
    step_content,
)
from cartnet.store.evidence import written_fields
from cartnet.store.tables import CosignatureRequestRow, OrderRow, UserRow

ENTITY = "cosignature_request"
PENDING, COMPLETED, WITHDRAWN, EXPIRED = "pending", "completed", "withdrawn", "expired"
REFUSED = (
    "co-signature refused: check your password; you can co-sign only the steps listed as "
    "awaiting you"
)
"""The one answer to a wrong password, an unknown request and a person who may not sign."""
MAX_LISTED = 200

Details = Mapping[str, str | int | float | bool | None]


def request_cosignature(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    order: OrderRow,
    event: OrderEvent,
    *,
    kind: str,
    payload: Mapping[str, Any],
    details: Details,
    signatures: Sequence[SignatureInput],
    reason_code: ReasonCode | None = None,
    reason_text: str | None = None,
) -> StepResult:
    """Sign ``event`` as its first signer and leave it awaiting co-signature.

    ``kind`` and ``payload`` say how to take the step later (``custody``: the custody
    request; ``event``: the event request), without signatures. Checked as the step
    itself is (409 / 403 / 422, the first signer's password); nothing moves the order.
    """
    from cartnet.service.orders.view import order_view  # orders → custody → here

    rule = authorize_step(principal, order, event, reason_code, reason_text)
    if rule.signature is None:
        raise Invalid(f"{event.value} is not a signed step", field="signatures")
    now = ctx.now()
    step = new_step(principal, order, rule, now, reason_code, reason_text)
    content = step_content(step, order.coi, details)
    first = own_signature(ctx, session, principal, signatures, rule.signature, step.id, content)
    row = CosignatureRequestRow(
        id=new_id("csr"),
        order_id=order.id,
        event=event.value,
        kind=kind,
        payload={"request": dict(payload), "details": dict(details)},
        step_id=step.id,
        step_at=now,
        from_state=order.state,
        record_hash=record_hash(content),
        meaning=rule.signature.value,
        required=signatures_needed(ctx, order, event),
        tenant=step_tenant(event.value),
        requested_by=principal.user_id,
        signatures=[_stored(first)],
        created_at=now,
        expires_at=now + ctx.settings.cosignature_lifetime,
        state=PENDING,
        closed_at=None,
    )
    ctx.add_record(
        session,
        principal,
        row,
        ENTITY,
        lambda r: _entity_id(r),
        written_fields("cosignature_requests"),
        also=[("signer_id", None, first.signer_id)],
    )
    return StepResult(
        order=order_view(ctx, session, order),
        step=None,
        custody=None,
        pending=_view(session, row, now),
    )


def cosignatures(ctx: ServiceContext, principal: Principal) -> CosignatureList:
    """The requests ``principal`` may co-sign now, and their own that await others."""
    now = ctx.now()
    with ctx.reading() as session:
        visible = visible_orders(principal).with_only_columns(OrderRow.id)
        rows = session.scalars(
            select(CosignatureRequestRow)
            .where(
                CosignatureRequestRow.state == PENDING,
                CosignatureRequestRow.expires_at > now,
                CosignatureRequestRow.order_id.in_(visible),
            )
            .order_by(CosignatureRequestRow.created_at, CosignatureRequestRow.id)
            .limit(MAX_LISTED)
        ).all()
        awaiting = [
            _view(session, row, now)
            for row in rows
            if not _signed_by(row, principal)
            and _may_cosign(ctx, session, principal, row, session.get_one(OrderRow, row.order_id))
        ]
        mine = session.scalars(
            select(CosignatureRequestRow)
            .where(
                CosignatureRequestRow.requested_by == principal.user_id,
                CosignatureRequestRow.state == PENDING,
            )
            .order_by(CosignatureRequestRow.created_at, CosignatureRequestRow.id)
            .limit(MAX_LISTED)
        ).all()
        return CosignatureList(
            awaiting_you=awaiting, yours=[_view(session, row, now) for row in mine]
        )


def cosign(
    ctx: ServiceContext, principal: Principal, request_id: str, body: CosignInput
) -> tuple[CosignatureView, StepResult | None]:
    """Add ``principal``'s signature; the last one takes the step.

    The password is checked first, outside the write transaction, for every request, so
    that a wrong password, an unknown request and a person who may not sign are refused
    alike (403, :data:`REFUSED`). Then: the first signer and a second signature of the
    same person are refused (409), an expired request is closed and refused (409
    ``cosignature-expired``), a meaning other than the step's is refused (422).
    """
    with ctx.reading() as session:
        reauth = DatabasePasswordCheck(ctx, session).reauthenticate(
            principal.user_id, body.password
        )
    expired: datetime | None = None
    with ctx.transaction() as session:
        row = session.get(CosignatureRequestRow, request_id, with_for_update=True)
        order = None if row is None else session.get(OrderRow, row.order_id)
        if row is None or order is None or not reauth.passed:
            raise Forbidden(REFUSED, field="password", code="cosignature-refused")
        _check_signer(row, principal)
        if not _may_cosign(ctx, session, principal, row, order):
            raise Forbidden(REFUSED, field="password", code="cosignature-refused")
        if row.state != PENDING:
            raise Conflict(f"this step is {row.state}; it awaits no signature", code="not-pending")
        now = ctx.now()
        if row.expires_at > now:
            return _add_signature(ctx, session, principal, row, order, body, reauth)
        _close(ctx, session, principal, row, EXPIRED, now)
        expired = row.expires_at
    raise Conflict(
        f"this step waited for co-signature until {expired:%Y-%m-%d %H:%M UTC} and expired; "
        "the first signer must sign the step again",
        code="cosignature-expired",
    )


def withdraw(ctx: ServiceContext, principal: Principal, request_id: str) -> CosignatureView:
    """The first signer ends a request that still awaits co-signature; nothing is taken."""
    with ctx.transaction() as session:
        row = session.get(CosignatureRequestRow, request_id, with_for_update=True)
        if row is None or row.requested_by != principal.user_id:
            raise Forbidden(
                "you can withdraw only a step you signed first that awaits co-signature",
                code="not-yours",
            )
        if row.state != PENDING:
            raise Conflict(f"this request is {row.state}; only a pending one can be withdrawn")
        now = ctx.now()
        _close(ctx, session, principal, row, WITHDRAWN, now)
        return _view(session, row, now)


def _check_signer(row: CosignatureRequestRow, principal: Principal) -> None:
    """409 for the first signer and for a second signature of one person."""
    if row.requested_by == principal.user_id:
        raise Conflict(
            "you signed this step first; another person must co-sign it",
            code="same-signer",
        )
    if _signed_by(row, principal):
        raise Conflict(
            "you have already signed this step; one person signs once", code="same-signer"
        )


def _add_signature(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: CosignatureRequestRow,
    order: OrderRow,
    body: CosignInput,
    reauth: Reauthentication,
) -> tuple[CosignatureView, StepResult | None]:
    meaning = SignatureMeaning(row.meaning)
    if body.meaning is not meaning:
        raise Invalid(
            f"this step is signed with the meaning {meaning.value!r}; declare that meaning",
            field="meaning",
        )
    now = ctx.now()
    try:
        sig = sign_record_hash(
            reauth,
            principal.actor,
            meaning,
            RECORD_TYPE,
            row.step_id,
            row.record_hash,
            signed_at=now,
            key=ctx.signing_key,
        )
    except SignatureRefusedError:
        raise Forbidden(REFUSED, field="password", code="cosignature-refused") from None
    row.signatures = [*row.signatures, _stored(sig)]
    ctx.record(
        session,
        principal,
        AuditAction.SIGN,
        ENTITY,
        _entity_id(row),
        [
            ("signer_id", None, sig.signer_id),
            ("meaning", None, sig.meaning.value),
            ("record_hash", None, sig.record_hash),
        ],
    )
    signed = [_signature(s) for s in row.signatures]
    needed = max(row.required, signatures_needed(ctx, order, OrderEvent(row.event)))
    result = None
    if distinct_signers(signed) >= needed:
        result = _complete(ctx, session, row, order, tuple(signed))
        _close(ctx, session, principal, row, COMPLETED, now)
    session.flush()
    return _view(session, row, now), result


def _complete(
    ctx: ServiceContext,
    session: Session,
    row: CosignatureRequestRow,
    order: OrderRow,
    signed: tuple[ElectronicSignature, ...],
) -> StepResult:
    """Take the step as its first signer would have, with every signature made."""
    from cartnet.service import custody, orders  # they route new requests here
    from cartnet.service.access import load_order
    from cartnet.service.schemas import CustodyRequest, EventRequest

    user = session.get(UserRow, row.requested_by)
    if user is None or not user.active:
        raise Conflict(
            "the first signer's account is disabled; the step cannot be taken in their name",
            code="signer-disabled",
        )
    first = principal_of(user)
    order = load_order(session, first, order.id, for_update=True)
    if order.state != row.from_state:
        raise Conflict(
            f"the order is {order.state} now, not {row.from_state} as when the step was "
            "signed first; it can no longer be taken",
            code="illegal-transition",
        )
    presigned = Presigned(row.step_id, row.step_at, signed)
    request = row.payload["request"]
    if row.kind == "custody":
        body = CustodyRequest.model_validate(request)
        din = row.payload["details"].get("din")
        return custody.take_custody_step(ctx, session, first, order, body, presigned, din)
    return orders.take_event(
        ctx, session, first, order, EventRequest.model_validate(request), presigned
    )


def _may_cosign(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: CosignatureRequestRow,
    order: OrderRow,
) -> bool:
    """Whether the step's rule lets ``principal`` co-sign: role, tenant, never the first."""
    if row.requested_by == principal.user_id:
        return False
    event = OrderEvent(row.event)
    rule = ctx.signature_policy.rule(event.value, order.country)
    step_roles = transition_rule(OrderState(row.from_state), event).roles
    if principal.role not in rule.cosigner_roles(step_roles):
        return False
    if row.tenant == "center":
        own = principal.center is not None and principal.center == order.center
    else:
        own = principal.site is not None and principal.site == order.site
    if own:
        return True
    if not rule.other_tenants:
        return False
    visible = visible_orders(principal, select(OrderRow).where(OrderRow.id == order.id))
    return session.scalar(visible) is not None


def _signed_by(row: CosignatureRequestRow, principal: Principal) -> bool:
    return any(s["signer_id"] == principal.user_id for s in row.signatures)


def _close(
    ctx: ServiceContext,
    session: Session,
    by: Principal,
    row: CosignatureRequestRow,
    state: str,
    now: datetime,
) -> None:
    before = row.state
    row.state = state
    row.closed_at = now
    session.flush()
    ctx.record(
        session,
        by,
        AuditAction.TRANSITION,
        ENTITY,
        _entity_id(row),
        [("state", before, state), ("closed_at", None, now.isoformat())],
    )


def _entity_id(row: CosignatureRequestRow) -> str:
    return f"{row.order_id}/cosign/{row.id}"


def _stored(sig: ElectronicSignature) -> dict[str, str]:
    """A signature as the request keeps it (sealed: an edit breaks its seal)."""
    return {
        "signer_id": sig.signer_id,
        "printed_name": sig.printed_name,
        "signed_at": sig.signed_at.isoformat(),
        "meaning": sig.meaning.value,
        "record_type": sig.record_type,
        "record_id": sig.record_id,
        "record_hash": sig.record_hash,
        "signature_hash": sig.signature_hash,
    }


def _signature(stored: Mapping[str, str]) -> ElectronicSignature:
    return ElectronicSignature(
        stored["signer_id"],
        stored["printed_name"],
        datetime.fromisoformat(stored["signed_at"]),
        SignatureMeaning(stored["meaning"]),
        stored["record_type"],
        stored["record_id"],
        stored["record_hash"],
        stored["signature_hash"],
    )


def _view(session: Session, row: CosignatureRequestRow, now: datetime) -> CosignatureView:
    order = session.get(OrderRow, row.order_id)
    signed = [_signature(s) for s in row.signatures]
    state = EXPIRED if row.state == PENDING and row.expires_at <= now else row.state
    return CosignatureView(
        id=row.id,
        order_id=row.order_id,
        coi="" if order is None else order.coi,
        event=OrderEvent(row.event),
        meaning=SignatureMeaning(row.meaning),
        required=row.required,
        requested_by=signed[0].printed_name if signed else "",
        signed_by=[s.manifestation() for s in signed],
        step_id=row.step_id,
        record_hash=row.record_hash,
        details=dict(row.payload.get("details", {})),
        created_at=row.created_at,
        expires_at=row.expires_at,
        state=state,
    )
