"""Handoffs and lifecycle steps through the portal, vein to vein, with their refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import escape
from tests.api.conftest import PASSWORD
from tests.web.conftest import Portal

from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.signatures import SignaturePolicy
from cartnet.service import custody, orders, quality
from cartnet.service.schemas import (
    CloseException,
    CustodyView,
    NewQcResult,
    OrderView,
    SignatureInput,
    StepRequest,
)
from cartnet.store import AuditRepository, make_session_factory

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
RECORDED = "This refusal was recorded on the order"


def local_now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def handoff(order: OrderView, **extra: str) -> dict[str, str]:
    """A handoff form as a scanner fills it: the bag's CoI, place, time, a signature."""
    return {
        "scanned": "&/" + order.coi,
        "organisation": "Dana-Farber Cancer Institute",
        "place": "bench 1",
        "at": local_now(),
        "utc_offset": "0",
        "temperature_c": "-180",
        "signature_password": PASSWORD,
        **extra,
    }


def state(portal: Portal, order_id: str) -> OrderState:
    return orders.get_order(portal.ctx, portal.principal("qa"), order_id).state


def chain(portal: Portal, order_id: str) -> list[CustodyView]:
    return custody.custody_chain(portal.ctx, portal.principal("qa"), order_id)


def open_exceptions(portal: Portal, order_id: str) -> list[int]:
    found = quality.order_exceptions(portal.ctx, portal.principal("qa"), order_id)
    return [e.id for e in found if e.closed_at is None]


def close_exceptions(portal: Portal, order_id: str) -> None:
    for exception_id in open_exceptions(portal, order_id):
        quality.close_exception(
            portal.ctx,
            portal.principal("qa"),
            order_id,
            exception_id,
            CloseException(reason_code=ReasonCode.DEVIATION, reason_text="wrong bag caught"),
        )


def step(portal: Portal, user: str, order: OrderView, name: str, **extra: str) -> Any:
    return portal.post(user, f"/orders/{order.id}/custody/{name}", handoff(order, **extra))


def release_by_qa(portal: Portal, order: OrderView) -> None:
    """QC and QA release through the service (the release page is another helper's)."""
    qa = portal.principal("qa")
    quality.add_qc_result(
        portal.ctx,
        qa,
        order.id,
        NewQcResult(
            test="sterility",
            result="no growth",
            specification="no growth",
            passed=True,
            tested_at=datetime.now(UTC),
        ),
    )
    custody.record_signed_step(
        portal.ctx,
        qa,
        order.id,
        CustodyStep.RELEASE,
        StepRequest(
            scanned="&/" + order.coi,
            place="QA office",
            at=datetime.now(UTC),
            signatures=[SignatureInput(username="qa", password=PASSWORD)],
        ),
    )


