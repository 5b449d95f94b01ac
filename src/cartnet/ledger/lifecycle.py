"""The lifecycle of one order, vein to vein, as an explicit state machine.

21 CFR 11.10(f) asks for sequence checks (steps happen in the permitted order) and
11.10(g) for authority checks (only authorised people perform them). Both live here, as
data: one :class:`Transition` per allowed ``(state, event)`` pair, with the roles that
may perform it, whether it is a GxP step that needs an e-signature (and its meaning),
and which reason codes it needs. Everything not in the table is refused with a reason
that names the state and the events it allows. The reference page
``docs/reference/order-lifecycle.md`` is :func:`render_markdown`'s output.

The main path is enrolled → booked → apheresis_collected → shipped_to_site →
received_at_site → in_manufacturing → in_qc → released → shipped_to_center → delivered →
infused. QC can find the product out of specification; then QA decides: re-manufacture
from stored apheresis, a new apheresis (back to booked), or release under expanded
access (its own reason code). Any open state can end in cancelled or patient_lost.

>>> transition(OrderState.IN_QC, OrderEvent.RELEASE)
<OrderState.RELEASED: 'released'>
>>> transition(OrderState.IN_QC, OrderEvent.SHIP_TO_CENTER)
Traceback (most recent call last):
...
cartnet.ledger.lifecycle.IllegalTransition: event 'ship_to_center' is not allowed in state \
'in_qc'; allowed events: release, report_oos, cancel, record_patient_lost
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import (
    DEFAULT_SIGNATURE_POLICY,
    SignatureMeaning,
    SignaturePolicy,
)


class OrderState(StrEnum):
    """Where an order stands in the vein-to-vein chain."""

    ENROLLED = "enrolled"
    BOOKED = "booked"
    APHERESIS_COLLECTED = "apheresis_collected"
    SHIPPED_TO_SITE = "shipped_to_site"
    RECEIVED_AT_SITE = "received_at_site"
    IN_MANUFACTURING = "in_manufacturing"
    IN_QC = "in_qc"
    RELEASED = "released"
    OUT_OF_SPECIFICATION = "out_of_specification"
    SHIPPED_TO_CENTER = "shipped_to_center"
    DELIVERED = "delivered"
    INFUSED = "infused"
    CANCELLED = "cancelled"
    PATIENT_LOST = "patient_lost"

    @property
    def is_terminal(self) -> bool:
        """Whether the order is closed: no event is allowed any more."""
        return self in TERMINAL_STATES

    @property
    def description(self) -> str:
        """One line for reference pages and status views."""
        return _STATE_DESCRIPTIONS[self]


class OrderEvent(StrEnum):
    """Something that happens to an order and moves it to another state."""

    BOOK_SLOT = "book_slot"
    COLLECT_APHERESIS = "collect_apheresis"
    SHIP_TO_SITE = "ship_to_site"
    RECEIVE_AT_SITE = "receive_at_site"
    START_MANUFACTURING = "start_manufacturing"
    COMPLETE_MANUFACTURING = "complete_manufacturing"
    RELEASE = "release"
    REPORT_OOS = "report_oos"
    REMANUFACTURE = "remanufacture"
    REBOOK_APHERESIS = "rebook_apheresis"
    RELEASE_UNDER_EXPANDED_ACCESS = "release_under_expanded_access"
    SHIP_TO_CENTER = "ship_to_center"
    RECEIVE_AT_CENTER = "receive_at_center"
    INFUSE = "infuse"
    CANCEL = "cancel"
    RECORD_PATIENT_LOST = "record_patient_lost"

    @property
    def description(self) -> str:
        """One line for reference pages and buttons."""
        return _EVENT_DESCRIPTIONS[self]


INITIAL_STATE = OrderState.ENROLLED
"""An order is enrolled when it is created; no event leads into this state."""
TERMINAL_STATES = frozenset({OrderState.INFUSED, OrderState.CANCELLED, OrderState.PATIENT_LOST})
OPEN_STATES = tuple(s for s in OrderState if s not in TERMINAL_STATES)
"""States from which the order can still move, in lifecycle order."""

_STATE_DESCRIPTIONS = {
    OrderState.ENROLLED: "the treatment center ordered a therapy for a patient",
    OrderState.BOOKED: "a slot chain (apheresis, manufacturing, return) is booked",
    OrderState.APHERESIS_COLLECTED: "the apheresis was collected at the center",
    OrderState.SHIPPED_TO_SITE: "the apheresis is with the courier, on its way to the site",
    OrderState.RECEIVED_AT_SITE: "the manufacturing site received the apheresis",
    OrderState.IN_MANUFACTURING: "the batch occupies a manufacturing line",
    OrderState.IN_QC: "QC release testing of the product",
    OrderState.RELEASED: "QA released the batch",
    OrderState.OUT_OF_SPECIFICATION: "QC found the product out of specification",
    OrderState.SHIPPED_TO_CENTER: "the product is with the courier, on its way back",
    OrderState.DELIVERED: "the treatment center received the product",
    OrderState.INFUSED: "the patient was infused",
    OrderState.CANCELLED: "the order was cancelled",
    OrderState.PATIENT_LOST: "the patient progressed, became ineligible or died before infusion",
}

_EVENT_DESCRIPTIONS = {
    OrderEvent.BOOK_SLOT: "book the slot chain",
    OrderEvent.COLLECT_APHERESIS: "record the apheresis collection",
    OrderEvent.SHIP_TO_SITE: "hand the apheresis over to the courier",
    OrderEvent.RECEIVE_AT_SITE: "receive the apheresis at the site",
    OrderEvent.START_MANUFACTURING: "start manufacturing on a line",
    OrderEvent.COMPLETE_MANUFACTURING: "finish manufacturing; samples go to QC",
    OrderEvent.RELEASE: "QA batch release",
    OrderEvent.REPORT_OOS: "QA confirms an out-of-specification result",
    OrderEvent.REMANUFACTURE: "re-manufacture from stored apheresis",
    OrderEvent.REBOOK_APHERESIS: "book a new apheresis and slot chain",
    OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS: "release the OOS product under expanded access",
    OrderEvent.SHIP_TO_CENTER: "hand the product over to the courier",
    OrderEvent.RECEIVE_AT_CENTER: "receive the product at the center",
    OrderEvent.INFUSE: "record the infusion",
    OrderEvent.CANCEL: "cancel the order",
    OrderEvent.RECORD_PATIENT_LOST: "record that the patient was lost before infusion",
}


class LifecycleError(ValueError):
    """An order step that may not happen."""


class IllegalTransition(LifecycleError):  # noqa: N818  (the name the service API uses)
    """An event the order's state does not allow (a sequence check failed).

    ``allowed`` lists the events the state does allow, in lifecycle order.
    """

    def __init__(self, state: OrderState, event: str, allowed: tuple[OrderEvent, ...]) -> None:
        self.state = state
        self.event = event
        self.allowed = allowed
        known = event in {e.value for e in OrderEvent}
        what = f"event {event!r} is not allowed" if known else f"unknown event {event!r}"
        if allowed:
            why = f"allowed events: {', '.join(allowed)}"
        else:
            why = "the order is closed (terminal state), no event is allowed"
        super().__init__(f"{what} in state {state.value!r}; {why}")


class TransitionRefusedError(LifecycleError):
    """An allowed event that this person may not perform now: wrong role or reason."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed step: from ``source`` on ``event`` to ``target``, and its conditions.

    ``roles``: who may perform it. ``signature``: the meaning of the e-signature the
    step needs (a GxP step), or ``None``. ``reason_codes``: empty when no reason is
    needed, else the codes of which one must be given.
    """

    source: OrderState
    event: OrderEvent
    target: OrderState
    roles: frozenset[Role]
    signature: SignatureMeaning | None = None
    reason_codes: frozenset[ReasonCode] = frozenset()

    @property
    def needs_signature(self) -> bool:
        """Whether this is a GxP step that needs an e-signature."""
        return self.signature is not None

    @property
    def needs_reason(self) -> bool:
        """Whether a reason code must be given."""
        return bool(self.reason_codes)

    def required_signatures(
        self, country: str, policy: SignaturePolicy = DEFAULT_SIGNATURE_POLICY
    ) -> int:
        """Independent signatures this step needs in ``country``; 0 for unsigned steps."""
        return policy.required(self.event, country) if self.needs_signature else 0

    def check(
        self,
        role: Role,
        *,
        reason_code: ReasonCode | None = None,
        reason_text: str | None = None,
    ) -> None:
        """Raise :class:`TransitionRefusedError` unless ``role`` may do it with this reason."""
        step = f"{self.event} in state {self.source.value!r}"
        if role not in self.roles:
            raise TransitionRefusedError(
                f"{step}: role {role.value!r} may not perform it; roles: {_names(self.roles)}"
            )
        if self.reason_codes:
            if reason_code is None:
                raise TransitionRefusedError(
                    f"{step}: needs a reason code, one of: {_names(self.reason_codes)}"
                )
            if reason_code not in self.reason_codes:
                raise TransitionRefusedError(
                    f"{step}: reason code {reason_code.value!r} does not apply; use one of: "
                    f"{_names(self.reason_codes)}"
                )
            if reason_code.needs_text and not (reason_text and reason_text.strip()):
                raise TransitionRefusedError(
                    f"{step}: reason code 'other' needs a free-text reason"
                )


def _names(values: Iterable[StrEnum]) -> str:
    return ", ".join(sorted(v.value for v in values))


_S = OrderState
_E = OrderEvent
_CENTER = frozenset({Role.CENTER_COORDINATOR})
_SITE = frozenset({Role.SITE_OPERATOR})
_QA = frozenset({Role.QA})
_NOT_CANCEL_REASONS = (ReasonCode.EXPANDED_ACCESS, ReasonCode.NETWORK_OPTIMIZATION)
"""A plan moves bookings, it never cancels an order; expanded access is a QA release."""
_CANCEL_REASONS = frozenset(ReasonCode) - set(_NOT_CANCEL_REASONS)
_LOSS_REASONS = frozenset(
    {
        ReasonCode.PATIENT_PROGRESSED,
        ReasonCode.PATIENT_INELIGIBLE,
        ReasonCode.PATIENT_DECEASED,
        ReasonCode.OTHER,
    }
)
_FAILURE_REASONS = frozenset(
    {ReasonCode.MANUFACTURING_FAILURE, ReasonCode.DEVIATION, ReasonCode.OTHER}
)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.ENROLLED, _E.BOOK_SLOT, _S.BOOKED, _CENTER | {Role.PLANNER}),
    Transition(
        _S.BOOKED,
        _E.COLLECT_APHERESIS,
        _S.APHERESIS_COLLECTED,
        _CENTER,
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(
        _S.APHERESIS_COLLECTED,
        _E.SHIP_TO_SITE,
        _S.SHIPPED_TO_SITE,
        _CENTER | {Role.LOGISTICS},
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(
        _S.SHIPPED_TO_SITE,
        _E.RECEIVE_AT_SITE,
        _S.RECEIVED_AT_SITE,
        _SITE,
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(
        _S.RECEIVED_AT_SITE,
        _E.START_MANUFACTURING,
        _S.IN_MANUFACTURING,
        _SITE,
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(
        _S.IN_MANUFACTURING,
        _E.COMPLETE_MANUFACTURING,
        _S.IN_QC,
        _SITE,
        SignatureMeaning.AUTHORSHIP,
    ),
    Transition(_S.IN_QC, _E.RELEASE, _S.RELEASED, _QA, SignatureMeaning.APPROVAL),
    Transition(_S.IN_QC, _E.REPORT_OOS, _S.OUT_OF_SPECIFICATION, _QA, SignatureMeaning.REVIEW),
    Transition(
        _S.OUT_OF_SPECIFICATION,
        _E.REMANUFACTURE,
        _S.IN_MANUFACTURING,
        _QA,
        SignatureMeaning.APPROVAL,
        _FAILURE_REASONS,
    ),
    Transition(
        _S.OUT_OF_SPECIFICATION,
        _E.REBOOK_APHERESIS,
        _S.BOOKED,
        _CENTER | {Role.PLANNER},
        None,
        _FAILURE_REASONS | {ReasonCode.CLINICAL_DECISION},
    ),
    Transition(
        _S.OUT_OF_SPECIFICATION,
        _E.RELEASE_UNDER_EXPANDED_ACCESS,
        _S.RELEASED,
        _QA,
        SignatureMeaning.APPROVAL,
        frozenset({ReasonCode.EXPANDED_ACCESS}),
    ),
    Transition(
        _S.RELEASED,
        _E.SHIP_TO_CENTER,
        _S.SHIPPED_TO_CENTER,
        _SITE | {Role.LOGISTICS},
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(
        _S.SHIPPED_TO_CENTER,
        _E.RECEIVE_AT_CENTER,
        _S.DELIVERED,
        _CENTER,
        SignatureMeaning.RESPONSIBILITY,
    ),
    Transition(_S.DELIVERED, _E.INFUSE, _S.INFUSED, _CENTER, SignatureMeaning.RESPONSIBILITY),
    *(
        Transition(state, _E.CANCEL, _S.CANCELLED, _CENTER | {Role.PLANNER}, None, _CANCEL_REASONS)
        for state in OPEN_STATES
    ),
    *(
        Transition(state, _E.RECORD_PATIENT_LOST, _S.PATIENT_LOST, _CENTER, None, _LOSS_REASONS)
        for state in OPEN_STATES
    ),
)
"""Every allowed step. Administrators appear nowhere: they manage accounts, not orders."""

_TABLE: Mapping[tuple[OrderState, OrderEvent], Transition] = {
    (t.source, t.event): t for t in TRANSITIONS
}


def _state(state: OrderState | str) -> OrderState:
    try:
        return OrderState(state)
    except ValueError:
        known = ", ".join(OrderState)
        raise LifecycleError(f"unknown order state {state!r}; states: {known}") from None


def allowed_events(state: OrderState | str) -> tuple[OrderEvent, ...]:
    """The events ``state`` allows, in lifecycle order (none for terminal states)."""
    current = _state(state)
    return tuple(event for event in OrderEvent if (current, event) in _TABLE)


def transition_rule(state: OrderState | str, event: OrderEvent | str) -> Transition:
    """The :class:`Transition` for ``event`` in ``state``, or :class:`IllegalTransition`."""
    current = _state(state)
    try:
        return _TABLE[(current, OrderEvent(event))]
    except (KeyError, ValueError):
        raise IllegalTransition(current, str(event), allowed_events(current)) from None


def transition(state: OrderState | str, event: OrderEvent | str) -> OrderState:
    """The state after ``event``; :class:`IllegalTransition` names the allowed events."""
    return transition_rule(state, event).target


def authorize(
    state: OrderState | str,
    event: OrderEvent | str,
    role: Role,
    *,
    reason_code: ReasonCode | None = None,
    reason_text: str | None = None,
) -> Transition:
    """Sequence and authority checks together: the transition, if ``role`` may do it now.

    Signatures are the caller's next step: :meth:`Transition.required_signatures`.
    """
    rule = transition_rule(state, event)
    rule.check(role, reason_code=reason_code, reason_text=reason_text)
    return rule


def render_markdown() -> str:
    """The reference page ``docs/reference/order-lifecycle.md``, written from the table."""
    lines = [
        "# Order lifecycle",
        "",
        "<!-- Generated from src/cartnet/ledger/lifecycle.py by render_markdown(); "
        "do not edit by hand. -->",
        "",
        *textwrap.wrap(
            "Every order moves through these states. The table of transitions is the only "
            "way an order changes state: anything else is refused with the events the state "
            "allows (sequence check, 21 CFR 11.10(f)), and only the listed roles may perform "
            "a step (authority check, 11.10(g)). Steps with an e-signature are GxP steps; "
            "the meaning of the signature is given (11.50). Some countries need more than "
            "one independent signature at a step: see `SignaturePolicy` in "
            "`cartnet.ledger.signatures`.",
            width=88,
        ),
        "",
        "Regenerate this page after a change to the table (a test compares the two):",
        "",
        "```sh",
        ".venv/bin/python -c 'from cartnet.ledger import render_markdown; "
        'print(render_markdown(), end="")\' > docs/reference/order-lifecycle.md',
        "```",
        "",
        "## States",
        "",
        "| state | kind | meaning |",
        "|---|---|---|",
    ]
    for state in OrderState:
        if state is INITIAL_STATE:
            kind = "initial, open"
        elif state.is_terminal:
            kind = "terminal"
        else:
            kind = "open"
        lines.append(f"| `{state}` | {kind} | {state.description} |")
    lines += [
        "",
        "## Transitions",
        "",
        "| from | event | to | roles | e-signature | reason code required |",
        "|---|---|---|---|---|---|",
    ]
    for sources, rule in _grouped():
        where = "any open state" if sources == OPEN_STATES else ", ".join(f"`{s}`" for s in sources)
        signature = "—" if rule.signature is None else rule.signature.value
        if not rule.reason_codes:
            reasons = "—"
        elif rule.reason_codes == _CANCEL_REASONS:
            reasons = "any but " + " and ".join(f"`{c}`" for c in _NOT_CANCEL_REASONS)
        else:
            reasons = ", ".join(f"`{code}`" for code in ReasonCode if code in rule.reason_codes)
        roles = ", ".join(role.value for role in Role if role in rule.roles)
        lines.append(
            f"| {where} | `{rule.event}` | `{rule.target}` | {roles} | {signature} | {reasons} |"
        )
    lines += [
        "",
        "`other` always needs a free-text reason as well.",
        "",
        "## Events",
        "",
        "| event | meaning |",
        "|---|---|",
        *(f"| `{event}` | {event.description} |" for event in OrderEvent),
        "",
        "## Roles",
        "",
        "| role | who |",
        "|---|---|",
        *(f"| `{role}` | {role.description} |" for role in Role),
        "",
        "## Diagram",
        "",
        *textwrap.wrap(
            "`cancel` and `record_patient_lost` lead from every open state to `cancelled` "
            "and `patient_lost`; they are left out of the diagram.",
            width=88,
        ),
        "",
        "```mermaid",
        "stateDiagram-v2",
        f"    [*] --> {INITIAL_STATE}",
    ]
    for rule in TRANSITIONS:
        if rule.event not in (OrderEvent.CANCEL, OrderEvent.RECORD_PATIENT_LOST):
            lines.append(f"    {rule.source} --> {rule.target}: {rule.event}")
    lines += [f"    {state} --> [*]" for state in OrderState if state.is_terminal]
    lines += ["```", ""]
    return "\n".join(lines)


def _grouped() -> list[tuple[tuple[OrderState, ...], Transition]]:
    """Transitions that differ only in their source, as one row each (table order)."""
    groups: dict[tuple[object, ...], list[Transition]] = {}
    for rule in TRANSITIONS:
        key = (rule.event, rule.target, rule.roles, rule.signature, rule.reason_codes)
        groups.setdefault(key, []).append(rule)
    return [(tuple(r.source for r in rules), rules[0]) for rules in groups.values()]
