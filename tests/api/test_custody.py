"""Custody and quality through the API: scans, e-signatures, QC gates, loggers, labels.

A refused scan must still leave its trace (the refused event and an exception), a
signed step must be bound to exactly what was signed, and release must wait for QC and
for QA to close every exception: each test checks the responses and the rows behind them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cartnet.api import create_app
from cartnet.identity import DonationIdentificationNumber, SingleEuropeanCode
from cartnet.ledger.roles import Role
from cartnet.ledger.signatures import ElectronicSignature, SignatureMeaning, verify_signature
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.service.steps import step_content
from cartnet.store import AuditRepository, make_session_factory
from cartnet.store.tables import (
    CustodyEventRow,
    OrderExceptionRow,
    OrderRow,
    OrderStepRow,
    SignatureRow,
    TemperatureLogRow,
)

PASSWORD = "correct horse battery"
"""The password of the users the ``api`` fixture makes (tests/api/conftest.py)."""
SITE = "morris-plains"


# --- helpers ------------------------------------------------------------------------------


def now() -> str:
    return datetime.now(UTC).isoformat()


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


def custody_body(coi: str, step: str, **extra: Any) -> dict[str, Any]:
    return {
        "step": step,
        "scanned": "&/" + coi,
        "organisation": "bench",
        "place": "bench 1",
        "at": now(),
        "temperature_c": -180.0,
        **extra,
    }


def handoff(api: Any, user: str, order: dict[str, Any], step: str, **extra: Any) -> Any:
    """POST a custody event; the raw response."""
    return api.post(
        user, f"/orders/{order['id']}/custody-events", custody_body(order["coi"], step, **extra)
    )


def accepted(api: Any, user: str, order: dict[str, Any], step: str) -> dict[str, Any]:
    """A handoff, signed by ``user``, that must be accepted."""
    response = handoff(api, user, order, step, signatures=api.sign(user))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def collect(api: Any, order: dict[str, Any], user: str = "coordinator") -> dict[str, Any]:
    return accepted(api, user, order, "collection")["order"]  # type: ignore[no-any-return]


def event(api: Any, user: str, order_id: str, name: str, **extra: Any) -> Any:
    return api.post(user, f"/orders/{order_id}/events", {"event": name, **extra})


def to_qc(api: Any) -> dict[str, Any]:
    """A new order, booked, collected, shipped, received, made: in QC."""
    order = api.enroll()
    api.book_first(order["id"])
    collect(api, order)
    accepted(api, "logistics", order, "handover_to_courier")
    accepted(api, "operator", order, "receipt_at_site")
    accepted(api, "operator", order, "start_manufacturing")
    done = event(
        api, "operator", order["id"], "complete_manufacturing", signatures=api.sign("operator")
    )
    assert done.status_code == 200, done.text
    assert done.json()["order"]["state"] == "in_qc"
    return done.json()["order"]  # type: ignore[no-any-return]


def qc(api: Any, order_id: str, passed: bool, test: str = "sterility") -> dict[str, Any]:
    response = api.post(
        "qa",
        f"/orders/{order_id}/qc-results",
        {
            "test": test,
            "result": "no growth" if passed else "growth",
            "specification": "no growth",
            "passed": passed,
            "tested_at": now(),
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def release(api: Any, order: dict[str, Any], user: str = "qa") -> Any:
    return api.post(
        user,
        f"/orders/{order['id']}/release",
        {
            "scanned": "&/" + order["coi"],
            "place": "QA office",
            "at": now(),
            "signatures": api.sign(user),
        },
    )


def state_of(api: Any, order_id: str) -> tuple[str, int]:
    """The order's state and version as the database holds them."""
    with api.ctx.engine.connect() as connection:
        row = connection.execute(
            select(OrderRow.state, OrderRow.version).where(OrderRow.id == order_id)
        ).one()
    return row.state, row.version


def count(api: Any, statement: Any) -> int:
    with api.ctx.engine.connect() as connection:
        return int(connection.scalar(statement) or 0)