def test_one_therapy_through_the_custody_pages(portal: Portal) -> None:
    """Collection to infusion on the pages, with a wrong bag at the site and at the bedside."""
    order = portal.booked()
    other = portal.enrolled()
    coordinator = portal.as_user("coordinator")

    page = coordinator.get(f"/orders/{order.id}/custody/collection")
    assert page.status_code == 200, page.text
    assert "Scan the bag&#39;s chain-of-identity code" in page.text
    assert re.search(
        r'<input id="f-scanned" name="scanned" type="text" value=""[^>]* autofocus', page.text
    )
    assert 'value="Dana-Farber Cancer Institute"' in page.text  # the user's own center
    assert 'name="signature_password"' in page.text and "responsibility" in page.text
    collected = step(portal, "coordinator", order, "collection")
    assert collected.status_code == 303 and collected.headers["location"] == f"/orders/{order.id}"
    assert state(portal, order.id) is OrderState.APHERESIS_COLLECTED

    assert step(portal, "logistics", order, "handover_to_courier").status_code == 303
    transfer = portal.as_user("logistics").get(f"/orders/{order.id}/custody/courier_transfer")
    assert transfer.status_code == 200 and 'name="signature_password"' not in transfer.text
    moved = step(portal, "logistics", order, "courier_transfer", signature_password="")
    assert moved.status_code == 303, moved.text
    assert state(portal, order.id) is OrderState.SHIPPED_TO_SITE

    # The operator scans another therapy's bag: refused on the spot, and kept.
    events = len(chain(portal, order.id))
    wrong = step(
        portal, "operator", order, "receipt_at_site", scanned="&/" + other.coi, place="dock 3"
    )
    assert wrong.status_code == 409, wrong.text
    assert 'id="e-scanned"' in wrong.text and "belongs to another therapy" in wrong.text
    assert RECORDED in wrong.text
    assert 'value="dock 3"' in wrong.text  # the rest of the form stays for a new scan
    assert 'id="f-scanned" name="scanned" type="text" value=""' in wrong.text
    refused = chain(portal, order.id)
    assert len(refused) == events + 1
    assert not refused[-1].accepted and refused[-1].scanned == "&/" + other.coi
    assert len(open_exceptions(portal, order.id)) == 1
    assert state(portal, order.id) is OrderState.SHIPPED_TO_SITE

    received = step(portal, "operator", order, "receipt_at_site")
    assert received.status_code == 303 and received.headers["location"] == "/site"
    assert step(portal, "operator", order, "start_manufacturing").status_code == 303
    assert state(portal, order.id) is OrderState.IN_MANUFACTURING

    # Finishing manufacturing is signed: a wrong password changes nothing.
    finish = f"/orders/{order.id}/events/complete_manufacturing"
    form = portal.as_user("operator").get(finish)
    assert form.status_code == 200 and "authorship" in form.text
    assert 'name="reason_code"' not in form.text
    steps = orders.order_steps(portal.ctx, portal.principal("qa"), order.id)
    bad = portal.post("operator", finish, {"signature_password": "not my password"})
    assert bad.status_code == 401, bad.text
    assert 'id="e-signature_password"' in bad.text and "wrong username or password" in bad.text
    assert state(portal, order.id) is OrderState.IN_MANUFACTURING
    assert orders.order_steps(portal.ctx, portal.principal("qa"), order.id) == steps
    unsigned = portal.post("operator", finish, {})
    assert unsigned.status_code == 422 and 'id="e-signature_password"' in unsigned.text
    done = portal.post("operator", finish, {"signature_password": PASSWORD})
    assert done.status_code == 303, done.text
    assert state(portal, order.id) is OrderState.IN_QC

    close_exceptions(portal, order.id)
    release_by_qa(portal, order)
    assert step(portal, "operator", order, "handover_to_courier_return").status_code == 303
    assert step(portal, "coordinator", order, "receipt_at_center").status_code == 303
    assert state(portal, order.id) is OrderState.DELIVERED

    # At the bedside: a wrong bag is refused and raises an exception that blocks infusion.
    infusion = f"/orders/{order.id}/infusion"
    bedside = coordinator.get(infusion)
    assert (
        bedside.status_code == 200 and "Scan the bag&#39;s chain-of-identity code" in bedside.text
    )
    bedside_form = {k: v for k, v in handoff(order, place="ward 4").items() if k != "organisation"}
    wrong_bag = portal.post("coordinator", infusion, {**bedside_form, "scanned": "&/" + other.coi})
    assert wrong_bag.status_code == 409 and RECORDED in wrong_bag.text
    blocked = portal.post("coordinator", infusion, bedside_form)
    assert blocked.status_code == 409 and "open exception" in blocked.text
    assert RECORDED not in blocked.text
    assert state(portal, order.id) is OrderState.DELIVERED
    close_exceptions(portal, order.id)
    infused = portal.post("coordinator", infusion, bedside_form)
    assert infused.status_code == 303, infused.text
    assert state(portal, order.id) is OrderState.INFUSED
    accepted = [c.step for c in sorted(chain(portal, order.id), key=lambda c: c.id) if c.accepted]
    assert accepted == [
        "collection",
        "handover_to_courier",
        "courier_transfer",
        "receipt_at_site",
        "start_manufacturing",
        "release",
        "handover_to_courier_return",
        "receipt_at_center",
        "infusion",
    ]
    with make_session_factory(portal.ctx.engine)() as session, session.begin():
        assert AuditRepository().verify(session) == []


