"""One therapy through the API, vein to vein, and the audit trail that proves it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cartnet.store import AuditRepository, make_session_factory


def now() -> str:
    return datetime.now(UTC).isoformat()


def test_an_order_goes_vein_to_vein(api: Any) -> None:
    order = api.enroll()
    oid, coi = order["id"], order["coi"]
    assert order["state"] == "enrolled" and coi.startswith("CHW9999")
    booked = api.book_first(oid)
    assert booked["state"] == "booked" and booked["plan"]["site"]
    site = booked["plan"]["site"]
    assert site == "morris-plains"

    def custody(user: str, step: str, **extra: object) -> dict[str, object]:
        body = {
            "step": step,
            "scanned": "&/" + coi,
            "organisation": "x",
            "place": "bench 1",
            "at": now(),
            "temperature_c": -180.0,
            **extra,
        }
        response = api.post(user, f"/orders/{oid}/custody-events", body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    collected = custody("coordinator", "collection", signatures=api.sign("coordinator"))
    assert collected["order"]["state"] == "apheresis_collected"
    assert collected["order"]["din"]
    shipment = api.post(
        "logistics",
        f"/orders/{oid}/shipments",
        {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-1"},
    )
    assert shipment.status_code == 201, shipment.text
    custody("logistics", "handover_to_courier", signatures=api.sign("logistics"))
    custody("logistics", "courier_transfer")
    custody("operator", "receipt_at_site", signatures=api.sign("operator"))
    custody("operator", "start_manufacturing", signatures=api.sign("operator"))
    done = api.post(
        "operator",
        f"/orders/{oid}/events",
        {"event": "complete_manufacturing", "signatures": api.sign("operator")},
    )
    assert done.status_code == 200, done.text
    assert done.json()["order"]["state"] == "in_qc"
    qc = api.post(
        "qa",
        f"/orders/{oid}/qc-results",
        {
            "test": "sterility",
            "result": "no growth",
            "specification": "no growth",
            "passed": True,
            "tested_at": now(),
        },
    )
    assert qc.status_code == 201, qc.text
    released = api.post(
        "qa",
        f"/orders/{oid}/release",
        {"scanned": "&/" + coi, "place": "QA office", "at": now(), "signatures": api.sign("qa")},
    )
    assert released.status_code == 200, released.text
    step = released.json()["step"]
    assert step["signatures"][0]["meaning"] == "approval"
    assert step["signatures"][0]["printed_name"] == "Quinn Assurance"
    custody("operator", "handover_to_courier_return", signatures=api.sign("operator"))
    custody("coordinator", "receipt_at_center", signatures=api.sign("coordinator"))
    infused = api.post(
        "coordinator",
        f"/orders/{oid}/infusion",
        {
            "scanned": "&/" + coi,
            "place": "ward 4",
            "at": now(),
            "signatures": api.sign("coordinator"),
        },
    )
    assert infused.status_code == 200, infused.text
    assert infused.json()["order"]["state"] == "infused"

    chain = api.get("coordinator", f"/orders/{oid}/custody-events").json()
    assert [c["step"] for c in chain] == [
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
    trail = api.get("qa", f"/orders/{oid}/audit").json()
    states = [c for e in trail for c in e["changes"] if c[0] == "state"]
    assert states[-1] == ["state", "delivered", "infused"]
    label = api.get("operator", f"/orders/{oid}/label")
    assert label.status_code == 200 and label.content.startswith(b"\x89PNG")

    with make_session_factory(api.ctx.engine)() as session, session.begin():
        assert AuditRepository().verify(session) == []
