"""Where each thing a user can do to an order is done: the portal's map of action pages.

The order page and the work queues link to these pages; which links a user sees
follows the lifecycle table (the order's allowed events and the roles that may take
them), so a link is shown exactly when the service would accept the step.
"""

from __future__ import annotations

from dataclasses import dataclass

from cartnet.ledger.lifecycle import OrderEvent, OrderState, transition_rule
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal
from cartnet.service.schemas import OrderView

_E = OrderEvent

EVENT_PAGES: dict[OrderEvent, str] = {
    _E.BOOK_SLOT: "/orders/{id}/offers",
    _E.REBOOK_APHERESIS: "/orders/{id}/offers",
    _E.COLLECT_APHERESIS: "/orders/{id}/custody/collection",
    _E.SHIP_TO_SITE: "/orders/{id}/custody/handover_to_courier",
    _E.RECEIVE_AT_SITE: "/orders/{id}/custody/receipt_at_site",
    _E.START_MANUFACTURING: "/orders/{id}/custody/start_manufacturing",
    _E.COMPLETE_MANUFACTURING: "/orders/{id}/events/complete_manufacturing",
    _E.RELEASE: "/orders/{id}/release",
    _E.REPORT_OOS: "/orders/{id}/events/report_oos",
    _E.REMANUFACTURE: "/orders/{id}/events/remanufacture",
    _E.RELEASE_UNDER_EXPANDED_ACCESS: "/orders/{id}/events/release_under_expanded_access",
    _E.SHIP_TO_CENTER: "/orders/{id}/custody/handover_to_courier_return",
    _E.RECEIVE_AT_CENTER: "/orders/{id}/custody/receipt_at_center",
    _E.INFUSE: "/orders/{id}/infusion",
    _E.CANCEL: "/orders/{id}/cancel",
    _E.RECORD_PATIENT_LOST: "/orders/{id}/patient-lost",
}
"""The page of each lifecycle step (every event has one; a test checks)."""

BOOKERS = frozenset({Role.CENTER_COORDINATOR, Role.PLANNER})
_SITE = frozenset({Role.SITE_OPERATOR, Role.QA})
_IN_TRANSIT = frozenset({OrderState.SHIPPED_TO_SITE, OrderState.SHIPPED_TO_CENTER})


@dataclass(frozen=True, slots=True)
class Action:
    """A link on an order: what it says and where it goes."""

    label: str
    url: str
    primary: bool = False


def order_actions(principal: Principal, order: OrderView) -> list[Action]:
    """What ``principal`` can do to ``order`` now, lifecycle steps first."""
    role = principal.role
    url = {"id": order.id}
    actions = []
    for event in order.allowed_events:
        rule = transition_rule(order.state, event)
        if role in rule.roles:
            closing = event in (_E.CANCEL, _E.RECORD_PATIENT_LOST)
            actions.append(
                Action(event.description, EVENT_PAGES[event].format(**url), primary=not closing)
            )
    state = order.state
    if state is OrderState.BOOKED and role in BOOKERS:
        actions.append(Action("Reschedule the chain", f"/orders/{order.id}/reschedule"))
    if state in _IN_TRANSIT and role is Role.LOGISTICS:
        actions.append(
            Action("Record a courier transfer", f"/orders/{order.id}/custody/courier_transfer")
        )
    if state is OrderState.IN_QC and role in _SITE:
        actions.append(Action("Enter QC results", f"/orders/{order.id}/qc"))
    if not state.is_terminal and role in (
        Role.CENTER_COORDINATOR,
        Role.SITE_OPERATOR,
        Role.LOGISTICS,
    ):
        actions.append(Action("Shipments and temperature logs", f"/orders/{order.id}/shipments"))
    if order.din is not None and role in (Role.CENTER_COORDINATOR, Role.SITE_OPERATOR, Role.QA):
        actions.append(Action("Print the label (PDF)", f"/orders/{order.id}/label.pdf"))
    return actions
