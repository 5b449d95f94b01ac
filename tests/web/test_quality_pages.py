"""QA's pages: the home, QC results, the exception queue, and the release decision."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from tests.api.conftest import PASSWORD
from tests.web.conftest import Portal
from tests.web.test_queues import XSS, advance, now, qc, ship, state

from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.service import custody, orders, quality, shipments
from cartnet.service.errors import Conflict
from cartnet.service.schemas import CustodyRequest, CustodyView, OrderView
from cartnet.web.quality import chain_with_gaps


def local_now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def release_form(order: OrderView, **extra: str) -> dict[str, str]:
    return {
        "scanned": "&/" + order.coi,
        "place": "QA office",
        "at": local_now(),
        "utc_offset": "0",
        "signature_password": PASSWORD,
        **extra,
    }


def wrong_scan(portal: Portal, order: OrderView, other: OrderView) -> None:
    """A bag of another therapy scanned at the site: refused, kept, an exception raised."""
    with pytest.raises(Conflict):
        custody.record_custody(
            portal.ctx,
            portal.principal("operator"),
            order.id,
            CustodyRequest(
                step=CustodyStep.RECEIPT_AT_SITE,
                scanned="&/" + other.coi,
                organisation="org",
                place="dock",
                at=now(),
                signatures=[],
            ),
        )


def excursion_log(portal: Portal, order_id: str, shipment_id: str) -> None:
    """A logger file with one reading beyond the shipment's limits."""
    sent = next(
        s
        for s in shipments.shipments(portal.ctx, portal.principal("logistics"), order_id)
        if s.id == shipment_id
    )
    inside = sent.high_c - 1 if sent.high_c is not None else (sent.low_c or 0) + 1
    outside = sent.high_c + 20 if sent.high_c is not None else (sent.low_c or 0) - 20
    start = datetime.now(UTC) - timedelta(hours=5)
    lines = ["timestamp,temperature_c"] + [
        f"{(start + timedelta(minutes=30 * i)).isoformat()},{t}"
        for i, t in enumerate([inside, inside, outside, outside, inside, inside])
    ]
    shipments.upload_temperature_log(
        portal.ctx,
        portal.principal("logistics"),
        order_id,
        shipment_id,
        "\n".join(lines).encode(),
    )


def open_ids(portal: Portal, order_id: str) -> list[int]:
    found = quality.order_exceptions(portal.ctx, portal.principal("qa"), order_id)
    return [e.id for e in found if e.closed_at is None]


def test_qa_home_lists_batches_in_qc_and_out_of_specification(portal: Portal) -> None:
    in_qc = advance(portal, portal.booked(), OrderState.IN_QC)
    page = portal.as_user("qa").get("/qa")
    assert page.status_code == 200, page.text
    assert in_qc.coi_eye_readable in page.text
    assert f"/orders/{in_qc.id}/qc" in page.text and f"/orders/{in_qc.id}/release" in page.text
    assert "Open exceptions: 0" in page.text
    for user in ("operator", "coordinator", "logistics", "planner", "admin"):
        assert portal.as_user(user).get("/qa").status_code == 403


def test_qc_results_are_entered_and_a_failure_leads_to_oos(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.IN_QC)
    url = f"/orders/{order.id}/qc"
    form = portal.as_user("operator").get(url)
    assert form.status_code == 200 and 'name="test"' in form.text
    assert 'name="tested_at"' in form.text and 'name="utc_offset"' in form.text
    result = {
        "test": XSS[0],
        "result": XSS[1],
        "specification": XSS[0],
        "passed": "no",
        "tested_at": (datetime.now(UTC) + timedelta(minutes=59)).strftime("%Y-%m-%dT%H:%M"),
        "utc_offset": "60",  # the local time where the test ran: UTC+01:00
    }
    # Refusals: each next to its field, nothing recorded.
    missing = portal.post("operator", url, {**result, "passed": ""})
    assert missing.status_code == 422 and 'id="e-passed"' in missing.text
    bad_time = portal.post("operator", url, {**result, "tested_at": "yesterday"})
    assert bad_time.status_code == 422 and 'id="e-tested_at"' in bad_time.text
    spaced = portal.post("operator", url, {**result, "test": "cell count"})
    assert spaced.status_code == 422 and 'id="e-test"' in spaced.text
    assert quality.qc_results(portal.ctx, portal.principal("qa"), order.id) == []

    done = portal.post("operator", url, result)
    assert done.status_code == 303 and done.headers["location"] == url
    recorded = quality.qc_results(portal.ctx, portal.principal("qa"), order.id)
    assert [(r.test, r.passed) for r in recorded] == [(XSS[0], False)]

    qa_view = portal.as_user("qa").get(url)
    for text in XSS:
        assert text not in qa_view.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in qa_view.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in qa_view.text
    assert "FAIL" in qa_view.text
    assert f'href="/orders/{order.id}/events/report_oos"' in qa_view.text
    assert "report_oos" not in portal.as_user("operator").get(url).text  # only QA reports

    for user, status in (("coordinator", 403), ("logistics", 403), ("other_operator", 404)):
        assert portal.as_user(user).get(url).status_code == status
    assert portal.post("coordinator", url, result).status_code == 403
    assert portal.as_user("operator").post(url, data=result).status_code == 403  # no CSRF
    assert len(quality.qc_results(portal.ctx, portal.principal("qa"), order.id)) == 1


