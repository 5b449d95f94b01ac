"""Input that floods or lies: flickering loggers, scan storms, implausible times, odd bodies.

Issue 13, findings 4, 8, 9 and 13: a logger file that crosses its limit thousands of
times, a scanner refusing bag after bag, event times from 2099 or before the step they
follow, offsets that push a time out of the calendar, JSON nested 10,000 deep and
methods a path does not have. Each is answered with a clear refusal or a bounded write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.api.conftest import PASSWORD, USERS, Api, make_users, settings_for
from tests.api.test_custody import (
    assert_problem,
    collect,
    count,
    custody_body,
    handoff,
    to_qc,
)

from cartnet.api import create_app
from cartnet.service.context import ServiceContext
from cartnet.store.tables import AuditEntryRow, CustodyEventRow, OrderExceptionRow, QcResultRow

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def limited(migrated_url: str) -> Iterator[Api]:
    """The API with small refused-scan limits: 3 per order, 5 per user, per hour."""
    settings = settings_for(
        migrated_url,
        refused_scans_per_order=3,
        refused_scans_per_user=5,
        refused_scan_window_minutes=60,
    )
    ctx = ServiceContext.open(settings, migrate=False)
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        result = Api(client, ctx)
        for username in USERS:
            response = client.post(
                "/api/v1/auth/tokens", json={"username": username, "password": PASSWORD}
            )
            result.tokens[username] = response.json()["access_token"]
        yield result
    ctx.close()


def rows(api: Api, table: Any, *where: Any) -> int:
    return count(api, select(func.count()).select_from(table).where(*where))


def audit_rows(api: Api) -> int:
    return count(api, select(func.count()).select_from(AuditEntryRow))


# --- finding 4: exception flooding ----------------------------------------------------------


def flickering_log(bursts: int, crossings: int, gap_hours: int) -> bytes:
    """``bursts`` spells of a logger flickering across -150 °C, one reading a minute,
    ``crossings`` excursions each, with ``gap_hours`` of steady cold between them."""
    t = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    lines = ["timestamp,temperature_c"]
    for burst in range(bursts):
        if burst:
            for _ in range(gap_hours * 60):
                lines.append(f"{t.isoformat()},-185.0")
                t += timedelta(minutes=1)
        for i in range(2 * crossings):
            warm = -140.0 + (i % 7) if i % 2 == 0 else -160.0
            lines.append(f"{t.isoformat()},{warm}")
            t += timedelta(minutes=1)
    lines.append(f"{t.isoformat()},-185.0")
    return ("\n".join(lines) + "\n").encode()


def shipment_of(api: Api) -> tuple[str, str]:
    order = api.enroll()
    api.book_first(order["id"])
    collect(api, order)
    body = {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-1"}
    made = api.post("logistics", f"/orders/{order['id']}/shipments", body)
    assert made.status_code == 201, made.text
    return order["id"], made.json()["id"]


def test_a_flickering_logger_raises_one_exception_per_episode_quickly(api: Api) -> None:
    """8,000 crossings of the limit in 3 spells: 3 exceptions, 3 audit entries, seconds."""
    oid, shipment = shipment_of(api)
    data = flickering_log(bursts=3, crossings=2700, gap_hours=3)
    assert len(data) > 400_000, "as large as the reviewer's 416 kB file"
    audit_before = audit_rows(api)

    started = time.monotonic()
    response = api.post(
        "logistics",
        f"/orders/{oid}/shipments/{shipment}/temperature-log",
        content=data,
        headers=CSV,
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 201, response.text
    result = response.json()
    assert len(result["excursions"]) == 3 * 2700
    assert result["exceptions_raised"] == 3
    episodes = result["episodes"]
    assert [e["excursions"] for e in episodes] == [2700, 2700, 2700]
    first = episodes[0]
    assert first["start"].startswith("2026-03-02T08:00:00")
    assert first["minutes"] == 2 * 2700 - 1 and first["minutes_outside"] == 2700
    assert first["peak_c"] == -134.0 and first["side"] == "above" and first["limit_c"] == -150.0
    assert first["ongoing"] is False
    raised = api.get("qa", f"/orders/{oid}/exceptions").json()
    assert [e["kind"] for e in raised] == ["temperature_excursion"] * 3
    assert "2700 excursions" in raised[0]["detail"] and "peak -134 °C" in raised[0]["detail"]
    assert audit_rows(api) - audit_before == 1 + 3, "the log and one entry per exception"
    assert elapsed < 5.0, f"the upload took {elapsed:.1f} s"


def test_one_log_raises_at_most_the_configured_exceptions(api: Api) -> None:
    """Spells far apart are separate episodes; past the cap the last exception sums up."""
    oid, shipment = shipment_of(api)
    cap = api.ctx.settings.max_exceptions_per_log
    data = flickering_log(bursts=cap + 5, crossings=2, gap_hours=2)
    response = api.post(
        "logistics",
        f"/orders/{oid}/shipments/{shipment}/temperature-log",
        content=data,
        headers=CSV,
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["episodes"]) == cap + 5
    assert response.json()["exceptions_raised"] == cap
    raised = api.get("qa", f"/orders/{oid}/exceptions").json()
    assert len(raised) == cap
    assert "6 further excursion episodes" in raised[-1]["detail"]
    assert "12 excursions" in raised[-1]["detail"]


def test_refused_scans_beyond_the_limits_are_answered_429_and_not_recorded(
    limited: Api,
) -> None:
    """A wrong bag is recorded up to the order's and the user's limit, then refused alone."""
    api = limited
    first, second = api.enroll(), api.enroll()
    for order in (first, second):
        api.book_first(order["id"])

    def scan(order: dict[str, Any], bag: dict[str, Any]) -> Any:
        """The coordinator scans ``bag`` to collect for ``order``."""
        body = custody_body(bag["coi"], "collection", signatures=api.sign("coordinator"))
        return api.post("coordinator", f"/orders/{order['id']}/custody-events", body)

    for _ in range(3):
        assert_problem(scan(first, second), 409, code="coi-mismatch")
    audit_before = audit_rows(api)
    over = scan(first, second)
    problem = assert_problem(over, 429, field="scanned", code="refused-scan-limit")
    assert "another therapy" in problem["detail"], "the refusal itself is still answered"
    assert "order" in problem["detail"] and "limit is 3" in problem["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 3600
    assert rows(api, CustodyEventRow, CustodyEventRow.order_id == first["id"]) == 3
    assert rows(api, OrderExceptionRow, OrderExceptionRow.order_id == first["id"]) == 3
    assert audit_rows(api) == audit_before, "nothing written past the limit"

    # The user's limit counts across orders: 3 on the first, 2 more on the second.
    for _ in range(2):
        assert_problem(scan(second, first), 409, code="coi-mismatch")
    problem = assert_problem(scan(second, first), 429, code="refused-scan-limit")
    assert "user" in problem["detail"] and "limit is 5" in problem["detail"]
    assert rows(api, CustodyEventRow, CustodyEventRow.order_id == second["id"]) == 2

    # The right bag is still accepted, and an hour later wrong scans are recorded again.
    right = scan(second, second)
    assert right.status_code == 201, right.text
    later = datetime.now(UTC) + timedelta(minutes=61)
    api.ctx.clock = lambda: later
    body = custody_body(second["coi"], "collection", signatures=api.sign("coordinator"))
    body["at"] = later.isoformat()
    again = api.post("coordinator", f"/orders/{first['id']}/custody-events", body)
    assert_problem(again, 409, code="coi-mismatch")
    assert rows(api, CustodyEventRow, CustodyEventRow.order_id == first["id"]) == 4


# --- finding 8: implausible times ------------------------------------------------------------


def at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def test_event_times_are_bounded_by_the_clock_and_the_previous_steps(api: Api) -> None:
    """A collection in 2099 or before the order, a handover before the collection and a
    QC result before manufacturing are refused, naming the field and the bound."""
    order = api.enroll()
    oid = order["id"]
    api.book_first(oid)
    signed = {"signatures": api.sign("coordinator")}
    audit_before = audit_rows(api)

    future = handoff(api, "coordinator", order, "collection", at="2099-01-05T09:30:00Z", **signed)
    problem = assert_problem(future, 422, field="at", code="implausible-time")
    assert "10 minutes ahead of the server clock" in problem["detail"]
    early = handoff(api, "coordinator", order, "collection", at="2020-06-01T09:30:00Z", **signed)
    problem = assert_problem(early, 422, field="at", code="implausible-time")
    assert "before the order's creation" in problem["detail"]
    assert audit_rows(api) == audit_before, "nothing written"

    # Within the allowed skew is fine; the next handoff cannot be before it.
    collected = handoff(
        api, "coordinator", order, "collection", at=at(timedelta(minutes=5)), **signed
    )
    assert collected.status_code == 201, collected.text
    back = handoff(
        api, "logistics", order, "handover_to_courier", at=at(-timedelta(minutes=7)),
        signatures=api.sign("logistics"),
    )  # fmt: skip
    problem = assert_problem(back, 422, field="at", code="implausible-time")
    assert "before the previous handoff (collection)" in problem["detail"]
    assert "allowing 10 minutes for clocks" in problem["detail"]
    assert collected.json()["custody"]["at"][:16] in problem["detail"]

    in_qc = to_qc(api)
    started = next(
        e for e in api.get("qa", f"/orders/{in_qc['id']}/custody-events").json()
        if e["step"] == "start_manufacturing"
    )["at"]  # fmt: skip
    qc = {"test": "sterility", "result": "no growth", "specification": "no growth", "passed": True}
    path = f"/orders/{in_qc['id']}/qc-results"
    before = api.post("qa", path, {**qc, "tested_at": "2020-06-01T00:00:00+00:00"})
    problem = assert_problem(before, 422, field="tested_at", code="implausible-time")
    assert (
        f"before the start of manufacturing of this batch at {started[:19]}" in (problem["detail"])
    )
    ahead = api.post("qa", path, {**qc, "tested_at": at(timedelta(days=1))})
    problem = assert_problem(ahead, 422, field="tested_at", code="implausible-time")
    assert "ahead of the server clock" in problem["detail"]
    assert rows(api, QcResultRow, QcResultRow.order_id == in_qc["id"]) == 0
    ok = api.post("qa", f"/orders/{in_qc['id']}/qc-results", {**qc, "tested_at": at(timedelta())})
    assert ok.status_code == 201, ok.text


def test_the_custody_chain_reads_in_the_order_it_happened(api: Api) -> None:
    """Accepted handoffs come in time order, so the chain is served as it was recorded."""
    order = to_qc(api)
    chain = api.get("coordinator", f"/orders/{order['id']}/custody-events").json()
    assert [e["step"] for e in chain] == [
        "collection",
        "handover_to_courier",
        "receipt_at_site",
        "start_manufacturing",
    ]
    assert [e["id"] for e in chain] == sorted(e["id"] for e in chain)


def test_the_allowed_clock_skew_is_a_setting(limited: Api, migrated_url: str) -> None:
    """``clock_skew_minutes`` bounds how far ahead a bench clock may be."""
    api = limited
    assert api.ctx.settings.clock_skew_minutes == 10
    order = api.enroll()
    api.book_first(order["id"])
    ahead = handoff(
        api, "coordinator", order, "collection", at=at(timedelta(minutes=11)),
        signatures=api.sign("coordinator"),
    )  # fmt: skip
    assert_problem(ahead, 422, field="at")
    strict = settings_for(migrated_url, clock_skew_minutes=0)
    assert strict.clock_skew == timedelta(0)


# --- finding 9: offsets at the ends of the calendar ------------------------------------------

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z"]


@pytest.mark.parametrize("when", EDGES)
def test_a_time_beyond_the_calendar_is_refused_with_422(api: Api, when: str) -> None:
    """Converted to UTC these leave the year range: 422 naming the field, not a 500."""
    order = api.enroll()
    api.book_first(order["id"])
    audit_before = audit_rows(api)
    response = handoff(
        api, "coordinator", order, "collection", at=when, signatures=api.sign("coordinator")
    )
    problem = assert_problem(response, 422, field="body.at")
    assert "2000-01-01" in problem["detail"]
    qc = {"test": "t", "result": "r", "specification": "s", "passed": True, "tested_at": when}
    assert_problem(
        api.post("qa", f"/orders/{order['id']}/qc-results", qc), 422, field="body.tested_at"
    )
    assert audit_rows(api) == audit_before


@pytest.mark.parametrize("when", EDGES[:2])
def test_a_logger_reading_beyond_the_calendar_is_refused_with_422(api: Api, when: str) -> None:
    oid, shipment = shipment_of(api)
    data = f"timestamp,temperature_c\n{when},-185.0\n".encode()
    response = api.post(
        "logistics",
        f"/orders/{oid}/shipments/{shipment}/temperature-log",
        content=data,
        headers=CSV,
    )
    problem = assert_problem(response, 422, field="body.line[2]")
    assert "2000-01-01" in problem["detail"]


# --- finding 13: 405, the document's bounds, deep JSON ----------------------------------------


def test_a_method_not_allowed_says_which_are(api: Api) -> None:
    """RFC 9110 15.5.6: a 405 carries Allow, in the API and in the portal alike."""
    response = api.client.put("/api/v1/orders", headers=api.headers("coordinator"))
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert api.client.delete("/healthz").headers["Allow"] == "GET"
    page = api.client.put("/login")
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert set(page.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_the_document_states_date_bounds_and_lengths(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    day = schemas["NewOrder"]["properties"]["earliest_apheresis"]
    assert (day["formatMinimum"], day["formatMaximum"]) == ("2000-01-01", "2199-12-31")
    birth = schemas["PatientIdentity"]["properties"]["date_of_birth"]
    assert birth["formatMinimum"] == "1880-01-01"
    for model, name in (
        ("CustodyRequest", "at"),
        ("StepRequest", "at"),
        ("NewQcResult", "tested_at"),
    ):
        moment = schemas[model]["properties"][name]
        assert moment["formatMinimum"].startswith("2000-01-01"), (model, moment)
        assert moment["formatExclusiveMaximum"].startswith("2200-01-01")
        assert "clock_skew_minutes" in moment["description"]
    assert schemas["CustodyRequest"]["properties"]["place"]["maxLength"] == 200
    assert schemas["Login"]["properties"]["password"]["maxLength"] == 200
    offers = document["paths"]["/api/v1/orders/{order_id}/offers"]["get"]["parameters"]
    [earliest] = [p for p in offers if p["name"] == "earliest_apheresis"]
    assert earliest["schema"]["anyOf"][0]["formatMaximum"] == "2199-12-31"
    capacity = document["paths"]["/api/v1/capacity/{site}"]["get"]["parameters"]
    [first] = [p for p in capacity if p["name"] == "from"]
    assert first["schema"]["anyOf"][0]["formatMinimum"] == "2000-01-01"
    custody = document["paths"]["/api/v1/orders/{order_id}/custody-events"]["post"]
    assert "429" in custody["responses"]


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_malformed_json(api: Api, depth: int) -> None:
    """The parser's recursion limit is a client's mistake (400), not a server error."""
    body = b"[" * depth + b"]" * depth
    headers = {**api.headers("coordinator"), "Content-Type": "application/json"}
    response = api.client.post("/api/v1/orders", content=body, headers=headers)
    problem = assert_problem(response, 400, field="body")
    assert problem["title"] == "Malformed JSON"
    assert "nested" in problem["detail"]