# --- scans --------------------------------------------------------------------------------


def test_a_wrong_scan_is_refused_but_recorded_and_exceptions_block_release_and_infusion(
    api: Any,
) -> None:
    """A wrong bag is refused (409) yet recorded; open exceptions hold release and infusion."""
    order, stranger = api.enroll(), api.enroll()
    oid = order["id"]
    booked = api.book_first(oid)
    state_before = state_of(api, oid)

    wrong = handoff(
        api,
        "coordinator",
        {**order, "coi": stranger["coi"]},
        "collection",
        signatures=api.sign("coordinator"),
    )
    problem = assert_problem(wrong, 409, code="coi-mismatch", field="scanned")
    assert "another therapy" in problem["detail"]
    assert state_of(api, oid) == state_before, "the order did not move"
    chain = api.get("coordinator", f"/orders/{oid}/custody-events").json()
    assert len(chain) == 1
    assert chain[0]["accepted"] is False and chain[0]["step"] == "collection"
    assert chain[0]["scanned"] == "&/" + stranger["coi"]
    assert "another therapy" in chain[0]["refusal_reason"]
    exceptions = api.get("coordinator", f"/orders/{oid}/exceptions").json()
    assert [(e["kind"], e["closed_at"]) for e in exceptions] == [("scan_mismatch", None)]
    shown = api.get("coordinator", f"/orders/{oid}").json()
    assert shown["state"] == "booked" and shown["din"] is None and shown["open_exceptions"] == 1
    assert shown["version"] == booked["version"]
    trail = api.get("coordinator", f"/orders/{oid}/audit").json()
    assert [e["action"] for e in trail[-2:]] == ["custody", "exception"]
    assert ["accepted", None, False] in trail[-2]["changes"]

    # Unreadable scans and keyed-in text without its check character are refused too.
    malformed = handoff(
        api,
        "coordinator",
        order,
        "collection",
        scanned="&/CH12",
        signatures=api.sign("coordinator"),
    )
    assert (
        "not a valid CoI identifier"
        in assert_problem(malformed, 409, code="coi-mismatch")["detail"]
    )
    typed = handoff(
        api,
        "coordinator",
        order,
        "collection",
        scanned=order["coi"],
        typed=True,
        signatures=api.sign("coordinator"),
    )
    assert "check character" in assert_problem(typed, 409, code="coi-mismatch")["detail"]
    with api.ctx.engine.connect() as connection:
        rows = connection.execute(
            select(CustodyEventRow.accepted, CustodyEventRow.refusal_reason)
            .where(CustodyEventRow.order_id == oid)
            .order_by(CustodyEventRow.id)
        ).all()
        open_ = connection.scalar(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.order_id == oid, OrderExceptionRow.closed_at.is_(None))
        )
    assert [r.accepted for r in rows] == [False, False, False]
    assert all(r.refusal_reason for r in rows)
    assert open_ == 3
    assert state_of(api, oid) == state_before

    # The wrong people and the wrong moment are refused before any scan is looked at.
    assert_problem(
        handoff(api, "operator", order, "collection", signatures=api.sign("operator")), 403
    )
    assert_problem(
        handoff(api, "operator", order, "receipt_at_site", signatures=api.sign("operator")),
        409,
        code="illegal-transition",
    )
    assert len(api.get("coordinator", f"/orders/{oid}/custody-events").json()) == 3

    # Keyed in with the check character, the right identifier is accepted.
    collected = handoff(
        api,
        "coordinator",
        order,
        "collection",
        scanned=order["coi_eye_readable"],
        typed=True,
        signatures=api.sign("coordinator"),
    )
    assert collected.status_code == 201, collected.text
    assert collected.json()["custody"]["accepted"] is True
    current = collected.json()["order"]
    assert current["state"] == "apheresis_collected" and current["open_exceptions"] == 3
    accepted(api, "logistics", current, "handover_to_courier")
    accepted(api, "operator", current, "receipt_at_site")
    accepted(api, "operator", current, "start_manufacturing")
    made = event(api, "operator", oid, "complete_manufacturing", signatures=api.sign("operator"))
    assert made.status_code == 200, made.text
    qc(api, oid, passed=True)

    # Open exceptions block QA release until QA closes each one with a reason.
    blocked = assert_problem(release(api, order), 409, code="open-exceptions")
    assert "3 open exception" in blocked["detail"]
    assert state_of(api, oid)[0] == "in_qc"
    ids = [e["id"] for e in api.get("qa", f"/orders/{oid}/exceptions").json()]
    close = {"reason_code": "deviation", "reason_text": "wrong bag caught at the bench; none used"}
    assert_problem(api.post("operator", f"/orders/{oid}/exceptions/{ids[0]}/close", close), 403)
    assert_problem(
        api.post("qa", f"/orders/{oid}/exceptions/{ids[0]}/close", {"reason_code": "deviation"}),
        422,
    )
    assert_problem(api.post("qa", f"/orders/{oid}/exceptions/999999/close", close), 404)
    for exception_id in ids[:-1]:
        closed = api.post("qa", f"/orders/{oid}/exceptions/{exception_id}/close", close)
        assert closed.status_code == 200, closed.text
        assert (
            closed.json()["closed_at"] and closed.json()["closure_reason"] == close["reason_text"]
        )
    assert_problem(release(api, order), 409, code="open-exceptions")
    assert_problem(api.post("qa", f"/orders/{oid}/exceptions/{ids[0]}/close", close), 409)
    last = api.post("qa", f"/orders/{oid}/exceptions/{ids[-1]}/close", close)
    assert last.status_code == 200, last.text
    closures = [
        e
        for e in api.get("qa", f"/orders/{oid}/audit").json()
        if e["entity_type"] == "order_exception" and e["action"] == "update"
    ]
    assert len(closures) == 3 and {e["reason_code"] for e in closures} == {"deviation"}
    released = release(api, order)
    assert released.status_code == 200, released.text
    assert released.json()["order"]["state"] == "released"
    assert released.json()["order"]["open_exceptions"] == 0

    # An excursion on the way back is an exception too, and blocks the infusion.
    back = {"direction": "to_center", "courier": "Cryoport", "tracking": "CP-9"}
    made = api.post("operator", f"/orders/{oid}/shipments", back)
    assert made.status_code == 201, made.text
    ship = made.json()
    assert ship["high_c"] == -150.0
    accepted(api, "operator", order, "handover_to_courier_return")
    warm = api.post(
        "operator",
        f"/orders/{oid}/shipments/{ship['id']}/temperature-log",
        content=logger_csv([-182.0, -110.0, -95.0, -181.0]),
        headers={"Content-Type": "text/csv"},
    )
    assert warm.status_code == 201, warm.text
    assert warm.json()["exceptions_raised"] == 1
    accepted(api, "coordinator", order, "receipt_at_center")
    listed = api.get("coordinator", f"/orders/{oid}/exceptions").json()
    [exception] = [e for e in listed if e["closed_at"] is None]
    assert exception["kind"] == "temperature_excursion" and len(listed) == 4

    body = {
        "scanned": "&/" + order["coi"],
        "place": "ward 4",
        "at": now(),
        "signatures": api.sign("coordinator"),
    }
    infused = api.post("coordinator", f"/orders/{oid}/infusion", body)
    assert_problem(infused, 409, code="open-exceptions")
    assert state_of(api, oid)[0] == "delivered"
    close = {"reason_code": "deviation", "reason_text": "stability data cover 45 min at -95 C"}
    closed = api.post("qa", f"/orders/{oid}/exceptions/{exception['id']}/close", close)
    assert closed.status_code == 200, closed.text
    infused = api.post("coordinator", f"/orders/{oid}/infusion", {**body, "at": now()})
    assert infused.status_code == 200, infused.text
    assert infused.json()["order"]["state"] == "infused"
    with make_session_factory(api.ctx.engine)() as session, session.begin():
        assert AuditRepository().verify(session) == [], "refusals are chained like the rest"


