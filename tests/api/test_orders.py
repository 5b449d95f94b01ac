"""Orders through the API: enrolment, listing, offers, booking and the lifecycle's refusals.

Every test checks the response and what the database holds afterwards, because a 4xx
that still wrote something (a slot taken, a state moved, an audit entry) is the failure
that matters in a GxP system. Tests reuse orders to stay fast: the fixture's users and
logins are the expensive part.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text

from cartnet.identity import ChainOfIdentityId
from cartnet.store import AuditRepository, make_session_factory
from cartnet.store.tables import AuditEntryRow, OrderRow, OrderStepRow, SlotUsageRow

CENTER = "dana-farber"
SITE = "morris-plains"
PATIENT = {
    "given_name": "Maria",
    "family_name": "Musterfrau",
    "date_of_birth": "1961-04-12",
    "hospital_number": "DF-55812",
}
PATIENT_FRAGMENTS = ("Maria", "Musterfrau", "1961", "19610412", "610412", "DF-55812", "55812")
"""Pieces of the patient's identity that must not show up outside the sealed column."""
COI_SHAPE = re.compile(r"^CH[A-Z0-9]\d{4}\d{2}[A-Z0-9]{6}$")
"""ISBT 128 data structure 040 data content: CH, FIN (α + 4 digits), year, sequence."""


# --- helpers ------------------------------------------------------------------------------


def today() -> date:
    """The service's today: the UTC date, whatever the machine's time zone."""
    return datetime.now(UTC).date()


def new_order(api: Any, user: str = "coordinator", **fields: Any) -> Any:
    """POST /orders with the default patient; the raw response (the caller checks it)."""
    body = {
        "product": "tisagenlecleucel",
        "earliest_apheresis": (today() + timedelta(days=3)).isoformat(),
        "patient": PATIENT,
        **fields,
    }
    return api.post(user, "/orders", body)


def slot_usage(api: Any) -> dict[tuple[str, str, date], int]:
    """Every slot_usage row as {(kind, resource, day): booked}."""
    with api.ctx.engine.connect() as connection:
        rows = connection.execute(
            select(SlotUsageRow.kind, SlotUsageRow.resource, SlotUsageRow.day, SlotUsageRow.booked)
        )
        return {(k, r, d): n for k, r, d, n in rows}


def usage_delta(
    before: dict[tuple[str, str, date], int], after: dict[tuple[str, str, date], int]
) -> dict[tuple[str, str, date], int]:
    """The rows whose booked count changed, and by how much."""
    keys = set(before) | set(after)
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return {k: v for k, v in changed.items() if v}


def claims_of(plan: dict[str, str], center: str = CENTER) -> dict[tuple[str, str, date], int]:
    """The manufacturing and apheresis units a booked plan holds."""
    return {
        ("manufacturing", plan["site"], date.fromisoformat(plan["start"])): 1,
        ("apheresis", center, date.fromisoformat(plan["apheresis"])): 1,
    }


def without_qc(delta: dict[tuple[str, str, date], int]) -> dict[tuple[str, str, date], int]:
    """The QC day is only claimed where QC capacity is limited; compare the rest exactly."""
    return {k: v for k, v in delta.items() if k[0] != "qc"}


def count(api: Any, statement: Any) -> int:
    with api.ctx.engine.connect() as connection:
        return int(connection.scalar(statement) or 0)