def test_the_release_page_shows_everything_and_refuses_until_clean(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.APHERESIS_COLLECTED)
    other = portal.enrolled()
    shipment = ship(portal, order.id, "Cryoport", "TRK-1")
    excursion_log(portal, order.id, shipment)
    advance(portal, order, OrderState.SHIPPED_TO_SITE)
    wrong_scan(portal, order, other)
    order = advance(portal, order, OrderState.IN_QC)
    qc(portal, order.id, "sterility", "no growth", passed=True)
    qc(portal, order.id, "endotoxin", "9 EU/mL", passed=False)
    url = f"/orders/{order.id}/release"

    page = portal.as_user("qa").get(url)
    assert page.status_code == 200, page.text
    results = page.text.split("QC results of this batch")[1].split("Temperature of")[0]
    assert "sterility" in results and "endotoxin" in results and "FAIL" in results
    assert "report it out of specification" in page.text
    svg = page.text.split("<svg")[1].split("</svg>")[0]
    assert 'class="limit"' in svg and 'class="series"' in svg and 'class="excursion"' in svg
    exceptions = page.text.split("Open exceptions")[1].split("Chain of custody")[0]
    assert "temperature excursion" in exceptions and "scan mismatch" in exceptions
    assert exceptions.count('name="reason_code"') == 2
    chain = page.text.split("Chain of custody")[1].split("<h2>Release")[0]
    assert "refused scan" in chain
    assert order.expiry is not None and order.expiry.isoformat() in page.text
    assert 'name="signature_password"' in page.text and "approval" in page.text

    def refused(form: dict[str, str], field: str, status: int, words: str) -> None:
        before = len(orders.order_steps(portal.ctx, portal.principal("qa"), order.id))
        answer = portal.post("qa", url, form)
        assert answer.status_code == status, answer.text
        shown = re.search(r'(?:role="alert"|id="e-' + field + r'")>([^<]*)<', answer.text)
        assert shown is not None and words in shown.group(1), answer.text
        assert state(portal, order.id) is OrderState.IN_QC
        assert len(orders.order_steps(portal.ctx, portal.principal("qa"), order.id)) == before

    refused(release_form(order), "_form", 409, "QC tests failed: endotoxin")
    # Close both exceptions on the page: a reason text is required.
    ids = open_ids(portal, order.id)
    close = f"/orders/{order.id}/exceptions/{ids[0]}/close"
    no_text = portal.post("qa", close, {"reason_code": "deviation", "next": url})
    assert no_text.status_code == 422 and 'id="e-reason_text"' in no_text.text
    assert open_ids(portal, order.id) == ids
    assert portal.post("operator", close, {"reason_code": "deviation"}).status_code == 403
    for exception_id in ids:
        closed = portal.post(
            "qa",
            f"/orders/{order.id}/exceptions/{exception_id}/close",
            {"reason_code": "deviation", "reason_text": XSS[1], "next": url},
        )
        assert closed.status_code == 303 and closed.headers["location"] == url
    assert open_ids(portal, order.id) == []
    closed_view = portal.as_user("qa").get(url)
    assert XSS[1] not in closed_view.text and "No open exceptions" in closed_view.text


