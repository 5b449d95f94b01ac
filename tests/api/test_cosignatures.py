"""Co-signatures in the co-signer's own session (issue 13, findings 5 and 10).

A step that needs two people is not taken by the first signer's request: it waits,
the order does not move, and a second person of the step's tenant and role signs it
from their own session; the last signature takes the step as a single signature would.
Every refusal of a co-signature looks the same, whoever asks and whatever is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from tests.api.conftest import CENTER, PASSWORD, SITE, USERS, Api, settings_for
from tests.api.test_custody import assert_problem, custody_body

from cartnet.api import create_app
from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.verification import verify_database
from cartnet.store.records import record_problems
from cartnet.store.tables import (
    CollectionRow,
    CosignatureRequestRow,
    CustodyEventRow,
    OrderRow,
    OrderStepRow,
    SignatureRow,
)
from cartnet.store.verification import Outcome

RULES = {
    "collect_apheresis": {"US": 2},
    "ship_to_site": {
        "US": {"count": 2, "roles": ["center_coordinator", "logistics"], "other_tenants": True}
    },
    "complete_manufacturing": {"US": {"count": 2, "roles": ["site_operator", "qa"]}},
}
"""Collection: two coordinators of the center (the default rule's roles and tenant);
handover: a coordinator and the courier; end of manufacturing: operator and QA."""
COSIGN_USERS = {
    **USERS,
    "coordinator2": (Role.CENTER_COORDINATOR, CENTER, None, "Cora Second"),
    "other_qa": (Role.QA, None, "leipzig", "Lena Leipzig"),
}


@pytest.fixture
def api(migrated_url: str) -> Iterator[Api]:
    ctx = ServiceContext.open(settings_for(migrated_url, signature_rules=RULES), migrate=False)
    for username, (role, center, site, name) in COSIGN_USERS.items():
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
        result = Api(client, ctx)
        for username in COSIGN_USERS:
            response = client.post(
                "/api/v1/auth/tokens", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
            result.tokens[username] = response.json()["access_token"]
        yield result
    ctx.close()


def count(api: Api, model: Any, **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    with api.ctx.reading() as session:
        return int(session.scalar(query) or 0)


def booked(api: Api) -> dict[str, Any]:
    order = api.enroll()
    return api.book_first(order["id"])


def collect(api: Api, order: dict[str, Any], user: str = "coordinator", **extra: Any) -> Any:
    body = custody_body(order["coi"], "collection", signatures=api.sign(user), **extra)
    return api.post(user, f"/orders/{order['id']}/custody-events", body)


def cosign(api: Api, user: str, request_id: str, **body: Any) -> Any:
    payload = {"password": PASSWORD, "meaning": "responsibility", **body}
    return api.post(user, f"/cosignatures/{request_id}/sign", payload)


def awaiting(api: Api, user: str) -> list[str]:
    response = api.get(user, "/cosignatures")
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["awaiting_you"]]


def verified(api: Api) -> None:
    """``cartnet audit verify`` passes: the chain, every record (co-signature requests,
    steps, signatures and seals) and every account agree with the trail."""
    with api.ctx.reading() as session:
        report = verify_database(session, api.ctx.signing_key)
    assert report.problems == () and report.notices == (), report
    assert report.outcome is Outcome.VERIFIED


def test_a_cosigned_step_waits_and_the_cosigner_signs_in_their_own_session(api: Api) -> None:
    """Collection in the US needs two coordinators: pending first, taken by the second."""
    order = booked(api)
    oid = order["id"]
    first = collect(api, order)
    assert first.status_code == 202, first.text
    pending = first.json()["pending"]
    assert first.json()["step"] is None and first.json()["custody"] is None
    assert first.json()["order"]["state"] == "booked"
    assert pending["state"] == "pending" and pending["required"] == 2
    assert pending["event"] == "collect_apheresis" and pending["meaning"] == "responsibility"
    assert pending["requested_by"] == "Carla Coordinator" and len(pending["signed_by"]) == 1
    din = pending["details"]["din"]
    assert din and pending["details"]["step"] == "collection"
    # Nothing of the step is written yet: no step, custody event, collection or signature.
    assert api.get("coordinator", f"/orders/{oid}").json()["state"] == "booked"
    assert count(api, OrderStepRow, order_id=oid) == 1, "only the booking"
    assert count(api, CustodyEventRow, order_id=oid) == 0
    assert count(api, CollectionRow, order_id=oid) == 0
    assert count(api, SignatureRow) == 0
    verified(api)
    # Lowering the count in the database is named by verify (and would not help anyway:
    # the step's rule is applied again when the last signature comes).
    with api.ctx.engine.begin() as connection:
        connection.execute(
            update(CosignatureRequestRow)
            .where(CosignatureRequestRow.id == pending["id"])
            .values(required=1)
        )
    with api.ctx.reading() as session:
        problems = record_problems(session, api.ctx.signing_key)
    assert any(pending["id"] in p and "required" in p for p in problems), problems
    with api.ctx.engine.begin() as connection:
        connection.execute(
            update(CosignatureRequestRow)
            .where(CosignatureRequestRow.id == pending["id"])
            .values(required=2)
        )

    assert awaiting(api, "coordinator2") == [pending["id"]]
    assert awaiting(api, "coordinator") == [], "the first signer is no co-signer"
    mine = api.get("coordinator", "/cosignatures").json()["yours"]
    assert [r["id"] for r in mine] == [pending["id"]]
    for outsider in ("other_coordinator", "operator", "qa", "logistics", "planner"):
        assert awaiting(api, outsider) == [], outsider

    done = cosign(api, "coordinator2", pending["id"])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["request"]["state"] == "completed"
    step = body["result"]["step"]
    assert body["result"]["order"]["state"] == "apheresis_collected"
    assert body["result"]["order"]["din"] == din, "the DIN the first signature bound"
    assert [s["printed_name"] for s in step["signatures"]] == ["Carla Coordinator", "Cora Second"]
    assert {s["record_hash"] for s in step["signatures"]} == {step["record_hash"]}
    assert step["id"] == pending["step_id"] and step["record_hash"] == pending["record_hash"]
    assert body["result"]["custody"]["actor_name"] == "Carla Coordinator"
    assert count(api, SignatureRow) == 2
    assert count(api, CollectionRow, order_id=oid) == 1
    assert awaiting(api, "coordinator2") == []
    trail = api.get("coordinator", f"/orders/{oid}/audit").json()
    # The step and each signature are audited as a single-signer step's are (verify
    # compares the rows with these entries), in the first signer's name.
    signs = [e for e in trail if e["action"] == "sign" and e["entity_type"] == "signature"]
    assert len(signs) == 2 and {e["actor_name"] for e in signs} == {"Carla Coordinator"}
    steps = [e for e in trail if e["action"] == "create" and e["entity_type"] == "order_step"]
    assert steps[-1]["entity_id"] == f"{oid}/step/{step['id']}"
    cosigned = [e for e in trail if e["entity_type"] == "cosignature_request"]
    assert [e["action"] for e in cosigned] == ["create", "sign", "transition"]
    assert cosigned[1]["actor_name"] == "Cora Second"
    verified(api)

    again = cosign(api, "coordinator2", pending["id"])
    assert_problem(again, 409, code="same-signer")


def test_cosigners_of_another_tenant_or_role_are_refused_all_alike(api: Api) -> None:
    """QA, logistics, a coordinator of another center, a wrong password, an unknown id: one
    answer that names no one; the first signer cannot co-sign."""
    order = booked(api)
    pending = collect(api, order).json()["pending"]
    refusals = [
        cosign(api, user, pending["id"])
        for user in ("other_coordinator", "operator", "qa", "logistics", "planner", "admin")
    ]
    refusals.append(cosign(api, "coordinator2", pending["id"], password="wrong horse battery"))
    refusals.append(cosign(api, "coordinator2", "csr_00000000000000000000"))
    bodies = []
    for response in refusals:
        body = assert_problem(response, 403, field="password", code="cosignature-refused")
        bodies.append({k: v for k, v in body.items() if k != "instance"})
    assert all(b == bodies[0] for b in bodies), bodies
    for name in ("Carla", "Cora", "coordinator", "qa", "logistics"):
        assert name not in bodies[0]["detail"]
    assert_problem(cosign(api, "coordinator", pending["id"]), 409, code="same-signer")
    meaning = cosign(api, "coordinator2", pending["id"], meaning="approval")
    assert_problem(meaning, 422, field="meaning")
    assert api.get("coordinator", f"/orders/{order['id']}").json()["state"] == "booked"
    assert count(api, SignatureRow) == 0


def test_cosigners_in_the_request_are_refused_with_the_new_way(api: Api) -> None:
    """The old shape (another person's username and password in my request) is refused."""
    order = booked(api)
    two = [
        {"username": "coordinator", "password": PASSWORD},
        {"username": "coordinator2", "password": PASSWORD},
    ]
    body = custody_body(order["coi"], "collection", signatures=two)
    refused = api.post("coordinator", f"/orders/{order['id']}/custody-events", body)
    problem = assert_problem(refused, 422, field="signatures.1")
    assert "own session" in problem["detail"] and "/cosignatures" in problem["detail"]
    assert count(api, CosignatureRequestRow) == 0


def test_an_expired_request_is_refused_and_a_withdrawn_one_ends(api: Api) -> None:
    """After cosignature_hours the co-signature is refused; the first signer may withdraw.

    The service's clock moves past the expiry and stays there (the trail's clock never
    goes back)."""
    order = booked(api)
    pending = collect(api, order).json()["pending"]
    hours = api.ctx.settings.cosignature_hours
    api.ctx.clock = lambda: datetime.now(UTC) + timedelta(hours=hours, minutes=1)
    assert awaiting(api, "coordinator2") == []
    expired = cosign(api, "coordinator2", pending["id"])
    assert_problem(expired, 409, code="cosignature-expired")
    assert_problem(cosign(api, "coordinator2", pending["id"]), 409, code="not-pending")
    assert api.get("coordinator", f"/orders/{order['id']}").json()["state"] == "booked"
    assert count(api, SignatureRow) == 0

    again = collect(api, order).json()["pending"]
    assert again["details"]["din"] != pending["details"]["din"], "a DIN is never reused"
    assert api.post("coordinator2", f"/cosignatures/{again['id']}/withdraw").status_code == 403
    withdrawn = api.post("coordinator", f"/cosignatures/{again['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    assert_problem(cosign(api, "coordinator2", again["id"]), 409, code="not-pending")
    assert awaiting(api, "coordinator2") == []
    assert api.get("coordinator", "/cosignatures").json()["yours"] == []
    verified(api)


def test_rules_name_roles_and_may_allow_other_tenants(api: Api) -> None:
    """Handover to the courier: the courier (no tenant) may co-sign where the rule says
    so; end of manufacturing: QA of the site co-signs, QA of another site may not."""
    order = booked(api)
    oid = order["id"]
    first = collect(api, order).json()["pending"]
    assert cosign(api, "coordinator2", first["id"]).status_code == 200
    handover = custody_body(order["coi"], "handover_to_courier", signatures=api.sign("coordinator"))
    pending = api.post("coordinator", f"/orders/{oid}/custody-events", handover).json()["pending"]
    assert awaiting(api, "logistics") == [pending["id"]]
    assert awaiting(api, "coordinator2") == [pending["id"]]
    assert_problem(cosign(api, "operator", pending["id"]), 403, code="cosignature-refused")
    shipped = cosign(api, "logistics", pending["id"])
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["result"]["order"]["state"] == "shipped_to_site"
    for step in ("receipt_at_site", "start_manufacturing"):
        body = custody_body(order["coi"], step, signatures=api.sign("operator"))
        assert api.post("operator", f"/orders/{oid}/custody-events", body).status_code == 201

    made = api.post(
        "operator",
        f"/orders/{oid}/events",
        {"event": "complete_manufacturing", "signatures": api.sign("operator")},
    )
    assert made.status_code == 202, made.text
    with api.ctx.reading() as session:
        assert session.get_one(OrderRow, oid).site == SITE, "qa's site, not other_qa's"
    request_id = made.json()["pending"]["id"]
    assert made.json()["pending"]["meaning"] == "authorship"
    assert awaiting(api, "other_qa") == []
    assert_problem(
        cosign(api, "other_qa", request_id, meaning="authorship"), 403, code="cosignature-refused"
    )
    assert awaiting(api, "qa") == [request_id]
    done = cosign(api, "qa", request_id, meaning="authorship")
    assert done.status_code == 200, done.text
    assert done.json()["result"]["order"]["state"] == "in_qc"
    assert done.json()["result"]["custody"] is None
    assert [s["printed_name"] for s in done.json()["result"]["step"]["signatures"]] == [
        "Sam Operator",
        "Quinn Assurance",
    ]
    verified(api)
