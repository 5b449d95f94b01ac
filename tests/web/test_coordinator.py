"""The center's pages: enrol, offers and exclusions, book, reschedule, close, label, patient."""

from __future__ import annotations

import re
from datetime import date, timedelta

from markupsafe import escape
from tests.web.conftest import Portal

from cartnet.ledger.lifecycle import OrderState
from cartnet.service import orders
from cartnet.service.schemas import OrderView

OFFER = re.compile(r'name="offer" value="([^"]+)"')
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def patient(**extra: str) -> dict[str, str]:
    return {
        "product": "tisagenlecleucel",
        "scope": "commercial",
        "earliest_apheresis": (date.today() + timedelta(days=3)).isoformat(),
        "given_name": "Maria",
        "family_name": "Musterfrau",
        "date_of_birth": "1961-04-12",
        "hospital_number": "DF-55812",
        **extra,
    }


def order_of(portal: Portal, order_id: str, user: str = "coordinator") -> OrderView:
    return orders.get_order(portal.ctx, portal.principal(user), order_id)


def count(portal: Portal, user: str = "coordinator") -> int:
    return orders.count_orders(portal.ctx, portal.principal(user))


def trail(portal: Portal, order_id: str) -> list[str]:
    return [e.action for e in orders.order_audit(portal.ctx, portal.principal("qa"), order_id)]


def escaped(text: str, value: str) -> bool:
    """``value`` appears only as text: escaped, never as markup."""
    return value not in text and str(escape(value)) in text


def test_a_coordinator_enrols_sees_offers_and_exclusions_and_books(portal: Portal) -> None:
    """Enrol through the form, land on the offers, see why sites are excluded, book one."""
    client = portal.as_user("coordinator")
    form = client.get("/orders/new")
    assert form.status_code == 200
    assert 'name="product"' in form.text and "Kymriah" in form.text
    assert 'name="hospital_number"' in form.text and 'type="date"' in form.text

    enrolled = portal.post("coordinator", "/orders/new", patient())
    assert enrolled.status_code == 303, enrolled.text
    location = enrolled.headers["location"]
    order_id = location.split("/")[2]
    assert location == f"/orders/{order_id}/offers"
    assert order_of(portal, order_id).state is OrderState.ENROLLED

    page = client.get(location)
    assert page.status_code == 200, page.text
    found = orders.offers(portal.ctx, portal.principal("coordinator"), order_id, k=10, per_site=2)
    assert found.offers and found.excluded
    for offer in found.offers:
        assert offer.site_name in page.text and offer.start.isoformat() in page.text
    assert "Vein to vein (days)" in page.text and "Lane cost" in page.text
    assert "Why the other sites are excluded" in page.text
    for excluded in found.excluded:
        assert str(escape(excluded.message)) in page.text
    choices = OFFER.findall(page.text)
    assert len(choices) == len(found.offers)
    assert 'name="reason_code"' not in page.text  # a first booking needs no reason

    later = date.today() + timedelta(days=20)
    searched = client.get(f"{location}?earliest_apheresis={later.isoformat()}")
    assert searched.status_code == 200
    days = [date.fromisoformat(c.split("|")[1]) for c in OFFER.findall(searched.text)]
    assert days and min(days) > later
    bad = client.get(f"{location}?earliest_apheresis=next+week")
    assert bad.status_code == 422 and "is not a date" in bad.text

    site, start = choices[0].split("|")
    booked = portal.post("coordinator", f"/orders/{order_id}/book", {"offer": choices[0]})
    assert booked.status_code == 303 and booked.headers["location"] == f"/orders/{order_id}"
    order = order_of(portal, order_id)
    assert order.state is OrderState.BOOKED
    assert order.plan is not None and (order.plan.site, order.plan.start.isoformat()) == (
        site,
        start,
    )
    after = client.get(location)
    assert 'name="offer"' not in after.text and "Reschedule the chain" in after.text


def test_enrolment_refusals_are_shown_next_to_the_field_and_change_nothing(portal: Portal) -> None:
    before = count(portal)
    missing = portal.post("coordinator", "/orders/new", patient(given_name=""))
    assert missing.status_code == 422
    assert 'id="e-given_name"' in missing.text and "required" in missing.text
    assert 'value="Musterfrau"' in missing.text  # the user's values stay in the form
    past = portal.post("coordinator", "/orders/new", patient(earliest_apheresis="2001-01-01"))
    assert past.status_code == 422 and 'id="e-earliest_apheresis"' in past.text
    clinical = portal.post("coordinator", "/orders/new", patient(scope="clinical"))
    assert clinical.status_code == 422 and "needs its trial" in clinical.text
    assert count(portal) == before