def test_a_clean_batch_is_released_on_the_page(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.IN_QC)
    url = f"/orders/{order.id}/release"
    before = len(orders.order_steps(portal.ctx, portal.principal("qa"), order.id))
    none_yet = portal.post("qa", url, release_form(order))
    assert none_yet.status_code == 409 and "no QC results" in none_yet.text
    qc(portal, order.id, "sterility", "no growth", passed=True)
    other = portal.enrolled()
    wrong = portal.post("qa", url, release_form(order, scanned="&/" + other.coi))
    assert wrong.status_code == 409 and 'id="e-scanned"' in wrong.text
    assert state(portal, order.id) is OrderState.IN_QC
    assert len(orders.order_steps(portal.ctx, portal.principal("qa"), order.id)) == before
    assert portal.as_user("qa").post(url, data=release_form(order)).status_code == 403  # CSRF
    blocked = portal.post("qa", url, release_form(order))
    assert blocked.status_code == 409 and "open exception" in blocked.text
    assert state(portal, order.id) is OrderState.IN_QC
    for exception_id in open_ids(portal, order.id):  # the refused scan raised one
        quality_close = f"/orders/{order.id}/exceptions/{exception_id}/close"
        portal.post("qa", quality_close, {"reason_code": "deviation", "reason_text": "caught"})
    bad = portal.post("qa", url, release_form(order, signature_password="not mine"))
    assert bad.status_code == 401 and 'id="e-signature_password"' in bad.text
    assert state(portal, order.id) is OrderState.IN_QC
    done = portal.post("qa", url, release_form(order))
    assert done.status_code == 303, done.text
    assert state(portal, order.id) is OrderState.RELEASED
    after = portal.as_user("qa").get(url)
    assert after.status_code == 200 and 'name="signature_password"' not in after.text
    for user, status in (("operator", 403), ("coordinator", 403), ("logistics", 403)):
        assert portal.as_user(user).get(url).status_code == status


def test_the_exception_queue_filters_pages_and_follows_tenancy(portal: Portal) -> None:
    order = advance(portal, portal.booked(), OrderState.SHIPPED_TO_SITE)
    other = portal.enrolled()
    portal.ctx.settings = portal.ctx.settings.model_copy(  # 27 exceptions to page through
        update={"refused_scans_per_order": 30, "refused_scans_per_user": 30}
    )
    for _ in range(27):
        wrong_scan(portal, order, other)
    qa = portal.as_user("qa")
    first = qa.get("/exceptions")
    assert first.status_code == 200
    assert "<strong>27</strong> exception(s)" in first.text and "25 shown of 27" in first.text
    assert first.text.count('name="reason_text"') == 25  # QA closes on the queue
    found = re.search(r'href="(/exceptions\?[^"]+)" rel="next"', first.text)
    assert found is not None
    second = qa.get(found.group(1).replace("&amp;", "&"))
    assert "2 shown of 27" in second.text

    ids = open_ids(portal, order.id)
    closed = portal.post(
        "qa",
        f"/orders/{order.id}/exceptions/{ids[0]}/close",
        {"reason_code": "other", "reason_text": XSS[0], "next": "//evil.example/"},
    )
    assert closed.status_code == 303 and closed.headers["location"] == f"/orders/{order.id}"
    done = qa.get("/exceptions?status=closed")
    assert "<strong>1</strong> exception(s)" in done.text
    assert XSS[0] not in done.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in done.text
    none = qa.get("/exceptions?kind=temperature_excursion&status=all")
    assert "<strong>0</strong> exception(s)" in none.text

    logistics = portal.as_user("logistics").get("/exceptions")
    assert logistics.status_code == 200 and "<strong>26</strong>" in logistics.text
    assert 'name="reason_text"' not in logistics.text  # read-only
    mine = portal.as_user("coordinator").get("/exceptions")
    assert "<strong>26</strong>" in mine.text
    theirs = portal.as_user("other_coordinator").get("/exceptions")
    assert "<strong>0</strong>" in theirs.text
    assert portal.as_user("admin").get("/exceptions").status_code == 403
    no_csrf = qa.post(
        f"/orders/{order.id}/exceptions/{ids[1]}/close", data={"reason_code": "other"}
    )
    assert no_csrf.status_code == 403
    assert len(open_ids(portal, order.id)) == 26


def test_the_chain_flags_gaps_refusals_and_long_transit() -> None:
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)

    def event(step: CustodyStep, hours: float, accepted: bool = True) -> CustodyView:
        return CustodyView(
            id=int(hours),
            order_id="o",
            step=step,
            actor_id="u",
            actor_name="U",
            role=Role.SITE_OPERATOR,
            organisation="org",
            place="p",
            at=start + timedelta(hours=hours),
            utc_offset_minutes=0,
            temperature_c=None,
            scanned="x",
            accepted=accepted,
            refusal_reason=None if accepted else "another therapy",
        )

    rows = chain_with_gaps(
        [
            event(CustodyStep.COLLECTION, 0),
            event(CustodyStep.HANDOVER_TO_COURIER, 1),
            event(CustodyStep.RECEIPT_AT_SITE, 60, accepted=False),
            event(CustodyStep.RECEIPT_AT_SITE, 61),
            event(CustodyStep.START_MANUFACTURING, 62),
        ]
    )
    assert [bool(r.flags) for r in rows] == [False, False, True, True, False]
    assert "refused scan: another therapy" in rows[2].flags
    assert "60 h in transit" in rows[3].flags[0]
    gap = chain_with_gaps([event(CustodyStep.COLLECTION, 0), event(CustodyStep.RECEIPT_AT_SITE, 5)])
    assert gap[1].flags == ["missing before this step: handover to courier"]