def test_times_are_entered_with_their_offset_and_parsed_strictly(portal: Portal) -> None:
    order = portal.booked()
    path = f"/orders/{order.id}/custody/collection"
    events = len(chain(portal, order.id))
    for at, offset, field in (
        ("04/12/2026 14:30", "0", "at"),
        ("2026-12-04 14:30", "0", "at"),
        (local_now(), "61", "utc_offset"),
        (local_now(), "+01:00", "utc_offset"),
    ):
        refused = portal.post("coordinator", path, handoff(order, at=at, utc_offset=offset))
        assert refused.status_code == 422, (at, offset)
        assert f'id="e-{field}"' in refused.text
    cold = portal.post("coordinator", path, handoff(order, temperature_c="cold"))
    assert cold.status_code == 422 and 'id="e-temperature_c"' in cold.text
    assert len(chain(portal, order.id)) == events
    assert state(portal, order.id) is OrderState.BOOKED

    local = (datetime.now(UTC) + timedelta(minutes=59)).strftime("%Y-%m-%dT%H:%M")
    done = portal.post("coordinator", path, handoff(order, at=local, utc_offset="60"))
    assert done.status_code == 303, done.text
    recorded = chain(portal, order.id)[-1]
    assert recorded.utc_offset_minutes == 60
    assert recorded.at.strftime("%Y-%m-%dT%H:%M") == (
        datetime.strptime(local, "%Y-%m-%dT%H:%M") - timedelta(hours=1)
    ).strftime("%Y-%m-%dT%H:%M")


def test_a_code_typed_by_hand_needs_its_check_character(portal: Portal) -> None:
    order = portal.booked()
    typed = step(portal, "coordinator", order, "collection", scanned=order.coi, typed="yes")
    assert typed.status_code == 409 and "check character" in typed.text
    assert RECORDED in typed.text
    assert state(portal, order.id) is OrderState.BOOKED


def test_step_pages_answer_as_the_api_would(portal: Portal) -> None:
    order = portal.booked()
    base = f"/orders/{order.id}"
    assert portal.as_user("operator").get(f"{base}/custody/collection").status_code == 403
    assert portal.as_user("other_coordinator").get(f"{base}/custody/collection").status_code == 404
    assert portal.as_user("coordinator").get(f"{base}/custody/receipt_at_site").status_code == 409
    assert portal.as_user("coordinator").get(f"{base}/custody/release").status_code == 404
    assert portal.as_user("coordinator").get(f"{base}/custody/infusion").status_code == 404
    assert portal.as_user("coordinator").get(f"{base}/custody/teleport").status_code == 404
    assert portal.as_user("operator").get(f"{base}/infusion").status_code == 403
    assert portal.as_user("coordinator").get(f"{base}/infusion").status_code == 409
    assert portal.as_user("logistics").get(f"{base}/custody/courier_transfer").status_code == 409
    assert portal.as_user("qa").get(f"{base}/events/report_oos").status_code == 409
    assert portal.as_user("qa").get(f"{base}/events/release").status_code == 404
    refused = step(portal, "operator", order, "collection")
    assert refused.status_code == 403
    assert state(portal, order.id) is OrderState.BOOKED and chain(portal, order.id) == []


