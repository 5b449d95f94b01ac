"""Lifecycle steps that are not handoffs, and what every step page asks for.

Finishing manufacturing (the site operator) and QA's out-of-specification decisions
(report OOS, re-manufacture, release under expanded access) are one form each: the
reason the lifecycle table asks for, and the e-signature where the step is signed (the
signer's own: co-signers sign in their own session on ``/signatures``).
The table (:func:`cartnet.ledger.lifecycle.transition_rule`) decides what the form
shows, so the page asks exactly what the service will check. The helpers here are
shared by the other step pages (custody, booking, closing an order).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.lifecycle import IllegalTransition, OrderEvent, Transition, transition_rule
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.signatures import step_tenant
from cartnet.service import orders
from cartnet.service.access import Principal
from cartnet.service.errors import Conflict, Forbidden, NotFound, ServiceError
from cartnet.service.schemas import EventRequest, OrderView, StepResult
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


def signers_needed(page: Page, order: OrderView, rule: Transition | None) -> int:
    """Independent signatures the step needs for this order's country (0 if unsigned)."""
    if rule is None:
        return 0
    return rule.required_signatures(order.country, page.ctx.signature_policy)


def cosigners_needed(page: Page, order: OrderView, rule: Transition | None) -> dict[str, Any]:
    """What the step page says about co-signers: how many, which roles, whose tenant."""
    needed = signers_needed(page, order, rule)
    if rule is None or needed < 2:
        return {"count": 0}
    policy = page.ctx.signature_policy.rule(rule.event.value, order.country)
    return {
        "count": needed - 1,
        "total": needed,
        "roles": sorted(r.value for r in policy.cosigner_roles(rule.roles)),
        "tenant": step_tenant(rule.event.value),
        "other_tenants": policy.other_tenants,
        "hours": page.ctx.settings.cosignature_hours,
    }


def signed_by(page: Page, values: dict[str, str]) -> list[dict[str, str]]:
    """The signer's own e-signature from the password field; nothing when left empty.

    Co-signers never type their password here: where the country asks for more than one
    signature, the step waits for them to sign in their own session (``/signatures``).
    """
    password = values.get(SIGNATURE_FIELD)
    if password is None:
        return []
    return [{"username": page.principal.username, "password": password}]


def taken_or_pending(page: Page, result: StepResult, taken: str) -> Response:
    """After a signed step: ``taken`` if it was taken, the signatures page if it awaits
    co-signature (where the first signer sees it and may withdraw it)."""
    if result.pending is not None:
        return page.redirect(f"/signatures#{result.pending.id}")
    return page.redirect(taken)


def without_passwords(values: dict[str, str]) -> dict[str, str]:
    """The form as it may be shown again: never a password."""
    return {k: v for k, v in values.items() if not k.endswith("password")}


def step_errors(err: ValidationError | ServiceError) -> dict[str, str]:
    """Messages by form field; a problem with a signature goes next to its password."""
    if isinstance(err, ServiceError):
        location = (err.field or "").split(".")
        if location[0] == "signatures":
            return {SIGNATURE_FIELD: err.detail}
        return field_errors(err)
    errors: dict[str, str] = {}
    for problem in err.errors():
        location = [str(part) for part in problem.get("loc", ())]
        if location and location[0] == "signatures":
            empty = problem.get("type") in ("missing", "string_too_short")
            message = "required" if empty else str(problem.get("msg", "invalid"))
            errors.setdefault(SIGNATURE_FIELD, message)
    for name, message in field_errors(err).items():
        if name not in ("signatures", "password", "username") and not name.isdigit():
            errors.setdefault(name, message)
    return errors


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
        result = await page.call(orders.apply_event, ctx, who, order_id, body)
    except (ValidationError, ServiceError) as err:
        shown = without_passwords(values)
        return _render(page, order, step, rule, shown, step_errors(err), status_of(err))
    return taken_or_pending(page, result, f"/orders/{order_id}")


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
        cosigners=cosigners_needed(page, order, rule),
        form=form,
        errors=errors,
    )
