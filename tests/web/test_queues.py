"""The role homes: the center's, the site's queues with scan-to-receive, and what they link."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from tests.api.conftest import PASSWORD
from tests.web.conftest import Portal

from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderState
from cartnet.service import custody, orders, quality, shipments
from cartnet.service.schemas import (
    CustodyRequest,
    EventRequest,
    NewQcResult,
    NewShipment,
    OrderView,
    SignatureInput,
    StepRequest,
)

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')

_HANDOFFS: tuple[tuple[OrderState, CustodyStep, str], ...] = (
    (OrderState.BOOKED, CustodyStep.COLLECTION, "coordinator"),
    (OrderState.APHERESIS_COLLECTED, CustodyStep.HANDOVER_TO_COURIER, "logistics"),
    (OrderState.SHIPPED_TO_SITE, CustodyStep.RECEIPT_AT_SITE, "operator"),
    (OrderState.RECEIVED_AT_SITE, CustodyStep.START_MANUFACTURING, "operator"),
)


def signed(user: str) -> list[SignatureInput]:
    return [SignatureInput(username=user, password=PASSWORD)]


def now() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=1)


def state(portal: Portal, order_id: str) -> OrderState:
    return orders.get_order(portal.ctx, portal.principal("logistics"), order_id).state


def advance(portal: Portal, order: OrderView, target: OrderState) -> OrderView:
    """Take a booked order through the service's steps until it is in ``target``."""
    ctx = portal.ctx
    while (current := state(portal, order.id)) is not target:
        handoff = next((h for h in _HANDOFFS if h[0] is current), None)
        if handoff is not None:
            _, step, user = handoff
            custody.record_custody(
                ctx,
                portal.principal(user),
                order.id,
                CustodyRequest(
                    step=step,
                    scanned="&/" + order.coi,
                    organisation="org",
                    place="bench",
                    at=now(),
                    signatures=signed(user),
                ),
            )
        elif current is OrderState.IN_MANUFACTURING:
            orders.apply_event(
                ctx,
                portal.principal("operator"),
                order.id,
                EventRequest(event="complete_manufacturing", signatures=signed("operator")),
            )
        elif current is OrderState.IN_QC:
            qc(portal, order.id, "sterility", "no growth", passed=True)
            custody.record_signed_step(
                ctx,
                portal.principal("qa"),
                order.id,
                CustodyStep.RELEASE,
                StepRequest(
                    scanned="&/" + order.coi, place="QA", at=now(), signatures=signed("qa")
                ),
            )
        elif current is OrderState.RELEASED:
            custody.record_custody(
                ctx,
                portal.principal("operator"),
                order.id,
                CustodyRequest(
                    step=CustodyStep.HANDOVER_TO_COURIER_RETURN,
                    scanned="&/" + order.coi,
                    organisation="org",
                    place="dock",
                    at=now(),
                    signatures=signed("operator"),
                ),
            )
        elif current is OrderState.SHIPPED_TO_CENTER:
            custody.record_custody(
                ctx,
                portal.principal("coordinator"),
                order.id,
                CustodyRequest(
                    step=CustodyStep.RECEIPT_AT_CENTER,
                    scanned="&/" + order.coi,
                    organisation="org",
                    place="pharmacy",
                    at=now(),
                    signatures=signed("coordinator"),
                ),
            )
        else:
            raise AssertionError(f"cannot advance from {current}")
    return orders.get_order(ctx, portal.principal("logistics"), order.id)


def qc(portal: Portal, order_id: str, test: str, result: str, *, passed: bool) -> None:
    quality.add_qc_result(
        portal.ctx,
        portal.principal("qa"),
        order_id,
        NewQcResult(
            test=test, result=result, specification="no growth", passed=passed, tested_at=now()
        ),
    )


def ship(portal: Portal, order_id: str, courier: str, tracking: str) -> str:
    sent = shipments.create_shipment(
        portal.ctx,
        portal.principal("logistics"),
        order_id,
        NewShipment(direction="to_site", courier=courier, tracking=tracking),
    )
    return sent.id