def test_a_stale_offer_re_renders_the_offers_with_the_message(portal: Portal) -> None:
    """A chain that cannot be had any more (409) shows the offers again, nothing booked."""
    order = portal.enrolled()
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    refused = portal.post(
        "coordinator", f"/orders/{order.id}/book", {"offer": f"morris-plains|{tomorrow}"}
    )
    assert refused.status_code == 409, refused.text
    assert "Morris Plains" in refused.text and 'name="offer"' in refused.text
    assert 'class="error form-error"' in refused.text
    assert order_of(portal, order.id).state is OrderState.ENROLLED
    nothing = portal.post("coordinator", f"/orders/{order.id}/book", {})
    assert nothing.status_code == 422 and "choose an offer" in nothing.text


def test_a_coordinator_reschedules_with_a_reason(portal: Portal) -> None:
    order = portal.booked()
    assert order.plan is not None
    client = portal.as_user("coordinator")
    page = client.get(f"/orders/{order.id}/reschedule")
    assert page.status_code == 200, page.text
    assert "capacity change: manufacturing or apheresis capacity changed" in page.text
    assert "expanded access" not in page.text
    current = f"{order.plan.site}|{order.plan.start.isoformat()}"
    other = next(c for c in OFFER.findall(page.text) if c != current)

    no_reason = portal.post("coordinator", f"/orders/{order.id}/reschedule", {"offer": other})
    assert no_reason.status_code == 422 and 'id="e-reason_code"' in no_reason.text
    bare_other = portal.post(
        "coordinator",
        f"/orders/{order.id}/reschedule",
        {"offer": other, "reason_code": "other"},
    )
    assert bare_other.status_code == 422 and 'id="e-reason_text"' in bare_other.text
    assert order_of(portal, order.id).plan == order.plan

    moved = portal.post(
        "coordinator",
        f"/orders/{order.id}/reschedule",
        {"offer": other, "reason_code": "capacity_change", "reason_text": XSS[0]},
    )
    assert moved.status_code == 303, moved.text
    plan = order_of(portal, order.id).plan
    assert plan is not None and f"{plan.site}|{plan.start.isoformat()}" == other
    entry = orders.order_audit(portal.ctx, portal.principal("qa"), order.id)[-1]
    assert (entry.reason_code, entry.reason_text) == ("capacity_change", XSS[0])
    assert portal.as_user("planner").get(f"/orders/{order.id}/reschedule").status_code == 200
    assert portal.as_user("operator").get(f"/orders/{order.id}/reschedule").status_code == 403


def test_cancel_and_patient_lost_offer_only_the_lifecycle_reasons(portal: Portal) -> None:
    order = portal.booked()
    client = portal.as_user("coordinator")
    cancel = client.get(f"/orders/{order.id}/cancel")
    assert cancel.status_code == 200
    assert 'value="clinical_decision"' in cancel.text
    assert 'value="expanded_access"' not in cancel.text
    lost = client.get(f"/orders/{order.id}/patient-lost")
    codes = set(re.findall(r'<option value="([a-z_]+)"', lost.text))
    assert codes == {"patient_progressed", "patient_ineligible", "patient_deceased", "other"}
    assert portal.as_user("planner").get(f"/orders/{order.id}/cancel").status_code == 200
    assert portal.as_user("planner").get(f"/orders/{order.id}/patient-lost").status_code == 403

    steps = trail(portal, order.id)
    bare = portal.post(
        "coordinator", f"/orders/{order.id}/cancel", {"reason_code": "other", "reason_text": ""}
    )
    assert bare.status_code == 422 and 'id="e-reason_code"' in bare.text
    wrong = portal.post(
        "coordinator", f"/orders/{order.id}/patient-lost", {"reason_code": "capacity_change"}
    )
    assert wrong.status_code == 422 and "does not apply" in wrong.text
    assert order_of(portal, order.id).state is OrderState.BOOKED
    assert trail(portal, order.id) == steps

    done = portal.post(
        "coordinator",
        f"/orders/{order.id}/cancel",
        {"reason_code": "other", "reason_text": "the family moved abroad"},
    )
    assert done.status_code == 303
    assert order_of(portal, order.id).state is OrderState.CANCELLED
    assert client.get(f"/orders/{order.id}/cancel").status_code == 409