# --- e-signatures -------------------------------------------------------------------------


@dataclass
class Client:
    """A small API client over its own service context (settings of the test's choosing)."""

    client: TestClient
    ctx: ServiceContext
    tokens: dict[str, str] = field(default_factory=dict)

    def post(self, user: str, path: str, json: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.client.post("/api/v1" + path, json=json, headers=headers)

    def get(self, user: str, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.client.get("/api/v1" + path, headers=headers)

    def sign(self, *users: str, password: str = PASSWORD) -> list[dict[str, str]]:
        return [{"username": u, "password": password} for u in users]


TWO_PERSON_USERS = {
    "coordinator": (Role.CENTER_COORDINATOR, "dana-farber", None, "Carla Coordinator"),
    "logistics": (Role.LOGISTICS, None, None, "Lee Logistics"),
    "operator": (Role.SITE_OPERATOR, None, SITE, "Sam Operator"),
    "operator2": (Role.SITE_OPERATOR, None, SITE, "Sue Second"),
}


@pytest.fixture
def two_person(migrated_url: str) -> Iterator[Client]:
    """The service with receipt at a US site needing two people's signatures."""
    settings = ServiceSettings(
        database_url=migrated_url,
        patient_key=new_key(),
        signing_key=new_key(),
        signature_rules={"receive_at_site": {"US": 2}},
    )
    ctx = ServiceContext.open(settings, migrate=False)
    for username, (role, center, site, name) in TWO_PERSON_USERS.items():
        accounts.create_user(
            ctx,
            accounts.SYSTEM,
            NewUser(
                username=username,
                printed_name=name,
                password=PASSWORD,
                role=role,
                center=center,
                site=site,
            ),
        )
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        result = Client(client, ctx)
        for username in TWO_PERSON_USERS:
            response = client.post(
                "/api/v1/auth/tokens", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
            result.tokens[username] = response.json()["access_token"]
        yield result
    ctx.close()


def test_signed_steps_check_who_signs_and_bind_the_signatures_to_the_step(
    two_person: Client,
) -> None:
    """Missing, wrong or borrowed signatures are refused; two people sign receipt in the US."""
    api = two_person
    enrolled = api.post(
        "coordinator",
        "/orders",
        {
            "product": "tisagenlecleucel",
            "earliest_apheresis": (datetime.now(UTC).date() + timedelta(days=3)).isoformat(),
            "patient": {
                "given_name": "A",
                "family_name": "B",
                "date_of_birth": "1970-01-01",
                "hospital_number": "H-1",
            },
        },
    )
    assert enrolled.status_code == 201, enrolled.text
    order = enrolled.json()
    oid, coi = order["id"], order["coi"]
    chain = api.get("coordinator", f"/orders/{oid}/offers").json()["offers"][0]
    booked = api.post(
        "coordinator", f"/orders/{oid}/booking", {"site": chain["site"], "start": chain["start"]}
    )
    assert booked.status_code == 200, booked.text

    def post(user: str, step: str, signatures: list[dict[str, str]], **extra: Any) -> Any:
        body = custody_body(coi, step, signatures=signatures, **extra)
        return api.post(user, f"/orders/{oid}/custody-events", body)

    def steps() -> int:
        return count(
            api, select(func.count()).select_from(OrderStepRow).where(OrderStepRow.order_id == oid)
        )

    assert_problem(post("coordinator", "collection", []), 422, field="signatures")
    assert_problem(
        post("coordinator", "collection", api.sign("coordinator", password="wrong horse battery")),
        401,
    )
    assert_problem(
        post("coordinator", "collection", api.sign("logistics")), 422, field="signatures.0.username"
    )
    # Another person's password never travels in my request (issue 13, finding 5).
    assert_problem(
        post("coordinator", "collection", api.sign("coordinator", "nobody")),
        422,
        field="signatures.1",
    )
    assert steps() == 1, "only the booking step exists"
    assert count(api, select(func.count()).select_from(SignatureRow)) == 0
    assert api.get("coordinator", f"/orders/{oid}").json()["state"] == "booked"
    assert api.get("coordinator", f"/orders/{oid}/custody-events").json() == []

    collected = post("coordinator", "collection", api.sign("coordinator"))
    assert collected.status_code == 201, collected.text
    assert len(collected.json()["step"]["signatures"]) == 1, "one signature is enough elsewhere"
    handed = post("logistics", "handover_to_courier", api.sign("logistics"))
    assert handed.status_code == 201, handed.text

    # Receipt at a US site needs two different people, each in their own session.
    assert_problem(
        post("operator", "receipt_at_site", api.sign("operator", "operator")),
        422,
        field="signatures.1",
    )
    assert_problem(
        post("operator", "receipt_at_site", api.sign("operator2")),
        422,
        field="signatures.0.username",
    )
    assert api.get("coordinator", f"/orders/{oid}").json()["state"] == "shipped_to_site"
    at = datetime.now(timezone(timedelta(hours=1))).isoformat()
    first = post("operator", "receipt_at_site", api.sign("operator"), at=at, place="goods in")
    assert first.status_code == 202, first.text
    assert api.get("coordinator", f"/orders/{oid}").json()["state"] == "shipped_to_site"
    pending = first.json()["pending"]
    received = api.post(
        "operator2",
        f"/cosignatures/{pending['id']}/sign",
        {"password": PASSWORD, "meaning": "responsibility"},
    )
    assert received.status_code == 200, received.text
    result = received.json()["result"]
    assert result["order"]["state"] == "received_at_site"
    step = result["step"]
    signatures = step["signatures"]
    assert [s["printed_name"] for s in signatures] == ["Sam Operator", "Sue Second"]
    assert len({s["signer_id"] for s in signatures}) == 2
    for sig in signatures:
        assert sig["meaning"] == "responsibility"
        assert sig["record_type"] == "order_step" and sig["record_id"] == step["id"]
        assert sig["record_hash"] == step["record_hash"]
        assert (
            sig["printed_name"] in sig["manifestation"] and "responsibility" in sig["manifestation"]
        )
    assert handed.json()["step"]["record_hash"] != step["record_hash"]
    assert collected.json()["step"]["record_hash"] != step["record_hash"]

    # The stored signatures verify against the step content recomputed from the rows.
    with api.ctx.engine.connect() as connection:
        step_row = connection.execute(
            select(OrderStepRow).where(OrderStepRow.id == step["id"])
        ).one()
        sig_rows = connection.execute(
            select(SignatureRow)
            .where(SignatureRow.record_id == step["id"])
            .order_by(SignatureRow.id)
        ).all()
        din = connection.scalar(select(OrderRow.din).where(OrderRow.id == oid))
    details = {
        "step": "receipt_at_site",
        "organisation": "bench",
        "place": "goods in",
        "at": datetime.fromisoformat(at).isoformat(),
        "temperature_c": -180.0,
        "scanned": "&/" + coi,
        "din": din,
    }
    content = step_content(OrderStepRow(**step_row._mapping), coi, details)
    assert len(sig_rows) == 2
    for row in sig_rows:
        sig = ElectronicSignature(
            row.signer_id,
            row.printed_name,
            row.signed_at,
            SignatureMeaning(row.meaning),
            row.record_type,
            row.record_id,
            row.record_hash,
            row.signature_hash,
        )
        key = api.ctx.signing_key
        assert verify_signature(
            sig, content, record_type="order_step", record_id=step["id"], key=key
        )
        assert not verify_signature(
            sig, {**content, "details": {**details, "place": "elsewhere"}}, key=key
        )
        assert not verify_signature(sig, content, key=b"another key")


# --- QC and release -----------------------------------------------------------------------


def test_release_needs_passed_qc_and_oos_has_three_ways_on(api: Any) -> None:
    """No QC or failed QC: no release; after OOS: re-manufacture, expanded access, new apheresis."""
    order = to_qc(api)
    oid = order["id"]
    assert_problem(release(api, order), 409, code="qc-missing")
    qc(api, oid, passed=True, test="identity")
    qc(api, oid, passed=False, test="sterility")
    failed = assert_problem(release(api, order), 409, code="qc-failed")
    assert "sterility" in failed["detail"]
    assert state_of(api, oid)[0] == "in_qc"
    assert_problem(release(api, order, user="operator"), 403)

    assert_problem(event(api, "qa", oid, "report_oos"), 422, field="signatures")
    assert_problem(event(api, "operator", oid, "report_oos", signatures=api.sign("operator")), 403)
    oos = event(api, "qa", oid, "report_oos", signatures=api.sign("qa"))
    assert oos.status_code == 200, oos.text
    assert oos.json()["order"]["state"] == "out_of_specification"
    assert oos.json()["step"]["signatures"][0]["meaning"] == "review"
    assert_problem(release(api, order), 409, code="illegal-transition")
    assert_problem(
        api.post(
            "qa",
            f"/orders/{oid}/qc-results",
            {"test": "x", "result": "y", "specification": "z", "passed": True, "tested_at": now()},
        ),
        409,
    )

    # Re-manufacture from stored apheresis: QA, signed, with a failure reason.
    assert_problem(
        event(api, "qa", oid, "remanufacture", signatures=api.sign("qa")), 422, field="reason_code"
    )
    assert_problem(
        event(
            api,
            "qa",
            oid,
            "remanufacture",
            reason_code="patient_request",
            signatures=api.sign("qa"),
        ),
        422,
        field="reason_code",
    )
    assert_problem(
        event(api, "qa", oid, "remanufacture", reason_code="manufacturing_failure"),
        422,
        field="signatures",
    )
    again = event(
        api,
        "qa",
        oid,
        "remanufacture",
        reason_code="manufacturing_failure",
        signatures=api.sign("qa"),
    )
    assert again.status_code == 200, again.text
    assert again.json()["order"]["state"] == "in_manufacturing"
    replanned = again.json()["order"]["plan"]
    assert replanned["start"] >= datetime.now(UTC).date().isoformat(), "manufacturing restarts"
    assert replanned["start"] < replanned["release"]
    assert again.json()["step"]["reason_code"] == "manufacturing_failure"
    assert again.json()["step"]["signatures"][0]["meaning"] == "approval"
    made = event(api, "operator", oid, "complete_manufacturing", signatures=api.sign("operator"))
    assert made.status_code == 200, made.text
    assert made.json()["order"]["state"] == "in_qc"

    # The new batch is judged on its own QC: the first batch's results do not count.
    assert_problem(release(api, order), 409, code="qc-missing")
    qc(api, oid, passed=True, test="sterility")
    released = release(api, order)
    assert released.status_code == 200, released.text
    assert released.json()["order"]["state"] == "released"
    assert len(api.get("qa", f"/orders/{oid}/qc-results").json()) == 3, "all results are kept"

    # Out of specification: release under expanded access, with its own reason code.
    expanded_order = to_qc(api)
    oid = expanded_order["id"]
    assert event(api, "qa", oid, "report_oos", signatures=api.sign("qa")).status_code == 200
    assert_problem(
        event(
            api,
            "qa",
            oid,
            "release_under_expanded_access",
            reason_code="deviation",
            signatures=api.sign("qa"),
        ),
        422,
        field="reason_code",
    )
    expanded = event(
        api,
        "qa",
        oid,
        "release_under_expanded_access",
        reason_code="expanded_access",
        reason_text="treating physician's request",
        signatures=api.sign("qa"),
    )
    assert expanded.status_code == 200, expanded.text
    assert expanded.json()["order"]["state"] == "released"
    assert expanded.json()["step"]["reason_code"] == "expanded_access"
    trail = api.get("qa", f"/orders/{oid}/audit").json()
    [decision] = [e for e in trail if e["reason_code"] == "expanded_access"]
    assert decision["action"] == "transition"
    assert ["state", "out_of_specification", "released"] in decision["changes"]
    assert decision["reason_text"] == "treating physician's request"

    # A new apheresis: book again from OOS, with a reason; the new chain takes capacity.
    second = to_qc(api)
    sid = second["id"]
    assert event(api, "qa", sid, "report_oos", signatures=api.sign("qa")).status_code == 200
    chain = api.get("coordinator", f"/orders/{sid}/offers").json()["offers"][0]
    body = {"site": chain["site"], "start": chain["start"]}
    assert_problem(
        api.post("coordinator", f"/orders/{sid}/booking", body), 422, field="reason_code"
    )
    assert state_of(api, sid)[0] == "out_of_specification"
    rebooked = api.post(
        "coordinator", f"/orders/{sid}/booking", {**body, "reason_code": "manufacturing_failure"}
    )
    assert rebooked.status_code == 200, rebooked.text
    view = rebooked.json()
    assert view["state"] == "booked" and view["plan"]["start"] == chain["start"]
    with api.ctx.engine.connect() as connection:
        step_row = connection.execute(
            select(OrderStepRow.event, OrderStepRow.reason_code)
            .where(OrderStepRow.order_id == sid)
            .order_by(OrderStepRow.at.desc())
        ).first()
    assert step_row is not None and tuple(step_row) == ("rebook_apheresis", "manufacturing_failure")
    new_collection = collect(api, view)
    assert new_collection["din"] and new_collection["din"] != second["din"]


# --- temperature logs and labels ----------------------------------------------------------


def logger_csv(temperatures: list[float], start: datetime | None = None) -> bytes:
    first = start or datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    lines = ["timestamp,temperature_c"]
    lines += [
        f"{(first + timedelta(minutes=10 * i)).isoformat()},{t}" for i, t in enumerate(temperatures)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_temperature_logs_and_labels(api: Any) -> None:
    """A warm spell in LN2 vapour is an exception, a bad file stores nothing; labels print."""
    order = api.enroll()
    oid = order["id"]
    api.book_first(oid)
    shipment = {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-7"}
    assert_problem(
        api.post("logistics", f"/orders/{oid}/shipments", shipment), 409, code="illegal-transition"
    )
    collect(api, order)
    back = {**shipment, "direction": "to_center"}
    assert_problem(
        api.post("logistics", f"/orders/{oid}/shipments", back), 409, code="illegal-transition"
    )
    made = api.post("logistics", f"/orders/{oid}/shipments", shipment)
    assert made.status_code == 201, made.text
    ship = made.json()
    assert ship["low_c"] is None and ship["high_c"] == -150.0, "cryopreserved apheresis"
    path = f"/orders/{oid}/shipments/{ship['id']}/temperature-log"
    csv = {"Content-Type": "text/csv"}

    def logs() -> int:
        return count(
            api,
            select(func.count())
            .select_from(TemperatureLogRow)
            .where(TemperatureLogRow.shipment_id == ship["id"]),
        )

    warm = api.post(
        "logistics",
        path,
        content=logger_csv([-185.0, -160.0, -140.0, -120.5, -135.0, -170.0, -182.0]),
        headers=csv,
    )
    assert warm.status_code == 201, warm.text
    result = warm.json()
    assert result["readings"] == 7 and result["exceptions_raised"] == 1
    [excursion] = result["excursions"]
    assert excursion["side"] == "above" and excursion["limit_c"] == -150.0
    assert excursion["extreme_c"] == -120.5 and excursion["minutes"] == 30.0
    assert excursion["ongoing"] is False
    assert result["shipment"]["logs"] == 1 and result["shipment"]["excursions"] == 1
    exceptions = api.get("coordinator", f"/orders/{oid}/exceptions").json()
    assert [e["kind"] for e in exceptions] == ["temperature_excursion"]
    assert ship["id"] in exceptions[0]["detail"] and exceptions[0]["closed_at"] is None
    assert api.get("coordinator", f"/orders/{oid}").json()["open_exceptions"] == 1

    clean = api.post(
        "logistics", path, content=logger_csv([-185.0, -184.0, -150.0, -186.0]), headers=csv
    )
    assert clean.status_code == 201, clean.text
    assert clean.json()["excursions"] == [] and clean.json()["exceptions_raised"] == 0
    assert len(api.get("coordinator", f"/orders/{oid}/exceptions").json()) == 1
    assert logs() == 2

    bad = b"timestamp,temperature_c\n2026-03-02T08:00:00Z,-180.0\n2026-03-02T08:10:00Z,warm\n"
    problem = assert_problem(
        api.post("logistics", path, content=bad, headers=csv), 422, field="body.line[3]"
    )
    assert "line 3" in problem["detail"]
    header = b"time,temp\n2026-03-02T08:00:00Z,-120.0\n"
    assert (
        "line 1"
        in assert_problem(api.post("logistics", path, content=header, headers=csv), 422)["detail"]
    )
    naive = b"timestamp,temperature_c\n2026-03-02T08:00:00,-120.0\n"
    assert_problem(
        api.post("logistics", path, content=naive, headers=csv), 422, field="body.line[2]"
    )
    assert logs() == 2, "a rejected file is not stored"
    assert len(api.get("coordinator", f"/orders/{oid}/exceptions").json()) == 1
    assert_problem(
        api.post(
            "logistics",
            f"/orders/{oid}/shipments/shp_nope/temperature-log",
            content=logger_csv([-180.0]),
            headers=csv,
        ),
        404,
    )
    assert_problem(api.post("operator", path, content=logger_csv([-180.0]), headers=csv), 403)
    listed = api.get("logistics", f"/orders/{oid}/shipments").json()
    assert [(s["id"], s["logs"], s["excursions"]) for s in listed] == [(ship["id"], 2, 1)]

    # Labels: PDF or PNG; an EU order gets its Single European Code once collected.
    accounts.create_user(
        api.ctx,
        accounts.SYSTEM,
        NewUser(
            username="eu_coordinator",
            printed_name="Erika Europa",
            password=PASSWORD,
            role=Role.CENTER_COORDINATOR,
            center="charite-berlin",
        ),
    )
    login = api.client.post(
        "/api/v1/auth/tokens", json={"username": "eu_coordinator", "password": PASSWORD}
    )
    assert login.status_code == 201, login.text
    api.tokens["eu_coordinator"] = login.json()["access_token"]

    eu = api.enroll("eu_coordinator")
    assert eu["market"] == "EU" and eu["sec"] is None
    booked = api.book_first(eu["id"], "eu_coordinator")
    assert booked["sec"] is None, "no SEC before there is a donation"
    collected = collect(api, eu, "eu_coordinator")
    assert collected["din"] and collected["sec"]
    sec = SingleEuropeanCode.parse(collected["sec"])
    assert sec.din == DonationIdentificationNumber.parse(collected["din"])
    assert api.get("eu_coordinator", f"/orders/{eu['id']}").json()["sec"] == collected["sec"]

    us = api.get("coordinator", f"/orders/{oid}").json()
    assert us["din"] and us["sec"] is None, "US orders carry no SEC"

    for order_id, user in ((eu["id"], "eu_coordinator"), (us["id"], "coordinator")):
        pdf = api.get(user, f"/orders/{order_id}/label", params={"format": "pdf"})
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        png = api.get(user, f"/orders/{order_id}/label", params={"format": "png"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert api.get("operator", f"/orders/{us['id']}/label").status_code == 200
    assert_problem(
        api.get("coordinator", f"/orders/{us['id']}/label", params={"format": "gif"}), 422
    )
    assert_problem(api.get("coordinator", f"/orders/{eu['id']}/label"), 404)
    assert_problem(api.get("planner", f"/orders/{us['id']}/label"), 403)