def test_the_center_home_shows_what_waits_for_the_coordinator(portal: Portal) -> None:
    enrolled = portal.enrolled()
    booked = portal.booked()
    delivered = advance(portal, portal.booked(), OrderState.DELIVERED)
    other = portal.enrolled("other_coordinator")

    page = portal.as_user("coordinator").get("/center")
    assert page.status_code == 200, page.text
    assert 'href="/orders/new"' in page.text
    todo = page.text.split("Waiting for you")[1].split("Orders by stage")[0]
    assert f"/orders/{enrolled.id}/offers" in todo  # enrolled without booking
    assert f"/orders/{delivered.id}/infusion" in todo  # delivered: infuse
    assert other.coi_eye_readable not in page.text  # another center's order
    stages = page.text.split("Orders by stage")[1].split("Open orders")[0]
    assert re.search(r"state=booked\">booked</a></td><td class=\"num\">1<", stages), stages
    assert booked.coi_eye_readable in page.text
    assert booked.plan is not None and booked.plan.apheresis.isoformat() in page.text
    assert "Open exceptions: 0" in page.text

    # Filter by state: only that state, counted.
    only = portal.as_user("coordinator").get("/center?state=delivered")
    assert only.status_code == 200
    listed = only.text.split("Orders delivered")[1]
    assert delivered.coi_eye_readable in listed and booked.coi_eye_readable not in listed
    assert "<strong>1</strong> order(s)" in listed

    for user, status in (("operator", 403), ("qa", 403), ("logistics", 403), ("admin", 403)):
        assert portal.as_user(user).get("/center").status_code == status


def test_the_center_home_pages_its_open_orders(portal: Portal) -> None:
    for _ in range(27):
        portal.enrolled()
    first = portal.as_user("coordinator").get("/center")
    assert "<strong>27</strong> order(s)" in first.text
    assert "25 shown of 27" in first.text
    found = re.search(r'href="(/center\?cursor=[^"]+)" rel="next"', first.text)
    assert found is not None
    second = portal.as_user("coordinator").get(found.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "2 shown of 27" in second.text


def test_the_site_home_shows_incoming_queue_and_outbound(portal: Portal) -> None:
    incoming = advance(portal, portal.booked(), OrderState.APHERESIS_COLLECTED)
    ship(portal, incoming.id, XSS[0], XSS[1])
    incoming = advance(portal, incoming, OrderState.SHIPPED_TO_SITE)
    received = advance(portal, portal.booked(), OrderState.RECEIVED_AT_SITE)
    released = advance(portal, portal.booked(), OrderState.RELEASED)
    assert received.plan is not None

    page = portal.as_user("operator").get("/site")
    assert page.status_code == 200, page.text
    section = page.text.split('id="incoming"')[1].split('id="queue"')[0]
    assert incoming.coi_eye_readable in section
    assert f'href="/orders/{incoming.id}/custody/receipt_at_site">Scan to receive' in section
    for text in XSS:  # courier and tracking are shown as text
        assert text not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in section
    assert 'name="code"' in section and 'action="/site/scan"' in section

    queue = page.text.split('id="queue"')[1].split('id="outbound"')[0]
    if received.plan.start >= portal.ctx.today():
        assert received.plan.start.isoformat() in queue
    assert f"/orders/{received.id}/custody/start_manufacturing" in queue
    assert re.search(r'<td class="num">\d+</td>', queue)  # the day's capacity
    outbound = page.text.split('id="outbound"')[1]
    assert f"/orders/{released.id}/custody/handover_to_courier_return" in outbound

    qa_view = portal.as_user("qa").get("/site")
    assert qa_view.status_code == 200 and incoming.coi_eye_readable in qa_view.text
    assert 'action="/site/scan"' not in qa_view.text  # QA does not receive
    assert "start_manufacturing" not in qa_view.text
    leipzig = portal.as_user("other_operator").get("/site")
    assert leipzig.status_code == 200 and incoming.coi_eye_readable not in leipzig.text
    for user in ("coordinator", "logistics", "planner", "admin"):
        assert portal.as_user(user).get("/site").status_code == 403


def test_scan_to_receive_opens_the_receipt_page_with_the_code(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.SHIPPED_TO_SITE)
    operator = portal.as_user("operator")
    found = operator.get("/site/scan", params={"code": "&/" + order.coi}, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"].startswith(f"/orders/{order.id}/custody/receipt_at_site?")
    assert "scanned=" in found.headers["location"]
    form = operator.get(found.headers["location"])
    assert form.status_code == 200
    coi = html.escape("&/" + order.coi)
    assert f'<input id="f-scanned" name="scanned" type="text" value="{coi}"' in form.text

    # A bag that is not incoming here, and text that is no code: the message by the field.
    elsewhere = portal.booked()
    missing = operator.get("/site/scan", params={"code": "&/" + elsewhere.coi})
    assert missing.status_code == 404
    assert 'id="e-code"' in missing.text and "no incoming shipment" in missing.text
    garbage = operator.get("/site/scan", params={"code": XSS[0]})
    assert garbage.status_code == 422 and 'id="e-code"' in garbage.text
    assert XSS[0] not in garbage.text
    assert state(portal, order.id) is OrderState.SHIPPED_TO_SITE
    assert portal.as_user("coordinator").get("/site/scan?code=x").status_code == 403