def test_qa_decides_an_out_of_specification_batch_on_the_event_pages(portal: Portal) -> None:
    order = portal.booked()
    for name, user in (
        ("collection", "coordinator"),
        ("handover_to_courier", "logistics"),
        ("receipt_at_site", "operator"),
        ("start_manufacturing", "operator"),
    ):
        assert step(portal, user, order, name).status_code == 303, name
    done = portal.post(
        "operator",
        f"/orders/{order.id}/events/complete_manufacturing",
        {"signature_password": PASSWORD},
    )
    assert done.status_code == 303
    assert (
        portal.as_user("operator").get(f"/orders/{order.id}/events/report_oos").status_code == 403
    )
    oos = portal.post(
        "qa", f"/orders/{order.id}/events/report_oos", {"signature_password": PASSWORD}
    )
    assert oos.status_code == 303, oos.text
    assert state(portal, order.id) is OrderState.OUT_OF_SPECIFICATION

    again = f"/orders/{order.id}/events/remanufacture"
    form = portal.as_user("qa").get(again)
    codes = set(re.findall(r'<option value="([a-z_]+)"', form.text))
    assert codes == {"manufacturing_failure", "deviation", "other"}
    expanded = portal.as_user("qa").get(f"/orders/{order.id}/events/release_under_expanded_access")
    assert set(re.findall(r'<option value="([a-z_]+)"', expanded.text)) == {"expanded_access"}
    offers = portal.as_user("coordinator").get(f"/orders/{order.id}/offers")
    assert set(re.findall(r'<option value="([a-z_]+)"', offers.text)) == {
        "manufacturing_failure",
        "deviation",
        "clinical_decision",
        "other",
    }

    for value in XSS:
        bare = portal.post(
            "qa",
            again,
            {"reason_code": "other", "reason_text": "", "signature_password": PASSWORD},
        )
        assert bare.status_code == 422 and "free-text" in bare.text
        unsigned = portal.post("qa", again, {"reason_code": "other", "reason_text": value})
        assert unsigned.status_code == 422 and value not in unsigned.text
        assert str(escape(value)) in unsigned.text
    assert state(portal, order.id) is OrderState.OUT_OF_SPECIFICATION
    remade = portal.post(
        "qa",
        again,
        {"reason_code": "manufacturing_failure", "signature_password": PASSWORD},
    )
    assert remade.status_code == 303, remade.text
    assert state(portal, order.id) is OrderState.IN_MANUFACTURING

    # The second batch fails too: the coordinator books a new apheresis, with a reason.
    for user, event in (("operator", "complete_manufacturing"), ("qa", "report_oos")):
        path = f"/orders/{order.id}/events/{event}"
        assert portal.post(user, path, {"signature_password": PASSWORD}).status_code == 303
    offer = re.findall(r'name="offer" value="([^"]+)"', offers.text)[-1]
    unexplained = portal.post("coordinator", f"/orders/{order.id}/book", {"offer": offer})
    assert unexplained.status_code == 422 and 'id="e-reason_code"' in unexplained.text
    assert state(portal, order.id) is OrderState.OUT_OF_SPECIFICATION
    rebooked = portal.post(
        "coordinator",
        f"/orders/{order.id}/book",
        {"offer": offer, "reason_code": "clinical_decision"},
    )
    assert rebooked.status_code == 303, rebooked.text
    assert state(portal, order.id) is OrderState.BOOKED
    last = orders.order_steps(portal.ctx, portal.principal("qa"), order.id)[-1]
    assert (last.event, last.reason_code) == ("rebook_apheresis", "clinical_decision")


def test_posts_without_the_csrf_token_are_refused(portal: Portal) -> None:
    order = portal.booked()
    client = portal.as_user("coordinator")
    path = f"/orders/{order.id}/custody/collection"
    assert client.post(path, data=handoff(order), follow_redirects=False).status_code == 403
    event = client.post(
        f"/orders/{order.id}/events/complete_manufacturing", data={"csrf_token": "forged"}
    )
    assert event.status_code == 403
    infusion = client.post(f"/orders/{order.id}/infusion", data=handoff(order))
    assert infusion.status_code == 403
    assert state(portal, order.id) is OrderState.BOOKED and chain(portal, order.id) == []


