"""Lifecycle steps that are not handoffs, and what every step page asks for.

Finishing manufacturing (the site operator) and QA's out-of-specification decisions
(report OOS, re-manufacture, release under expanded access) are one form each: the
reason the lifecycle table asks for, and the e-signature where the step is signed.
The table (:func:`cartnet.ledger.lifecycle.transition_rule`) decides what the form
shows, so the page asks exactly what the service will check. The helpers here are
shared by the other step pages (custody, booking, closing an order).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.audit import ReasonCode
from cartnet.ledger.lifecycle import IllegalTransition, OrderEvent, Transition, transition_rule
from cartnet.service import orders
from cartnet.service.access import Principal
from cartnet.service.errors import Conflict, Forbidden, NotFound, ServiceError
from cartnet.service.schemas import EventRequest, OrderView, SignatureInput
from cartnet.web.page import AnyUser, Page, field_errors, form_values

router = APIRouter()
OrderId = Path(max_length=64, pattern=IDENTIFIER)
SIGNATURE_FIELD = "signature_password"

EVENTS: tuple[OrderEvent, ...] = (
    OrderEvent.COMPLETE_MANUFACTURING,
    OrderEvent.REPORT_OOS,
    OrderEvent.REMANUFACTURE,
    OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS,
)
"""The steps :class:`EventRequest` takes, each on /orders/{id}/events/{event}."""


def step_rule(principal: Principal, order: OrderView, event: OrderEvent) -> Transition:
    """The rule of ``event`` now, refused as the service would refuse the step.

    409 when the order's state does not allow it, 403 when the user's role may not
    take it: a page typed by hand answers what posting it would answer.
    """
    try:
        rule = transition_rule(order.state, event)
    except IllegalTransition as err:
        raise Conflict(str(err), code="illegal-transition") from None
    if principal.role not in rule.roles:
        names = ", ".join(sorted(r.value for r in rule.roles))
        raise Forbidden(
            f"role {principal.role.value!r} may not {event.description}; roles: {names}"
        )
    return rule


def reason_choices(codes: Iterable[ReasonCode]) -> list[tuple[str, str]]:
    """Reason codes as (value, "code: description") pairs, in the codes' own order."""
    allowed = set(codes)
    return [
        (c.value, f"{c.value.replace('_', ' ')}: {c.description}")
        for c in ReasonCode
        if c in allowed
    ]


def signed_by(page: Page, values: dict[str, str]) -> list[SignatureInput]:
    """The signer's own e-signature from the form's password field (none if left empty)."""
    password = values.get(SIGNATURE_FIELD)
    if password is None:
        return []
    return [SignatureInput(username=page.principal.username, password=password)]


def step_errors(err: ValidationError | ServiceError) -> dict[str, str]:
    """Messages by form field; any problem with a signature goes next to the password."""
    if isinstance(err, ServiceError) and (err.field or "").startswith("signatures"):
        return {SIGNATURE_FIELD: err.detail}
    if isinstance(err, ValidationError):
        errors: dict[str, str] = {}
        for name, message in field_errors(err).items():
            key = SIGNATURE_FIELD if name in ("signatures", "password", "username") else name
            errors.setdefault(key, message)
        return errors
    return field_errors(err)


def status_of(err: ValidationError | ServiceError) -> int:
    return err.status if isinstance(err, ServiceError) else 422


def _event(name: str) -> OrderEvent:
    event = next((e for e in EVENTS if e.value == name), None)
    if event is None:
        raise NotFound(f"no such step page: {name!r}; steps: {', '.join(EVENTS)}")
    return event


@router.get("/orders/{order_id}/events/{event}")
async def event_form(page: AnyUser, event: str, order_id: str = OrderId) -> Response:
    """The form of one lifecycle step: its reason and its e-signature, as the table says."""
    step = _event(event)
    order = await page.call(orders.get_order, page.ctx, page.principal, order_id)
    rule = step_rule(page.principal, order, step)
    return _render(page, order, step, rule, {}, {}, 200)


@router.post("/orders/{order_id}/events/{event}")
async def take_event(page: AnyUser, event: str, order_id: str = OrderId) -> Response:
    form = await page.form()
    step = _event(event)
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    rule = step_rule(who, order, step)
    values = form_values(form)
    try:
        body = EventRequest.model_validate(
            {
                "event": step.value,
                "reason_code": values.get("reason_code"),
                "reason_text": values.get("reason_text"),
                "signatures": signed_by(page, values),
            }
        )
        await page.call(orders.apply_event, ctx, who, order_id, body)
    except (ValidationError, ServiceError) as err:
        shown = {k: v for k, v in values.items() if k != SIGNATURE_FIELD}
        return _render(page, order, step, rule, shown, step_errors(err), status_of(err))
    return page.redirect(f"/orders/{order_id}")


def _render(
    page: Page,
    order: OrderView,
    event: OrderEvent,
    rule: Transition,
    form: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    return page.render(
        "events/event.html",
        status=status,
        order=order,
        event=event,
        rule=rule,
        reasons=reason_choices(rule.reason_codes),
        form=form,
        errors=errors,
    )
