"""The OpenAPI document: complete, true to what the API does, and fuzzed without a 5xx.

Three kinds of test: schemathesis drives every operation of the document in-process, as
several roles and against real orders, and checks each response against the document;
the document itself must describe every success and every error; and bad input must
come back as RFC 9457 problem details naming the field, with nothing written.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cartnet.api import create_app
from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.store import upgrade

PASSWORD = "correct horse battery"
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


def now() -> str:
    return datetime.now(UTC).isoformat()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/tokens", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def new_order(**change: Any) -> dict[str, Any]:
    body = {
        "product": "tisagenlecleucel",
        "earliest_apheresis": (date.today() + timedelta(days=3)).isoformat(),
        "patient": {
            "given_name": "Maria",
            "family_name": "Musterfrau",
            "date_of_birth": "1961-04-12",
            "hospital_number": "DF-55812",
        },
    }
    return {**body, **change}


def collected_order(api: Any) -> dict[str, Any]:
    """An order with its apheresis collected, a to-site shipment and an open exception.

    ``api`` is anything with the conftest ``Api`` helpers: enroll, book_first, post, get, sign.
    """
    order = api.enroll()
    oid, coi = order["id"], order["coi"]
    api.book_first(oid)

    def scan(scanned: str) -> Any:
        return api.post(
            "coordinator",
            f"/orders/{oid}/custody-events",
            {
                "step": "collection",
                "scanned": scanned,
                "organisation": "x",
                "place": "apheresis unit",
                "at": now(),
                "temperature_c": 4.0,
                "signatures": api.sign("coordinator"),
            },
        )

    assert scan("&/CHW99992099ZZZZZZ").status_code == 409  # refused, kept as an exception
    collected = scan("&/" + coi)
    assert collected.status_code == 201, collected.text
    shipment = api.post(
        "logistics",
        f"/orders/{oid}/shipments",
        {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-1"},
    )
    assert shipment.status_code == 201, shipment.text
    exceptions = api.get("coordinator", f"/orders/{oid}/exceptions").json()
    assert exceptions, "the refused scan should have raised an exception"
    return {
        "order_id": oid,
        "coi": coi,
        "shipment_id": shipment.json()["id"],
        "exception_id": exceptions[0]["id"],
    }


# --- schemathesis -----------------------------------------------------------------------

ROLES = ("coordinator", "operator", "qa", "logistics", "planner", "admin")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
"""Bounded and reproducible: the same 20 examples per operation and mode on every run."""
FEWER = {"POST /api/v1/auth/tokens": 5}
"""Each refused log-in costs a password hash: a few examples suffice for two strings."""
CLOSING = ("/cancel", "/patient-lost")
"""Operations that end an order: they get orders of their own, so the rest keep theirs."""

EXPLICIT: dict[str, list[tuple[str | None, dict[str, Any]]]] = {
    "GET /api/v1/capacity/{site}": [
        ("planner", {"query": {"from": "9999-12-31", "days": 366}}),
        ("planner", {"query": {"from": "0001-01-01", "days": 1}}),
    ],
    "GET /api/v1/orders/{order_id}/offers": [
        ("coordinator", {"query": {"earliest_apheresis": "9999-12-31", "k": 50, "per_site": 10}}),
        ("coordinator", {"query": {"earliest_apheresis": "0001-01-01"}}),
    ],
    "GET /api/v1/orders": [
        ("coordinator", {"query": {"cursor": "!!!"}}),
        ("coordinator", {"query": {"cursor": "eyJ4IjogMX0", "limit": 1}}),
        ("planner", {"query": {"site": "nul\x00"}}),
    ],
    "POST /api/v1/auth/tokens": [(None, {"body": {"username": "nul\x00", "password": "x"}})],
    "POST /api/v1/users": [
        (
            "admin",
            {
                "body": {
                    "username": "nul",
                    "printed_name": "N\x00L",
                    "password": "x" * 12,
                    "role": "planner",
                }
            },
        )
    ],
    "POST /api/v1/orders": [("coordinator", {"body": new_order(scope="clinical", trial="T\x00")})],
    "POST /api/v1/orders/{order_id}/cancel": [
        ("coordinator", {"body": {"reason_code": "other", "reason_text": "a\x00b"}})
    ],
    "POST /api/v1/orders/{order_id}/shipments": [
        ("logistics", {"body": {"direction": "to_site", "courier": "C\x00", "tracking": "T"}})
    ],
}
"""Explicit examples that 20 random ones reach only by luck: the edges of the calendar,
cursors that are not ours, and text with a NUL character (which PostgreSQL cannot store,
so it must be refused as bad input, the same on both databases)."""


def real_ids(api: Any) -> list[dict[str, Any]]:
    """Path values that hit real records: a booked order, a collected one, sites, a user."""
    booked = api.enroll()
    api.book_first(booked["id"])
    users = api.get("admin", "/users").json()
    victim = next(u["id"] for u in users if u["username"] == "operator2")
    return [
        {"order_id": booked["id"], "site": "morris-plains", "user_id": victim},
        {**collected_order(api), "site": "leipzig"},
    ]


def describe(failure: BaseException, case: Any, role: str | None) -> tuple[str, str]:
    """A key that tells distinct failures apart, and a report to reproduce one."""
    if isinstance(failure, Failure):
        title, message = failure.title, failure.message
    else:  # the app answered 500 and the in-process transport re-raised its exception
        title, message = f"500 from unhandled {type(failure).__name__}", str(failure)
    key = f"{case.operation.label}: {title}"
    return key, (
        f"{key} (as {role or 'anonymous'})\n    {message.strip()[:600]}\n    "
        + case.as_curl_command()
    )


def test_schemathesis_finds_no_server_error_and_the_document_holds(api: Any) -> None:
    """Every operation, positive and negative data, as six roles and anonymously, with real
    ids half of the time: no 5xx, and status, content type, headers and body as documented.

    Runs on SQLite and PostgreSQL (the ``api`` fixture's backends): PostgreSQL refuses
    values SQLite stores (NUL characters), so its 5xx differ. Failures are collected
    across all operations and reported together, one line per distinct failure.
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 30, "schemathesis could not read every operation"
    found: dict[str, str] = {}

    def call(case: Any, role: str | None) -> None:
        try:
            case.call_and_validate(checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.setdefault(*describe(failure, case, role))
        except Exception as failure:
            found.setdefault(*describe(failure, case, role))

    shared = real_ids(api)
    for operation in operations:
        closing = operation.path.endswith(CLOSING)
        choices = real_ids(api) if closing else shared
        names = {p.name for p in operation.path_parameters}

        def real(choice: dict[str, Any], names: set[str] = names) -> dict[str, Any] | None:
            return {k: v for k, v in choice.items() if k in names} or None

        for role, explicit in EXPLICIT.get(operation.label, []):
            headers = bearer(api.tokens[role]) if role else None
            for choice in (real_ids(api) if closing else choices) if names else [{}]:
                call(
                    operation.Case(path_parameters=real(choice), headers=headers, **explicit), role
                )

        has_input = bool(names or list(operation.query) or list(operation.body))
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for mode in modes if has_input else modes[:1]:

            def cases(drawn: tuple[Any, ...], operation: Any = operation, mode: Any = mode) -> Any:
                role, choice = drawn
                strategy = operation.as_strategy(
                    generation_mode=mode,
                    headers=bearer(api.tokens[role]) if role else None,
                    path_parameters=real(choice) if choice else None,
                )
                return strategy.map(lambda case: (role, case))

            drawn = st.tuples(
                st.sampled_from([*ROLES, None]), st.one_of(st.none(), st.sampled_from(choices))
            )

            @settings(FUZZ, max_examples=FEWER.get(operation.label, FUZZ.max_examples))
            @given(pair=drawn.flatmap(cases))
            def fuzz(pair: tuple[str | None, Any]) -> None:
                call(pair[1], pair[0])

            fuzz()
        if operation.method.upper() == "DELETE":  # log out, revoke: renew what was revoked
            for username in ROLES:
                if api.get(username, "/me").status_code == 401:
                    api.tokens[username] = login(api.client, username)

    if found:
        pytest.fail("schemathesis found:\n" + "\n".join(sorted(found.values())), pytrace=False)


# --- the document -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The OpenAPI document, which is the same whatever the database."""
    url = f"sqlite+pysqlite:///{tmp_path_factory.mktemp('openapi') / 'cartnet.db'}"
    ctx = ServiceContext.open(
        ServiceSettings(database_url=url, patient_key=new_key(), signing_key=new_key())
    )
    yield create_app(ctx).openapi()
    ctx.close()


def operations_of(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


PUBLIC = {
    ("GET", "/healthz"),
    ("POST", "/api/v1/auth/tokens"),
    ("POST", "/api/v1/auth/enrolment"),
    ("POST", "/api/v1/auth/password"),
}
"""Operations without a bearer token: a password or a one-time enrolment token instead."""
ANY_ROLE = {("GET", "/api/v1/me"), ("DELETE", "/api/v1/auth/tokens/current")}
"""Operations every authenticated user may call: they cannot answer 403."""


def test_the_document_is_openapi_3_1_with_bearer_auth_and_problems(
    document: dict[str, Any],
) -> None:
    """Clients and schemathesis read 3.1 semantics; the Problem schema is RFC 9457's."""
    assert document["openapi"].startswith("3.1.")
    schemes = document["components"]["securitySchemes"].values()
    assert [s["scheme"] for s in schemes if s["type"] == "http"] == ["bearer"]
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "field", "errors"} <= set(
        problem["properties"]
    )
    assert {"title", "status", "detail"} <= set(problem["required"])
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_operation_documents_its_success_and_its_errors(document: dict[str, Any]) -> None:
    """A client generated from the document must know every answer it can get: the 2xx
    with its schema, and 400/401/403/404/409/413/422 as problem details where they occur."""
    gaps: list[str] = []
    for method, path, operation in operations_of(document):
        label = f"{method} {path}"
        responses = operation["responses"]
        needed: dict[str, str] = {}
        if not (operation.get("summary") or operation.get("description")):
            gaps.append(f"{label}: neither summary nor description")
        successes = [status for status in responses if status.startswith("2")]
        if len(successes) != 1:
            gaps.append(f"{label}: expected one 2xx response, got {successes}")
        for status in successes:
            content = responses[status].get("content", {})
            if status == "204":
                if content:
                    gaps.append(f"{label}: 204 with content {sorted(content)}")
            elif "application/json" in content:
                if not content["application/json"].get("schema"):
                    gaps.append(f"{label}: {status} application/json without a schema")
            elif not content:
                gaps.append(f"{label}: {status} documents no content")
        secured = (method, path) not in PUBLIC
        if secured != bool(operation.get("security")):
            gaps.append(f"{label}: security is {operation.get('security')!r}")
        if secured or path.startswith("/api/v1/auth/"):
            needed["401"] = "a token or password refused"
        if secured and (method, path) not in ANY_ROLE:
            needed["403"] = "a role that may not"
        if "{" in path:
            needed["404"] = "an id that does not exist"
        if operation.get("parameters") or operation.get("requestBody"):
            needed["422"] = "a parameter or body field out of schema"
        if operation.get("requestBody"):
            needed["400"] = "a body that does not parse"
            needed["413"] = "a body over the size limit"
        if method == "POST" and (path.startswith("/api/v1/orders/") or path == "/api/v1/users"):
            needed["409"] = "a state or uniqueness conflict"
        gaps += [f"{label}: no {s} ({why})" for s, why in needed.items() if s not in responses]
        for status, response in responses.items():
            schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
            if status[0] in "45" and schema.get("$ref") != PROBLEM_REF:
                gaps.append(f"{label}: {status} is not documented as {PROBLEM_JSON} Problem")
    assert not gaps, "\n".join(gaps)


def test_error_responses_claim_no_other_media_type(document: dict[str, Any]) -> None:
    """Errors are always sent as application/problem+json; a document that also offers
    application/json for them tells generated clients to expect what never comes."""
    wrong = sorted(
        f"{method} {path} {status}: {sorted(set(response.get('content', {})) - {PROBLEM_JSON})}"
        for method, path, operation in operations_of(document)
        for status, response in operation["responses"].items()
        if status[0] in "45" and set(response.get("content", {})) - {PROBLEM_JSON}
    )
    assert not wrong, f"{len(wrong)} error responses document other media types, e.g.:\n" + (
        "\n".join(wrong[:8])
    )


# --- bad input: problem details, nothing written ----------------------------------------

LIMIT = 4096
"""settings.max_upload_bytes for these tests (the default is 2,000,000)."""
WRITTEN = ("orders", "audit_entries", "custody_events", "temperature_logs", "order_exceptions")
POSTGRES_URL = os.environ.get("CARTNET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


class Small:
    """The API with a 4 KiB body limit, a coordinator and a logistics user."""

    def __init__(self, url: str) -> None:
        self.ctx = ServiceContext.open(
            ServiceSettings(
                database_url=url,
                patient_key=new_key(),
                signing_key=new_key(),
                max_upload_bytes=LIMIT,
            ),
            migrate=False,
        )
        for username, role, center in [
            ("coordinator", Role.CENTER_COORDINATOR, "dana-farber"),
            ("logistics", Role.LOGISTICS, None),
        ]:
            accounts.create_user(
                self.ctx,
                accounts.SYSTEM,
                NewUser(
                    username=username,
                    printed_name=username.title(),
                    password=PASSWORD,
                    role=role,
                    center=center,
                ),
            )
        self.client = TestClient(create_app(self.ctx), raise_server_exceptions=False)
        self.tokens = {name: login(self.client, name) for name in ("coordinator", "logistics")}

    def post(self, user: str, path: str, json: Any = None, **kw: Any) -> Any:
        headers = {**bearer(self.tokens[user]), **kw.pop("headers", {})}
        return self.client.post("/api/v1" + path, json=json, headers=headers, **kw)

    def get(self, user: str, path: str) -> Any:
        return self.client.get("/api/v1" + path, headers=bearer(self.tokens[user]))

    def sign(self, user: str) -> list[dict[str, str]]:
        return [{"username": user, "password": PASSWORD}]

    def enroll(self) -> dict[str, Any]:
        response = self.post("coordinator", "/orders", new_order())
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def book_first(self, order_id: str) -> None:
        offer = self.get("coordinator", f"/orders/{order_id}/offers").json()["offers"][0]
        body = {"site": offer["site"], "start": offer["start"]}
        response = self.post("coordinator", f"/orders/{order_id}/booking", body)
        assert response.status_code == 200, response.text

    def counts(self) -> dict[str, int]:
        with self.ctx.engine.connect() as connection:
            return {t: connection.scalar(text(f"SELECT COUNT(*) FROM {t}")) for t in WRITTEN}


@pytest.fixture(scope="module", params=BACKENDS)
def small(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Small]:
    """One database per backend for all the bad-input tests: each checks that it wrote
    nothing, so they can share it (and its users, whose password hashes are slow)."""
    if request.param == "sqlite":
        yield from _small(f"sqlite+pysqlite:///{tmp_path_factory.mktemp('small') / 'cartnet.db'}")
        return
    assert POSTGRES_URL is not None
    schema = f"cartnet_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield from _small(url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _small(url: str) -> Iterator[Small]:
    upgrade(url)
    result = Small(url)
    try:
        yield result
    finally:
        result.client.close()
        result.ctx.close()


@pytest.fixture(scope="module")
def shipment(small: Small) -> dict[str, Any]:
    return collected_order(small)


def assert_problem(response: Any, status: int, field: str | set[str]) -> dict[str, Any]:
    """An RFC 9457 problem with this status that names the field at fault."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem), problem
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem.get("field") in ({field} if isinstance(field, str) else field), problem
    return problem


PATIENT = new_order()["patient"]
BAD_ORDERS = [
    pytest.param(
        {"content": b'{"product": "tisagenlecleucel", "earliest_apheresis": '},
        400,
        "body",
        id="malformed-json",
    ),
    pytest.param(
        {"json": new_order(earliest_apheresis=["2026-12-01"])},
        422,
        "body.earliest_apheresis",
        id="wrong-type",
    ),
    pytest.param(
        {"json": new_order(patient={**PATIENT, "date_of_birth": True})},
        422,
        "body.patient.date_of_birth",
        id="wrong-type-nested",
    ),
    pytest.param({"json": new_order(colour="red")}, 422, "body.colour", id="unknown-field"),
    pytest.param(
        {"json": new_order(patient={**PATIENT, "shoe_size": 42})},
        422,
        "body.patient.shoe_size",
        id="unknown-field-nested",
    ),
    pytest.param(
        {"json": new_order(earliest_apheresis="2300-01-01")},
        422,
        "body.earliest_apheresis",
        id="date-after-2199",
    ),
    pytest.param(
        {"json": new_order(earliest_apheresis="2026-02-30")},
        422,
        "body.earliest_apheresis",
        id="no-such-day",
    ),
    pytest.param(
        {"json": new_order(patient={**PATIENT, "date_of_birth": "1850-01-01"})},
        422,
        "body.patient.date_of_birth",
        id="born-before-1880",
    ),
    pytest.param(
        {"json": new_order(earliest_apheresis="2001-01-01")},
        422,
        {"earliest_apheresis", "body.earliest_apheresis"},
        id="date-in-the-past",
    ),
    pytest.param(
        {"content": b'{"product": "tisagenlecleucel"}' + b" " * LIMIT},
        413,
        "body",
        id="oversized",
    ),
]


@pytest.mark.parametrize(("request_kw", "status", "field"), BAD_ORDERS)
def test_a_bad_order_is_a_problem_naming_the_field_and_writes_nothing(
    small: Small, request_kw: dict[str, Any], status: int, field: str | set[str]
) -> None:
    """Each kind of bad input the issue lists, on the enrolment endpoint."""
    before = small.counts()
    headers = {"content-type": "application/json"} if "content" in request_kw else {}
    response = small.post("coordinator", "/orders", headers=headers, **request_kw)
    assert_problem(response, status, field)
    assert small.counts() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature_c": "cold"}, "body.temperature_c"),
        ({"temperature_c": -300.0}, "body.temperature_c"),
        ({"at": "2026-03-02T14:05:00"}, "body.at"),
        ({"step": "teleport"}, "body.step"),
        ({"signatures": [{"username": "coordinator"}]}, "body.signatures.0.password"),
    ],
    ids=["wrong-type", "below-absolute-zero", "no-utc-offset", "unknown-step", "nested-list"],
)
def test_a_bad_custody_event_names_the_field_and_writes_nothing(
    small: Small, shipment: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    """Bad values inside a handoff name the field, down into lists; nothing is recorded."""
    before = small.counts()
    body = {
        "step": "receipt_at_site",
        "scanned": "&/" + shipment["coi"],
        "organisation": "x",
        "place": "y",
        "at": now(),
        "temperature_c": -150.0,
        **change,
    }
    response = small.post("coordinator", f"/orders/{shipment['order_id']}/custody-events", body)
    assert_problem(response, 422, field)
    assert small.counts() == before


def chunks(data: bytes, size: int = 1024) -> Iterator[bytes]:
    """The body as a generator: the client sends it chunked, with no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_an_oversized_body_sent_in_chunks_is_refused_with_413(small: Small) -> None:
    """The limit must hold without a Content-Length too (chunked transfer, as any HTTP/1.1
    client may send): a limit read from a header only stops clients that declare it."""
    before = small.counts()
    order = json.dumps(new_order()).encode()
    padded = order[:1] + b" " * LIMIT + order[1:]
    response = small.post(
        "coordinator",
        "/orders",
        content=chunks(padded),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413, "body")
    assert small.counts() == before


GOOD_LOG = "timestamp,temperature_c\n2026-03-02T14:00:00Z,-150.0\n2026-03-02T14:05:00Z,-151.5\n"
BAD_LOGS = [
    pytest.param("time,temp\n2026-03-02T14:00:00Z,-150.0\n", 1, id="bad-header"),
    pytest.param(GOOD_LOG + "yesterday,-150.0\n", 4, id="bad-timestamp"),
    pytest.param(GOOD_LOG + "2026-03-02T14:10:00Z,cold\n", 4, id="bad-temperature"),
    pytest.param(GOOD_LOG + "2026-03-02T14:10:00Z\n", 4, id="missing-column"),
    pytest.param(GOOD_LOG + "2026-03-02T13:00:00Z,-150.0\n", 4, id="time-goes-back"),
]


def upload(small: Small, shipment: dict[str, Any], content: Any) -> Any:
    return small.post(
        "logistics",
        f"/orders/{shipment['order_id']}/shipments/{shipment['shipment_id']}/temperature-log",
        content=content,
        headers={"content-type": "text/csv"},
    )


@pytest.mark.parametrize(("csv", "line"), BAD_LOGS)
def test_a_malformed_temperature_log_names_the_line_and_writes_nothing(
    small: Small, shipment: dict[str, Any], csv: str, line: int
) -> None:
    """The logger file is refused whole: no log stored, no excursion raised."""
    before = small.counts()
    problem = assert_problem(upload(small, shipment, csv.encode()), 422, f"body.line[{line}]")
    assert f"line {line}" in problem["detail"]
    assert small.counts() == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_temperature_log_is_refused_with_413(
    small: Small, shipment: dict[str, Any], chunked: bool
) -> None:
    """The upload limit is settings.max_upload_bytes, however the body is sent."""
    before = small.counts()
    rows = "".join(f"2026-03-02T{h:02d}:{m:02d}:00Z,-150.0\n" for h in range(3) for m in range(60))
    data = ("timestamp,temperature_c\n" + rows).encode()
    assert len(data) > LIMIT
    assert_problem(upload(small, shipment, chunks(data) if chunked else data), 413, "body")
    assert small.counts() == before