def test_label_and_patient_identity(portal: Portal) -> None:
    order = portal.booked()
    for user in ("coordinator", "operator", "qa"):
        label = portal.as_user(user).get(f"/orders/{order.id}/label.pdf")
        assert label.status_code == 200, (user, label.text)
        assert label.headers["content-type"] == "application/pdf"
        assert label.content.startswith(b"%PDF")
    assert portal.as_user("logistics").get(f"/orders/{order.id}/label.pdf").status_code == 403
    assert portal.as_user("other_operator").get(f"/orders/{order.id}/label.pdf").status_code == 404

    reads = trail(portal, order.id).count("read")
    page = portal.as_user("coordinator").get(f"/orders/{order.id}/patient")
    assert page.status_code == 200
    assert "Musterfrau" in page.text and "DF-55812" in page.text
    assert "recorded in the order's audit trail" in page.text
    assert trail(portal, order.id).count("read") == reads + 1
    assert portal.as_user("operator").get(f"/orders/{order.id}/patient").status_code == 403
    assert portal.as_user("other_coordinator").get(f"/orders/{order.id}/patient").status_code == 404


def test_pages_are_absent_for_other_tenants_and_roles(portal: Portal) -> None:
    order = portal.enrolled()
    other = portal.as_user("other_coordinator")
    for path in ("offers", "reschedule", "cancel", "patient-lost", "patient", "label.pdf"):
        assert other.get(f"/orders/{order.id}/{path}").status_code == 404, path
    assert portal.post("other_coordinator", f"/orders/{order.id}/book", {}).status_code == 404
    operator = portal.as_user("operator")
    assert operator.get("/orders/new").status_code == 403
    assert portal.post("operator", "/orders/new", patient()).status_code == 403
    assert operator.get(f"/orders/{order.id}/offers").status_code == 403
    assert portal.as_user("planner").get(f"/orders/{order.id}/offers").status_code == 200
    assert portal.as_user("planner").get("/orders/new").status_code == 403


def test_posts_without_the_csrf_token_are_refused(portal: Portal) -> None:
    order = portal.enrolled()
    client = portal.as_user("coordinator")
    before = count(portal)
    assert client.post("/orders/new", data=patient(), follow_redirects=False).status_code == 403
    assert count(portal) == before
    offer = OFFER.findall(client.get(f"/orders/{order.id}/offers").text)[0]
    forged = client.post(f"/orders/{order.id}/book", data={"offer": offer, "csrf_token": "x"})
    assert forged.status_code == 403
    cancelled = client.post(f"/orders/{order.id}/cancel", data={"reason_code": "other"})
    assert cancelled.status_code == 403
    assert order_of(portal, order.id).state is OrderState.ENROLLED


def test_free_text_is_shown_as_text(portal: Portal) -> None:
    """Names, hospital number, trial and reasons come back escaped, never as markup."""
    booked = portal.booked()
    for value in XSS:
        enrolled = portal.post(
            "coordinator",
            "/orders/new",
            patient(given_name=value, family_name=value, hospital_number=value),
        )
        assert enrolled.status_code == 303, enrolled.text
        order_id = enrolled.headers["location"].split("/")[2]
        shown = portal.as_user("coordinator").get(f"/orders/{order_id}/patient")
        assert escaped(shown.text, value)

        refused = portal.post(
            "coordinator",
            "/orders/new",
            patient(scope="clinical", trial=value, given_name=value, hospital_number=""),
        )
        assert refused.status_code == 422 and escaped(refused.text, value)

        closing = portal.post("coordinator", f"/orders/{order_id}/cancel", {"reason_text": value})
        assert closing.status_code == 422 and escaped(closing.text, value)
        rescheduling = portal.post(
            "coordinator",
            f"/orders/{booked.id}/reschedule",
            {"offer": f"{value}|2030-01-01", "reason_code": "other", "reason_text": value},
        )
        assert rescheduling.status_code == 422 and escaped(rescheduling.text, value)
        done = portal.post(
            "coordinator",
            f"/orders/{order_id}/cancel",
            {"reason_code": "other", "reason_text": value},
        )
        assert done.status_code == 303
        assert escaped(portal.as_user("coordinator").get(f"/orders/{order_id}").text, value)
