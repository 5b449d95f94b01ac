"""Order lifecycle: sequence checks, authority checks, reasons, signatures, reference page."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartnet.ledger import (
    INITIAL_STATE,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    LifecycleError,
    OrderEvent,
    OrderState,
    ReasonCode,
    Role,
    SignatureMeaning,
    SignaturePolicy,
    Transition,
    TransitionRefusedError,
    allowed_events,
    authorize,
    render_markdown,
    transition,
    transition_rule,
)

REFERENCE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "order-lifecycle.md"
LEGAL = {(t.source, t.event) for t in TRANSITIONS}
ILLEGAL = [(s, e) for s in OrderState for e in OrderEvent if (s, e) not in LEGAL]
MAIN_PATH = [
    OrderEvent.BOOK_SLOT,
    OrderEvent.COLLECT_APHERESIS,
    OrderEvent.SHIP_TO_SITE,
    OrderEvent.RECEIVE_AT_SITE,
    OrderEvent.START_MANUFACTURING,
    OrderEvent.COMPLETE_MANUFACTURING,
    OrderEvent.RELEASE,
    OrderEvent.SHIP_TO_CENTER,
    OrderEvent.RECEIVE_AT_CENTER,
    OrderEvent.INFUSE,
]


def trails(start: OrderState, goal: OrderState, repeat: int = 3) -> list[list[Transition]]:
    """Every path from ``start`` to ``goal`` that uses each transition at most ``repeat`` times.

    The OOS loops (re-manufacture, new apheresis) make the set of walks infinite; three
    passes through each transition take every loop, and both loops in one order (14 paths).
    """
    found: list[list[Transition]] = []

    def walk(state: OrderState, path: list[Transition]) -> None:
        if state is goal:
            found.append(list(path))
            return
        for rule in TRANSITIONS:
            if rule.source is state and path.count(rule) < repeat:
                path.append(rule)
                walk(rule.target, path)
                path.pop()

    walk(start, [])
    return found


def any_reason(rule: Transition) -> tuple[ReasonCode | None, str | None]:
    """A reason code (and text, for ``other``) the rule accepts."""
    if not rule.reason_codes:
        return None, None
    code = min(rule.reason_codes, key=list(ReasonCode).index)
    return code, "free text" if code.needs_text else None


def test_main_path_from_enrolled_to_infused() -> None:
    """The vein-to-vein path (docs/background/domain.md §1): enrolled to infused."""
    state = INITIAL_STATE
    visited = [state]
    for event in MAIN_PATH:
        state = transition(state, event)
        visited.append(state)
    assert visited[-1] is OrderState.INFUSED
    assert visited == [
        OrderState.ENROLLED,
        OrderState.BOOKED,
        OrderState.APHERESIS_COLLECTED,
        OrderState.SHIPPED_TO_SITE,
        OrderState.RECEIVED_AT_SITE,
        OrderState.IN_MANUFACTURING,
        OrderState.IN_QC,
        OrderState.RELEASED,
        OrderState.SHIPPED_TO_CENTER,
        OrderState.DELIVERED,
        OrderState.INFUSED,
    ]


ALL_TRAILS = trails(OrderState.ENROLLED, OrderState.INFUSED)


@pytest.mark.parametrize(
    "path", ALL_TRAILS, ids=["-".join(t.event.value[:7] for t in p) for p in ALL_TRAILS]
)
def test_every_legal_path_to_infusion_works(path: list[Transition]) -> None:
    """Every path enrolled → infused (each transition at most 3 times) passes all checks."""
    state = INITIAL_STATE
    for rule in path:
        role = min(rule.roles, key=list(Role).index)
        code, text = any_reason(rule)
        checked = authorize(state, rule.event, role, reason_code=code, reason_text=text)
        assert checked is rule
        state = transition(state, rule.event)
    assert state is OrderState.INFUSED


def test_the_oos_outcomes_are_all_among_the_paths() -> None:
    """Re-manufacture, new apheresis and expanded-access release all lead on to infusion."""
    events = [{t.event for t in p} for p in ALL_TRAILS]
    assert set(MAIN_PATH) in events
    for outcome in (
        OrderEvent.REMANUFACTURE,
        OrderEvent.REBOOK_APHERESIS,
        OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS,
    ):
        assert any(outcome in e for e in events), outcome
    # Both loops taken in one order: OOS, re-manufacture, OOS again, new apheresis.
    assert any({OrderEvent.REMANUFACTURE, OrderEvent.REBOOK_APHERESIS} <= e for e in events)


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_every_illegal_transition_is_refused_with_its_reason(
    state: OrderState, event: OrderEvent
) -> None:
    """An event the state does not allow is refused, naming the state and allowed events."""
    with pytest.raises(IllegalTransition) as caught:
        transition(state, event)
    err = caught.value
    assert err.state is state and err.event == event
    assert err.allowed == allowed_events(state)
    message = str(err)
    assert f"event {event.value!r} is not allowed in state {state.value!r}" in message
    if state in TERMINAL_STATES:
        assert "closed (terminal state), no event is allowed" in message
    else:
        assert "allowed events: " + ", ".join(allowed_events(state)) in message


def test_terminal_states_allow_nothing_and_open_states_something() -> None:
    """infused, cancelled and patient_lost are final; every other state has a way on."""
    assert {OrderState.INFUSED, OrderState.CANCELLED, OrderState.PATIENT_LOST} == TERMINAL_STATES
    for state in OrderState:
        assert state.is_terminal == (not allowed_events(state))
    assert set(OPEN_STATES) == set(OrderState) - TERMINAL_STATES


@pytest.mark.parametrize("state", OPEN_STATES)
def test_cancel_and_patient_lost_from_every_open_state(state: OrderState) -> None:
    """An order can be cancelled, or its patient recorded as lost, from any open state."""
    assert transition(state, OrderEvent.CANCEL) is OrderState.CANCELLED
    assert transition(state, OrderEvent.RECORD_PATIENT_LOST) is OrderState.PATIENT_LOST


def test_every_open_state_is_reachable_and_can_reach_infusion() -> None:
    """No dead ends: each open state is reached from enrolled and leads on to infused."""
    on_a_path = {t.source for p in ALL_TRAILS for t in p}
    assert on_a_path == set(OPEN_STATES)


def test_unknown_event_and_state_are_named() -> None:
    """Text from an API that names no event or state gets a clear error, not a KeyError."""
    with pytest.raises(IllegalTransition, match="unknown event 'ship' in state 'released'"):
        transition("released", "ship")
    with pytest.raises(LifecycleError, match="unknown order state 'shipped'"):
        transition("shipped", OrderEvent.CANCEL)
    assert transition("released", "ship_to_center") is OrderState.SHIPPED_TO_CENTER


def test_wrong_role_is_refused_naming_the_allowed_roles() -> None:
    """Authority check: a site operator cannot release a batch; the message names QA."""
    with pytest.raises(TransitionRefusedError, match=r"role 'site_operator' may not .* roles: qa"):
        authorize(OrderState.IN_QC, OrderEvent.RELEASE, Role.SITE_OPERATOR)
    assert authorize(OrderState.IN_QC, OrderEvent.RELEASE, Role.QA).target is OrderState.RELEASED


def test_admin_performs_no_order_step() -> None:
    """Segregation of duties: administrators manage accounts, never move orders."""
    assert all(Role.ADMIN not in t.roles for t in TRANSITIONS)


def test_expanded_access_release_needs_its_own_reason() -> None:
    """OOS release is refused without a reason code, or with any code but expanded_access."""
    state, event = OrderState.OUT_OF_SPECIFICATION, OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS
    with pytest.raises(TransitionRefusedError, match="needs a reason code, one of: expanded"):
        authorize(state, event, Role.QA)
    with pytest.raises(TransitionRefusedError, match="'deviation' does not apply"):
        authorize(state, event, Role.QA, reason_code=ReasonCode.DEVIATION)
    rule = authorize(state, event, Role.QA, reason_code=ReasonCode.EXPANDED_ACCESS)
    assert rule.target is OrderState.RELEASED
    assert rule.signature is SignatureMeaning.APPROVAL


def test_cancel_needs_a_reason_and_other_needs_text() -> None:
    """Cancelling needs a reason code; 'other' also needs the reason in words."""
    with pytest.raises(TransitionRefusedError, match="needs a reason code"):
        authorize(OrderState.BOOKED, OrderEvent.CANCEL, Role.PLANNER)
    with pytest.raises(TransitionRefusedError, match="'other' needs a free-text reason"):
        authorize(OrderState.BOOKED, "cancel", Role.PLANNER, reason_code=ReasonCode.OTHER)
    authorize(
        OrderState.BOOKED,
        "cancel",
        Role.PLANNER,
        reason_code=ReasonCode.OTHER,
        reason_text="duplicate order",
    )


def test_patient_lost_takes_only_patient_reasons() -> None:
    """A lost patient is recorded as progressed, ineligible, deceased (or other)."""
    with pytest.raises(TransitionRefusedError, match="'capacity_change' does not apply"):
        authorize(
            OrderState.BOOKED,
            OrderEvent.RECORD_PATIENT_LOST,
            Role.CENTER_COORDINATOR,
            reason_code=ReasonCode.CAPACITY_CHANGE,
        )
    authorize(
        OrderState.BOOKED,
        OrderEvent.RECORD_PATIENT_LOST,
        Role.CENTER_COORDINATOR,
        reason_code=ReasonCode.PATIENT_DECEASED,
    )


@pytest.mark.parametrize(
    ("state", "event", "meaning", "role"),
    [
        (OrderState.IN_QC, OrderEvent.RELEASE, SignatureMeaning.APPROVAL, Role.QA),
        (OrderState.IN_QC, OrderEvent.REPORT_OOS, SignatureMeaning.REVIEW, Role.QA),
        (
            OrderState.BOOKED,
            OrderEvent.COLLECT_APHERESIS,
            SignatureMeaning.RESPONSIBILITY,
            Role.CENTER_COORDINATOR,
        ),
        (
            OrderState.IN_MANUFACTURING,
            OrderEvent.COMPLETE_MANUFACTURING,
            SignatureMeaning.AUTHORSHIP,
            Role.SITE_OPERATOR,
        ),
        (
            OrderState.DELIVERED,
            OrderEvent.INFUSE,
            SignatureMeaning.RESPONSIBILITY,
            Role.CENTER_COORDINATOR,
        ),
    ],
)
def test_gxp_steps_carry_signature_meaning_and_role(
    state: OrderState, event: OrderEvent, meaning: SignatureMeaning, role: Role
) -> None:
    """The table says which steps need an e-signature, with which meaning, by whom."""
    rule = transition_rule(state, event)
    assert rule.needs_signature and rule.signature is meaning
    assert role in rule.roles


def test_every_custody_handoff_is_signed_and_bookkeeping_is_not() -> None:
    """Handoffs of material are GxP steps; booking, cancelling and losing are not signed."""
    signed = {t.event for t in TRANSITIONS if t.needs_signature}
    assert {
        OrderEvent.COLLECT_APHERESIS,
        OrderEvent.SHIP_TO_SITE,
        OrderEvent.RECEIVE_AT_SITE,
        OrderEvent.SHIP_TO_CENTER,
        OrderEvent.RECEIVE_AT_CENTER,
        OrderEvent.INFUSE,
    } <= signed
    assert signed.isdisjoint(
        {OrderEvent.BOOK_SLOT, OrderEvent.CANCEL, OrderEvent.RECORD_PATIENT_LOST}
    )


def test_required_signatures_follow_the_country_policy() -> None:
    """A signed step needs one signature by default, more where the policy says so."""
    policy = SignaturePolicy.from_mapping({"receive_at_site": {"DE": 2}})
    receipt = transition_rule(OrderState.SHIPPED_TO_SITE, OrderEvent.RECEIVE_AT_SITE)
    assert receipt.required_signatures("DE", policy) == 2
    assert receipt.required_signatures("FR", policy) == 1
    booking = transition_rule(OrderState.ENROLLED, OrderEvent.BOOK_SLOT)
    assert booking.required_signatures("DE", policy) == 0


def test_reference_page_is_generated_from_the_table() -> None:
    """docs/reference/order-lifecycle.md is exactly what render_markdown() writes."""
    assert REFERENCE_PAGE.read_text(encoding="utf-8") == render_markdown(), (
        "the reference page is out of date; regenerate it with the command it shows"
    )


def test_reference_page_has_one_row_per_rule() -> None:
    """Each distinct transition appears in the table; cancel/lost collapse to one row each."""
    page = render_markdown()
    for rule in TRANSITIONS:
        assert f"| `{rule.event}` | `{rule.target}` |" in page
    assert page.count("| any open state | `cancel` | `cancelled` |") == 1
    assert "| `in_qc` | `release` | `released` | qa | approval | — |" in page