def audit_entries(api: Any, order_id: str) -> list[dict[str, Any]]:
    response = api.get("coordinator", f"/orders/{order_id}/audit")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def offers(api: Any, order_id: str, **query: Any) -> dict[str, Any]:
    response = api.get("coordinator", f"/orders/{order_id}/offers", params=query)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_problem(
    response: Any, status: int, *, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The response is a problem with this status, naming this field and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if field is not None:
        assert body.get("field") == field, body
    if code is not None:
        assert body.get("code") == code, body
    return body  # type: ignore[no-any-return]


# --- enrolment and listing ---------------------------------------------------------------


def test_enrolment_seals_the_patient_and_listing_keeps_tenants_apart(api: Any) -> None:
    """Identifiers carry nothing of the patient; only the own center sees its orders."""
    first, second = api.enroll(), api.enroll()
    clinical = new_order(api, scope="clinical", trial="ELARA")
    assert clinical.status_code == 201, clinical.text
    made = [first, second, clinical.json()]

    cois = [o["coi"] for o in made]
    assert len(set(cois)) == 3, "the same patient enrolled twice still gets a new CoI"
    for order in made:
        coi = ChainOfIdentityId.parse(order["coi"])
        assert COI_SHAPE.match(order["coi"]), order["coi"]
        assert str(coi) == order["coi"]
        assert str(coi.facility) == "W9999" and coi.year == today().year % 100
        assert order["coi_eye_readable"] == coi.eye_readable()
        assert ChainOfIdentityId.parse(order["coi_eye_readable"], require_check_character=True)
        for fragment in PATIENT_FRAGMENTS:
            assert fragment not in order["coi"] and fragment not in order["pseudonym"]
        assert order["state"] == "enrolled" and order["center"] == CENTER
    assert len({o["pseudonym"] for o in made}) == 3
    assert made[2]["scope"] == "clinical" and made[2]["trial"] == "ELARA"

    # No response about the order carries the identity, and neither does the table.
    shown = api.get("coordinator", f"/orders/{first['id']}")
    assert shown.status_code == 200 and shown.json() == first
    for fragment in ("Maria", "Musterfrau", "1961-04-12", "DF-55812"):
        assert fragment not in shown.text
    with api.ctx.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT * FROM orders WHERE id = :id"), {"id": first["id"]}
        ).one()
    stored = " ".join(str(v) for v in raw)
    for fragment in ("Maria", "Musterfrau", "1961-04-12", "DF-55812"):
        assert fragment not in stored
    sealed = raw._mapping["patient_identity"]
    assert api.ctx.vault.open(sealed) == PATIENT, "the column is the sealed identity"

    def reads() -> int:
        return count(
            api,
            select(func.count())
            .select_from(AuditEntryRow)
            .where(AuditEntryRow.action == "read", AuditEntryRow.entity_id == first["id"]),
        )

    # The own center's coordinator reads it; each read leaves an audit entry.
    for n in (1, 2):
        opened = api.get("coordinator", f"/orders/{first['id']}/patient")
        assert opened.status_code == 200, opened.text
        assert opened.json() == PATIENT
        assert reads() == n
    trail = audit_entries(api, first["id"])
    read_entries = [e for e in trail if e["action"] == "read"]
    assert len(read_entries) == 2
    assert {e["actor_name"] for e in read_entries} == {"Carla Coordinator"}
    assert all(e["entity_type"] == "patient_identity" for e in read_entries)

    # Nobody else: another center does not even see the order, other roles may not look.
    assert_problem(api.get("other_coordinator", f"/orders/{first['id']}/patient"), 404)
    for user in ("planner", "logistics", "operator", "qa", "admin"):
        assert_problem(api.get(user, f"/orders/{first['id']}/patient"), 403)
    assert api.get(None, f"/orders/{first['id']}/patient").status_code == 401
    assert reads() == 2, "refused reads are not reads"

    # Refused enrolments name the field and write nothing.
    orders_before = count(api, select(func.count()).select_from(OrderRow))
    assert_problem(new_order(api, scope="clinical"), 422, field="trial")
    assert_problem(new_order(api, trial="ELARA"), 422, field="trial")
    not_offered = assert_problem(new_order(api, product="axicabtagene"), 422, field="product")
    assert "axicabtagene" in not_offered["detail"]
    yesterday = (today() - timedelta(days=1)).isoformat()
    assert_problem(new_order(api, earliest_apheresis=yesterday), 422, field="earliest_apheresis")
    assert new_order(api, patient={"given_name": "X"}).status_code == 422
    assert new_order(api, planner_note="x").status_code == 422, "unknown fields are refused"
    assert new_order(api, "planner").status_code == 403
    assert count(api, select(func.count()).select_from(OrderRow)) == orders_before

    # Listing: the three orders above and two more, two of them booked.
    mine = [*made, api.enroll(), api.enroll()]
    booked = [api.book_first(mine[i]["id"]) for i in (1, 3)]
    theirs = api.enroll("other_coordinator")
    ids = [o["id"] for o in mine]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.get("coordinator", "/orders", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [o["id"] for o in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 5, "pagination does not end"
    assert seen == ids and pages == 3

    def listed(user: str, **params: Any) -> list[str]:
        response = api.get(user, "/orders", params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    booked_ids = [o["id"] for o in booked]
    assert listed("coordinator", state="booked") == booked_ids
    assert listed("coordinator", state="enrolled") == [ids[0], ids[2], ids[4]]
    assert listed("coordinator", site=SITE) == booked_ids
    assert listed("coordinator", site="leipzig") == []
    assert listed("coordinator", center=CENTER) == ids
    assert listed("coordinator", center="mgh-boston") == [], "a filter cannot widen tenancy"
    assert listed("coordinator", product="tisagenlecleucel") == ids
    assert listed("coordinator", product="axicabtagene") == []
    assert listed("coordinator", state="booked", site=SITE, product="tisagenlecleucel") == (
        booked_ids
    )
    assert listed("planner") == [*ids, theirs["id"]]
    assert listed("planner", center="mgh-boston") == [theirs["id"]]
    assert listed("operator") == booked_ids, "a site sees the orders booked at it"
    assert listed("other_operator") == []
    assert_problem(api.get("coordinator", "/orders", params={"state": "lost"}), 422)
    assert_problem(api.get("admin", "/orders"), 403)

    # A cursor this server did not give out is refused, naming the cursor.
    garbage = [
        "not a cursor!",
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "ord_x"]').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
    ]
    for bad in garbage:
        problem = assert_problem(api.get("coordinator", "/orders", params={"cursor": bad}), 422)
        assert "cursor" in problem["field"], problem

    # Tenancy: the other center neither lists nor opens this center's orders.
    assert listed("other_coordinator") == [theirs["id"]]
    for order_id in (ids[0], booked_ids[0]):
        assert_problem(api.get("other_coordinator", f"/orders/{order_id}"), 404)
        assert_problem(api.get("other_coordinator", f"/orders/{order_id}/offers"), 404)
        assert_problem(api.get("other_operator", f"/orders/{order_id}"), 404)
    assert_problem(api.get("coordinator", f"/orders/{theirs['id']}"), 404)
    assert_problem(api.get("coordinator", "/orders/ord_does_not_exist"), 404)


# --- offers and booking -------------------------------------------------------------------


def test_offers_and_booking_take_capacity_once(api: Any) -> None:
    """Offers are ranked; a booking takes its chain's capacity once, a refusal takes none."""
    order = api.enroll()
    oid = order["id"]
    found = offers(api, oid, k=5, per_site=5)
    assert found["order_id"] == oid and found["market"] == "US"
    chains = found["offers"]
    assert len(chains) == 5
    ranks = [c["time_to_treatment_days"] for c in chains]
    assert ranks == sorted(ranks)
    earliest = date.fromisoformat(order["earliest_apheresis"])
    for chain in chains:
        days = [date.fromisoformat(chain[f]) for f in ("apheresis", "start", "release")]
        infusion = date.fromisoformat(chain["infusion"])
        assert earliest <= days[0] < days[1] < days[2] < infusion
        assert chain["site"] and chain["site_name"]
    network_sites = {s.id for s in api.ctx.network.sites}
    offered = {c["site"] for c in chains}
    excluded = {e["site"]: e for e in found["excluded"]}
    assert offered | set(excluded) == network_sites and not offered & set(excluded)
    for site in excluded.values():
        assert site["reason"] and site["message"] and site["site_name"]
    assert excluded["leipzig"]["reason"] == "no-approval"
    assert "FDA" in excluded["leipzig"]["message"]
    assert_problem(api.get("operator", f"/orders/{oid}/offers"), 403)

    # Booking takes the chain: state, plan, and one unit per claim in slot_usage.
    before = slot_usage(api)
    first = chains[0]
    booked = api.post(
        "coordinator", f"/orders/{oid}/booking", {"site": SITE, "start": first["start"]}
    )
    assert booked.status_code == 200, booked.text
    view = booked.json()
    assert view["state"] == "booked" and view["version"] > order["version"]
    plan = view["plan"]
    assert {k: plan[k] for k in ("site", "apheresis", "start", "release", "infusion")} == {
        k: first[k] for k in ("site", "apheresis", "start", "release", "infusion")
    }
    after = slot_usage(api)
    assert without_qc(usage_delta(before, after)) == claims_of(plan)
    assert all(v == 1 for v in usage_delta(before, after).values())

    # Booking again is an illegal transition and changes nothing.
    again = api.post(
        "coordinator", f"/orders/{oid}/booking", {"site": SITE, "start": first["start"]}
    )
    problem = assert_problem(again, 409, code="illegal-transition")
    assert "booked" in problem["detail"]
    unchanged = api.get("coordinator", f"/orders/{oid}").json()
    assert unchanged["version"] == view["version"]
    assert unchanged["updated_at"] == view["updated_at"]
    assert slot_usage(api) == after

    # Start days that are not on offer: a closed day, before the window, a full day.
    other = api.enroll()["id"]
    other_before = api.get("coordinator", f"/orders/{other}").json()
    start = date.fromisoformat(offers(api, other)["offers"][0]["start"])
    capacity = api.get("planner", f"/capacity/{SITE}", params={"from": start.isoformat()})
    assert capacity.status_code == 200, capacity.text
    days = capacity.json()["days"]
    closed = next(d["day"] for d in days if d["capacity"] == 0)
    usage_before = slot_usage(api)

    def refused(start_day: str, code: str) -> dict[str, Any]:
        body = {"site": SITE, "start": start_day}
        response = api.post("coordinator", f"/orders/{other}/booking", body)
        return assert_problem(response, 409, code=code)

    closed_problem = refused(closed, "capacity-full")
    assert "full" in closed_problem["detail"]
    too_early = refused((today() + timedelta(days=1)).isoformat(), "too-early")
    assert "outside the possible window" in too_early["detail"]
    open_day = next(
        d for d in days if d["capacity"] > 0 and d["booked"] == 0 and d["day"] > start.isoformat()
    )
    full_day = date.fromisoformat(open_day["day"])
    with api.ctx.engine.begin() as connection:
        connection.execute(
            delete(SlotUsageRow).where(
                SlotUsageRow.kind == "manufacturing",
                SlotUsageRow.resource == SITE,
                SlotUsageRow.day == full_day,
            )
        )
        connection.execute(
            insert(SlotUsageRow).values(
                kind="manufacturing", resource=SITE, day=full_day, booked=open_day["capacity"]
            )
        )
    usage_before[("manufacturing", SITE, full_day)] = open_day["capacity"]
    full_problem = refused(full_day.isoformat(), "capacity-full")
    assert full_day.isoformat() in full_problem["detail"]
    assert_problem(
        api.post("coordinator", f"/orders/{other}/booking", {"site": "atlantis", "start": closed}),
        422,
        field="site",
    )
    assert_problem(
        api.post(
            "coordinator",
            f"/orders/{other}/booking",
            {"site": SITE, "start": today().isoformat()},
        ),
        422,
        field="start",
    )
    assert slot_usage(api) == usage_before
    still = api.get("coordinator", f"/orders/{other}").json()
    assert still["state"] == "enrolled" and still["version"] == other_before["version"]

    # Idempotency-Key: a retry gets the first response and books once.
    third = api.enroll()["id"]
    chain = offers(api, third)["offers"][0]
    body = {"site": chain["site"], "start": chain["start"]}
    key = {"Idempotency-Key": "book-" + third}
    before = slot_usage(api)
    one = api.post("coordinator", f"/orders/{third}/booking", body, headers=key)
    two = api.post("coordinator", f"/orders/{third}/booking", body, headers=key)
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert one.json() == two.json()
    assert without_qc(usage_delta(before, slot_usage(api))) == claims_of(one.json()["plan"])
    steps = count(
        api,
        select(func.count())
        .select_from(OrderStepRow)
        .where(OrderStepRow.order_id == third, OrderStepRow.event == "book_slot"),
    )
    assert steps == 1
    transitions = [e for e in audit_entries(api, third) if e["action"] == "transition"]
    assert len(transitions) == 1
    moved = {**body, "start": (date.fromisoformat(chain["start"]) + timedelta(days=1)).isoformat()}
    different = api.post("coordinator", f"/orders/{third}/booking", moved, headers=key)
    assert_problem(different, 422, field="Idempotency-Key")
    assert api.get("coordinator", f"/orders/{third}").json() == one.json()


# --- reschedule, cancel, patient lost, illegal steps --------------------------------------


def test_reschedule_cancel_patient_lost_and_illegal_steps(api: Any) -> None:
    """Moves give capacity back; closed orders take no event; refusals leave no trace."""
    order = api.enroll()
    oid = order["id"]

    # An illegal step names the state and the events it allows, and changes nothing.
    trail_before = audit_entries(api, oid)
    release = api.post(
        "coordinator",
        f"/orders/{oid}/release",
        {
            "scanned": "&/" + order["coi"],
            "place": "QA office",
            "at": "2026-01-05T10:00:00+00:00",
            "signatures": api.sign("coordinator"),
        },
    )
    problem = assert_problem(release, 409, code="illegal-transition")
    assert "'enrolled'" in problem["detail"]
    for event in ("book_slot", "cancel", "record_patient_lost"):
        assert event in problem["detail"]
    finish = api.post(
        "coordinator",
        f"/orders/{oid}/events",
        {"event": "complete_manufacturing", "signatures": api.sign("coordinator")},
    )
    assert_problem(finish, 409, code="illegal-transition")
    now = api.get("coordinator", f"/orders/{oid}").json()
    assert now == order, "version, updated_at and state are untouched"
    assert audit_entries(api, oid) == trail_before
    assert api.get("coordinator", f"/orders/{oid}/custody-events").json() == []

    # Reschedule: needs a reason; moves the claims; audited with old and new values.
    baseline = slot_usage(api)
    booked = api.book_first(oid)
    old_plan = booked["plan"]
    qa_release = api.post(
        "qa",
        f"/orders/{oid}/release",
        {
            "scanned": "&/" + order["coi"],
            "place": "QA office",
            "at": "2026-01-05T10:00:00+00:00",
            "signatures": api.sign("qa"),
        },
    )
    assert "'booked'" in assert_problem(qa_release, 409, code="illegal-transition")["detail"]
    target = next(
        c for c in offers(api, oid, per_site=5)["offers"] if c["start"] != old_plan["start"]
    )
    move = {"site": target["site"], "start": target["start"]}
    assert_problem(api.post("coordinator", f"/orders/{oid}/reschedule", move), 422)
    assert_problem(
        api.post(
            "coordinator",
            f"/orders/{oid}/reschedule",
            {"site": SITE, "start": old_plan["start"], "reason_code": "capacity_change"},
        ),
        422,
        field="start",
    )
    before = slot_usage(api)
    moved = api.post(
        "coordinator", f"/orders/{oid}/reschedule", {**move, "reason_code": "capacity_change"}
    )
    assert moved.status_code == 200, moved.text
    new_plan = moved.json()["plan"]
    assert moved.json()["state"] == "booked" and new_plan["start"] == target["start"]
    expected: dict[tuple[str, str, date], int] = {}
    for key, n in claims_of(old_plan).items():
        expected[key] = expected.get(key, 0) - n
    for key, n in claims_of(new_plan).items():
        expected[key] = expected.get(key, 0) + n
    expected = {k: v for k, v in expected.items() if v}
    assert without_qc(usage_delta(before, slot_usage(api))) == expected
    update_entry = audit_entries(api, oid)[-1]
    assert update_entry["action"] == "update"
    assert update_entry["reason_code"] == "capacity_change"
    assert ["start_on", old_plan["start"], new_plan["start"]] in update_entry["changes"]

    # Cancel gives every unit back and closes the order for good.
    assert_problem(api.post("coordinator", f"/orders/{oid}/cancel", {}), 422)
    wrong_reason = {"reason_code": "expanded_access"}
    assert_problem(
        api.post("coordinator", f"/orders/{oid}/cancel", wrong_reason), 422, field="reason_code"
    )
    assert_problem(
        api.post(
            "other_coordinator", f"/orders/{oid}/cancel", {"reason_code": "clinical_decision"}
        ),
        404,
    )
    cancelled = api.post(
        "coordinator", f"/orders/{oid}/cancel", {"reason_code": "clinical_decision"}
    )
    assert cancelled.status_code == 200, cancelled.text
    closed = cancelled.json()
    assert closed["state"] == "cancelled" and closed["allowed_events"] == []
    assert without_qc(usage_delta(baseline, slot_usage(api))) == {}
    trail = audit_entries(api, oid)
    assert ["state", "booked", "cancelled"] in trail[-1]["changes"]
    assert trail[-1]["reason_code"] == "clinical_decision"
    for path, body in (
        ("cancel", {"reason_code": "clinical_decision"}),
        ("patient-lost", {"reason_code": "patient_progressed"}),
        ("booking", move),
        ("reschedule", {**move, "reason_code": "capacity_change"}),
    ):
        response = api.post("coordinator", f"/orders/{oid}/{path}", body)
        assert_problem(response, 409, code="illegal-transition")
    assert api.get("coordinator", f"/orders/{oid}").json() == closed
    assert len(audit_entries(api, oid)) == len(trail)
    assert without_qc(usage_delta(baseline, slot_usage(api))) == {}

    # Patient lost: the center records it with a loss reason; capacity goes back too.
    lost_order = api.enroll()["id"]
    api.book_first(lost_order)
    assert_problem(
        api.post(
            "planner", f"/orders/{lost_order}/patient-lost", {"reason_code": "patient_deceased"}
        ),
        403,
    )
    assert_problem(
        api.post(
            "coordinator", f"/orders/{lost_order}/patient-lost", {"reason_code": "capacity_change"}
        ),
        422,
        field="reason_code",
    )
    lost = api.post(
        "coordinator",
        f"/orders/{lost_order}/patient-lost",
        {"reason_code": "patient_progressed", "reason_text": "relapse before apheresis"},
    )
    assert lost.status_code == 200, lost.text
    assert lost.json()["state"] == "patient_lost" and lost.json()["allowed_events"] == []
    entry = audit_entries(api, lost_order)[-1]
    assert entry["reason_code"] == "patient_progressed"
    assert entry["reason_text"] == "relapse before apheresis"
    assert without_qc(usage_delta(baseline, slot_usage(api))) == {}
    with api.ctx.engine.connect() as connection:
        row = connection.execute(select(OrderRow.state).where(OrderRow.id == lost_order)).one()
    assert row.state == "patient_lost"
    with make_session_factory(api.ctx.engine)() as session, session.begin():
        assert AuditRepository().verify(session) == []