def test_free_text_is_shown_as_text(portal: Portal) -> None:
    """Place and organisation come back escaped on the form and in the custody chain."""
    order = portal.booked()
    other = portal.enrolled()
    for value in XSS:
        refused = step(
            portal,
            "coordinator",
            order,
            "collection",
            scanned="&/" + other.coi,
            place=value,
            organisation=value,
        )
        assert refused.status_code == 409
        assert value not in refused.text and str(escape(value)) in refused.text
        page = portal.as_user("coordinator").get(f"/orders/{order.id}")
        assert value not in page.text and str(escape(value)) in page.text
    scanned = step(portal, "coordinator", order, "collection", scanned=XSS[0])
    assert scanned.status_code == 409 and XSS[0] not in scanned.text


def test_a_second_signer_signs_in_their_own_session_where_the_country_asks_for_two(
    portal: Portal,
) -> None:
    """Two signatures for a US receipt: the operator signs, the step awaits; a second
    operator co-signs on their Signatures page; QA of the site may not (issue 13, #5)."""
    portal.ctx.signature_policy = SignaturePolicy.from_mapping({"receive_at_site": {"US": 2}})
    order = portal.booked()
    assert step(portal, "coordinator", order, "collection").status_code == 303
    assert step(portal, "logistics", order, "handover_to_courier").status_code == 303
    form = portal.as_user("operator").get(f"/orders/{order.id}/custody/receipt_at_site")
    assert "awaits co-signature" in form.text and "site operator" in form.text
    assert "cosigner_1" not in form.text, "no field for another person's password"

    first = step(portal, "operator", order, "receipt_at_site")
    assert first.status_code == 303 and first.headers["location"].startswith("/signatures#csr_")
    request_id = first.headers["location"].split("#")[1]
    assert state(portal, order.id) is OrderState.SHIPPED_TO_SITE
    mine = portal.as_user("operator").get("/signatures")
    assert f'action="/signatures/{request_id}/withdraw"' in mine.text
    assert f'action="/signatures/{request_id}/sign"' not in mine.text
    assert f"/signatures/{request_id}/sign" not in portal.as_user("qa").get("/signatures").text
    page = portal.as_user("operator2").get("/signatures")
    assert f'action="/signatures/{request_id}/sign"' in page.text
    assert "Sam Operator" in page.text and 'value="responsibility"' in page.text
    assert 'href="/signatures"' in page.text, "the navigation links the page"

    sign = f"/signatures/{request_id}/sign"
    field = f'id="e-password_{request_id}"'
    wrong = portal.post("operator2", sign, {"password": "not hers", "meaning": "responsibility"})
    assert wrong.status_code == 403 and field in wrong.text and "not hers" not in wrong.text
    outsider = portal.post("qa", sign, {"password": PASSWORD, "meaning": "responsibility"})
    assert outsider.status_code == 403
    said = re.compile(r'(?:id="e-password_[^"]+"|role="alert")>([^<]+)<')
    assert said.findall(wrong.text) == said.findall(outsider.text) != [], "refused alike"
    assert state(portal, order.id) is OrderState.SHIPPED_TO_SITE

    done = portal.post("operator2", sign, {"password": PASSWORD, "meaning": "responsibility"})
    assert done.status_code == 303 and done.headers["location"] == f"/orders/{order.id}"
    assert state(portal, order.id) is OrderState.RECEIVED_AT_SITE
    signed = orders.order_steps(portal.ctx, portal.principal("qa"), order.id)[-1].signatures
    assert [s.printed_name for s in signed] == ["Sam Operator", "Sue Second"]
    assert request_id not in portal.as_user("operator").get("/signatures").text


def test_the_first_signer_withdraws_a_step_awaiting_co_signature(portal: Portal) -> None:
    """A withdrawn step leaves the order where it was and can no longer be co-signed."""
    portal.ctx.signature_policy = SignaturePolicy.from_mapping({"collect_apheresis": {"US": 2}})
    order = portal.booked()
    first = step(portal, "coordinator", order, "collection")
    request_id = first.headers["location"].split("#")[1]
    withdrawn = portal.post("coordinator", f"/signatures/{request_id}/withdraw")
    assert withdrawn.status_code == 303
    assert request_id not in portal.as_user("coordinator").get("/signatures").text
    assert state(portal, order.id) is OrderState.BOOKED
