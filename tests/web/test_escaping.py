"""Stored free text is text on every page of the portal, for every role.

Each free-text field gets its own markup payload; then every GET page the portal
routes (with this order's id where a path takes one) is fetched as every role. No page
may carry a payload as markup, and each payload must be shown, escaped, somewhere: a
field whose value never appears would make the first check pass for no reason. New
pages are crawled without touching this test, since the routes come from the app.
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

from markupsafe import escape
from starlette.routing import Route
from tests.api.conftest import PASSWORD, SITE, USERS
from tests.web.conftest import Portal
from tests.web.test_queues import advance, now, signed

from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.service import accounts, custody, orders, quality, shipments
from cartnet.service.errors import Conflict
from cartnet.service.schemas import (
    BookChain,
    CloseException,
    CustodyRequest,
    NewOrder,
    NewQcResult,
    NewShipment,
    NewUser,
    PatientIdentity,
    Reason,
)
from cartnet.web.actions import EVENT_PAGES
from cartnet.web.custody import STEP_PAGES
from cartnet.web.portal import page_routers

FIELDS = (
    "printed_name",
    "given_name",
    "family_name",
    "hospital_number",
    "organisation",
    "place",
    "courier",
    "tracking",
    "qc_test",
    "qc_result",
    "qc_specification",
    "exception_reason",
    "cancel_reason",
)


def payload(field: str) -> str:
    """Markup that runs script if unescaped; no spaces, so identifier fields take it too."""
    return f'<script>alert("{field}")</script>"><img/src=x/onerror=alert("{field}")>'


def _short(field: str) -> str:
    """A payload short enough for identifier fields (64 characters)."""
    return f"<script>{field}</script>"


def _receipt(portal: Portal, order_id: str, scanned: str) -> bool:
    """Receive the bag as the operator with the markup name; whether the scan was taken."""
    with contextlib.suppress(Conflict):
        custody.record_custody(
            portal.ctx,
            portal.principal("mallory"),
            order_id,
            CustodyRequest(
                step=CustodyStep.RECEIPT_AT_SITE,
                scanned=scanned,
                organisation=payload("organisation"),
                place=payload("place"),
                at=now(),
                signatures=signed("mallory"),
            ),
        )
        return True
    return False


def _fill(portal: Portal) -> list[str]:
    """Write every free-text field through the use cases; the ids of the orders."""
    ctx = portal.ctx
    accounts.create_user(
        ctx,
        accounts.SYSTEM,
        NewUser(
            username="mallory",
            printed_name=payload("printed_name"),
            password=PASSWORD,
            role=Role.SITE_OPERATOR,
            site=SITE,
        ),
    )
    coordinator = portal.principal("coordinator")
    order = orders.enroll(
        ctx,
        coordinator,
        NewOrder(
            product="tisagenlecleucel",
            earliest_apheresis=date.today() + timedelta(days=3),
            patient=PatientIdentity(
                given_name=payload("given_name"),
                family_name=payload("family_name"),
                date_of_birth=date(1961, 4, 12),
                hospital_number=payload("hospital_number"),
            ),
        ),
    )
    first = orders.offers(ctx, coordinator, order.id).offers[0]
    orders.book(ctx, coordinator, order.id, BookChain(site=first.site, start=first.start))
    order = advance(portal, order, OrderState.APHERESIS_COLLECTED)
    shipments.create_shipment(
        ctx,
        portal.principal("logistics"),
        order.id,
        NewShipment(direction="to_site", courier=payload("courier"), tracking=payload("tracking")),
    )
    order = advance(portal, order, OrderState.SHIPPED_TO_SITE)
    assert not _receipt(portal, order.id, "&/" + portal.booked().coi)  # raises an exception
    assert _receipt(portal, order.id, "&/" + order.coi)
    order = advance(portal, order, OrderState.IN_QC)
    qa = portal.principal("qa")
    quality.add_qc_result(
        ctx,
        qa,
        order.id,
        NewQcResult(
            test=_short("qc_test"),
            result=payload("qc_result"),
            specification=payload("qc_specification"),
            passed=True,
            tested_at=now(),
        ),
    )
    for exception in quality.order_exceptions(ctx, qa, order.id):
        quality.close_exception(
            ctx,
            qa,
            order.id,
            exception.id,
            CloseException(reason_code=ReasonCode.OTHER, reason_text=payload("exception_reason")),
        )
    other = portal.enrolled()
    orders.close(
        ctx,
        coordinator,
        other.id,
        OrderEvent.CANCEL,
        Reason(reason_code=ReasonCode.OTHER, reason_text=payload("cancel_reason")),
    )
    return [order.id, other.id]


def _pages(order_ids: list[str]) -> list[str]:
    """Every GET page of the portal, once per order for paths that take an order."""
    paths: list[str] = []
    for route in (r for router in page_routers() for r in router.routes):
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        path = route.path
        if "{step}" in path:
            paths += [path.replace("{step}", step) for step in STEP_PAGES]
        elif "{event}" in path:
            events = [p for p in EVENT_PAGES.values() if "/events/" in p]
            paths += [p.replace("{id}", "{order_id}") for p in events]
        else:
            paths.append(path)
    pages = []
    for path in paths:
        if "{order_id}" in path:
            pages += [path.replace("{order_id}", order_id) for order_id in order_ids]
        elif "{" not in path:
            pages.append(path)
    return pages


def test_stored_free_text_is_text_on_every_page_for_every_role(portal: Portal) -> None:
    order_ids = _fill(portal)
    pages = _pages(order_ids)
    assert any(p.endswith("/release") for p in pages) and "/orders" in pages
    shown: set[str] = set()
    fetched = 0
    for username in USERS:
        client = portal.as_user(username)
        for path in pages:
            answer = client.get(path)
            assert answer.status_code < 500, (username, path, answer.text[:500])
            if not answer.headers.get("content-type", "").startswith("text/html"):
                continue
            fetched += 1
            for field in FIELDS:
                raw = _short(field) if field == "qc_test" else payload(field)
                assert raw not in answer.text, f"{field} as markup on {path} for {username}"
                if str(escape(raw)) in answer.text:  # as Jinja escapes it
                    shown.add(field)
    assert fetched > 100
    assert shown == set(FIELDS), f"never shown: {sorted(set(FIELDS) - shown)}"
