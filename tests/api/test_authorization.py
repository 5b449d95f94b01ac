"""The authorization matrix: every endpoint, as every role, anonymously, and with a dead token.

The expectations are written from the issue's roles and the lifecycle table
(``cartnet.ledger.lifecycle``), not read off the code: center coordinators see only their
own center's orders and are the only ones who see patient identity; site operators and
QA only orders at their site; logistics handles shipments; planners book and read
aggregates; administrators manage accounts and see no order data. An order of another
tenant is invisible (404), so its id cannot be probed.

Outcomes: allowed (2xx, or a 409/422 the service gives after its authority check: a
state conflict, a signature that is not the caller's own, a reason code that does not
apply), forbidden (403), not found (404: another tenant's order, whose ids answer like
ids that do not exist), and 401 with ``WWW-Authenticate: Bearer`` for no, an expired
or a revoked token.

One world per database (module scope): users of every role, an order in QC at
morris-plains with a shipment and an open exception, and a delivered order. A write a
role may make either fails after the authority check or adds a record nothing else
depends on (a QC result, a logger file, a new order), so the world's orders keep their
states and the tests may run in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from tests.conftest import CHEAP_HASHER

from cartnet.api import create_app
from cartnet.ledger.roles import Role
from cartnet.service import accounts, security
from cartnet.service.context import ServiceContext
from cartnet.service.credentials import token_key
from cartnet.service.schemas import NewUser
from cartnet.service.security import token_hash
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.store import upgrade
from cartnet.store.tables import TokenRow

POSTGRES_URL = os.environ.get("CARTNET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]

PASSWORD = "correct horse battery"
CENTER = "dana-farber"
SITE = "morris-plains"
V1 = "/api/v1"

# --- who calls -------------------------------------------------------------------------

COORDINATOR = "coordinator"
OPERATOR = "operator"
QA = "qa"
LOGISTICS = "logistics"
PLANNER = "planner"
ADMIN = "admin"

USERS: dict[str, tuple[Role, str | None, str | None, str]] = {
    COORDINATOR: (Role.CENTER_COORDINATOR, CENTER, None, "Carla Coordinator"),
    "other_coordinator": (Role.CENTER_COORDINATOR, "mgh-boston", None, "Oscar Other"),
    OPERATOR: (Role.SITE_OPERATOR, None, SITE, "Sam Operator"),
    "other_operator": (Role.SITE_OPERATOR, None, "leipzig", "Lars Leipzig"),
    QA: (Role.QA, None, SITE, "Quinn Assurance"),
    "other_qa": (Role.QA, None, "leipzig", "Lena Leipzig"),
    LOGISTICS: (Role.LOGISTICS, None, None, "Lee Logistics"),
    PLANNER: (Role.PLANNER, None, None, "Pat Planner"),
    ADMIN: (Role.ADMIN, None, None, "Ada Admin"),
    "coordinator2": (Role.CENTER_COORDINATOR, CENTER, None, "Cora Second"),
    "bystander": (Role.PLANNER, None, None, "Bea Bystander"),
}
"""The orders of the world are dana-farber's, booked at morris-plains; the ``other_``
users hold the same role for another tenant. coordinator2 only co-signs; the bystander
only has its tokens revoked."""

OTHER_TENANT = {
    "other_coordinator": COORDINATOR,
    "other_operator": OPERATOR,
    "other_qa": QA,
}
"""A user of another tenant and the user of the order's own tenant with the same role."""

ANONYMOUS = "anonymous"
EXPIRED = "expired-token"
REVOKED = "revoked-token"
UNAUTHENTICATED = (ANONYMOUS, EXPIRED, REVOKED)
ROLE_CALLERS = (
    COORDINATOR,
    "other_coordinator",
    OPERATOR,
    "other_operator",
    QA,
    "other_qa",
    LOGISTICS,
    PLANNER,
    ADMIN,
)
CALLERS = (*UNAUTHENTICATED, *ROLE_CALLERS)

EVERYONE = frozenset({COORDINATOR, OPERATOR, QA, LOGISTICS, PLANNER, ADMIN})
ORDER_READERS = EVERYONE - {ADMIN}
"""Administrators manage accounts: no order data."""
SEES_THE_ORDERS = frozenset({COORDINATOR, OPERATOR, QA, LOGISTICS, PLANNER})
"""Callers to whom the world's orders are visible (own center, own site, network-wide)."""

PATIENTS = {
    "main": {
        "given_name": "Marisol",
        "family_name": "Quetzalbrand",
        "date_of_birth": "1961-04-12",
        "hospital_number": "DF-7730419",
    },
    "delivered": {
        "given_name": "Theodora",
        "family_name": "Winterkorn",
        "date_of_birth": "1974-09-30",
        "hospital_number": "DF-5521873",
    },
}
IDENTIFYING = [
    value
    for patient in PATIENTS.values()
    for key, value in patient.items()
    if key in ("given_name", "family_name", "hospital_number")
]
"""What no one but the center's own coordinator may ever receive."""

NOT_MY_SIGNATURE = [{"username": "nobody-signs-here", "password": "not the password"}]
"""Passes validation; a role that may take a signed step gets 422 (first signature must
be the caller's own) after the authority check, so nothing is signed."""
UNKNOWN_ORDER = "ord_00000000000000000000"
UNKNOWN_COSIGNATURE = "csr_00000000000000000000"
"""No request to co-sign exists: signing or withdrawing it is refused alike (403) for all."""
OPERATOR_SIGNS = {"username": OPERATOR, "password": PASSWORD}


def now() -> str:
    return datetime.now(UTC).isoformat()


# --- the world -------------------------------------------------------------------------


@dataclass
class World:
    """A running API with one token per caller and the records path parameters need."""

    client: TestClient
    ctx: ServiceContext
    tokens: dict[str, str] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    shipment: str = ""
    shipment_limits: tuple[float | None, float | None] = (None, None)
    exception: int = 0
    bystander: str = ""

    def headers(self, caller: str) -> dict[str, str]:
        if caller == ANONYMOUS:
            return {}
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    def get(self, user: str, path: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(V1 + path, headers=self.headers(user), **kw)
        return response

    def post(self, user: str, path: str, body: Any = None) -> httpx.Response:
        response: httpx.Response = self.client.post(
            V1 + path, json=body, headers=self.headers(user)
        )
        return response

    def log_in(self, username: str) -> str:
        response = self.client.post(
            V1 + "/auth/tokens", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["access_token"])

    def step(self, user: str, order: str, step: str, sign: bool = True, **extra: Any) -> Any:
        coi = self.orders[order]["coi"]
        body = {
            "step": step,
            "scanned": "&/" + coi,
            "organisation": "matrix",
            "place": "bench 1",
            "at": now(),
            "temperature_c": -180.0,
            **({"signatures": [{"username": user, "password": PASSWORD}]} if sign else {}),
            **extra,
        }
        return self.post(user, f"/orders/{self.orders[order]['id']}/custody-events", body)


@contextmanager
def _database(backend: str, tmp: Path, admin: Engine | None) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+pysqlite:///{tmp / 'cartnet.db'}"
        return
    assert admin is not None and POSTGRES_URL is not None
    schema = f"cartnet_authz_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: Engine | None,
) -> Iterator[World]:
    """Built once per database: the matrix only reads it or is refused before writing.

    Passwords are hashed with cheap argon2 parameters here: the matrix checks some 100
    passwords per database, and argon2's cost is not what it tests.
    """
    with (
        pytest.MonkeyPatch.context() as patch,
        _database(request.param, tmp_path_factory.mktemp("authz"), postgres_admin) as url,
    ):
        patch.setattr(security, "_hasher", CHEAP_HASHER)
        upgrade(url)
        settings = ServiceSettings(database_url=url, patient_key=new_key(), signing_key=new_key())
        ctx = ServiceContext.open(settings, migrate=False)
        try:
            users = {
                name: accounts.create_user(
                    ctx,
                    accounts.SYSTEM,
                    NewUser(
                        username=name,
                        printed_name=printed,
                        password=PASSWORD,
                        role=role,
                        center=center,
                        site=site,
                    ),
                )
                for name, (role, center, site, printed) in USERS.items()
            }
            with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
                w = World(client, ctx, bystander=users["bystander"].user.id)
                for name in ROLE_CALLERS:
                    w.tokens[name] = w.log_in(name)
                _dead_tokens(w)
                _orders(w)
                yield w
        finally:
            ctx.close()


def _dead_tokens(w: World) -> None:
    """The coordinator's tokens that no longer work: one expired, one revoked (logout)."""
    w.tokens[EXPIRED] = w.log_in(COORDINATOR)
    key = token_key(w.ctx)
    with w.ctx.sessions() as session, session.begin():
        # Expired by time passing (the audit trail's clock only moves forward).
        token = session.get(TokenRow, token_hash(w.tokens[EXPIRED], key))
        assert token is not None
        token.expires_at = datetime.now(UTC) - timedelta(hours=1)
    w.tokens[REVOKED] = w.log_in(COORDINATOR)
    out = w.client.delete(V1 + "/auth/tokens/current", headers=w.headers(REVOKED))
    assert out.status_code == 204, out.text
    with w.ctx.sessions() as session:
        expired = session.get(TokenRow, token_hash(w.tokens[EXPIRED], key))
        revoked = session.get(TokenRow, token_hash(w.tokens[REVOKED], key))
        assert expired is not None and expired.revoked_at is None
        assert expired.expires_at < datetime.now(UTC)
        assert revoked is not None and revoked.revoked_at is not None
        assert revoked.expires_at > datetime.now(UTC)


def _orders(w: World) -> None:
    """The main order in QC with a shipment and an open exception; a delivered order."""
    earliest = (w.ctx.today() + timedelta(days=3)).isoformat()
    for key, patient in PATIENTS.items():
        order = w.post(
            COORDINATOR,
            "/orders",
            {"product": "tisagenlecleucel", "earliest_apheresis": earliest, "patient": patient},
        )
        assert order.status_code == 201, order.text
        oid = order.json()["id"]
        offers = w.get(COORDINATOR, f"/orders/{oid}/offers", params={"k": 20, "per_site": 3})
        assert offers.status_code == 200, offers.text
        chain = next(o for o in offers.json()["offers"] if o["site"] == SITE)
        booked = w.post(
            COORDINATOR, f"/orders/{oid}/booking", {"site": SITE, "start": chain["start"]}
        )
        assert booked.status_code == 200, booked.text
        w.orders[key] = booked.json()

    def ok(response: httpx.Response, status: int = 201) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    main, delivered = w.orders["main"]["id"], w.orders["delivered"]["id"]
    ok(w.step(COORDINATOR, "main", "collection"))
    shipment = ok(
        w.post(
            LOGISTICS,
            f"/orders/{main}/shipments",
            {"direction": "to_site", "courier": "Cryoport", "tracking": "CP-1"},
        )
    )
    w.shipment = shipment["id"]
    w.shipment_limits = (shipment["low_c"], shipment["high_c"])
    ok(w.step(LOGISTICS, "main", "handover_to_courier"))
    ok(w.step(LOGISTICS, "main", "courier_transfer", sign=False))
    wrong_bag = w.step(
        OPERATOR, "main", "receipt_at_site", scanned="&/" + w.orders["delivered"]["coi"]
    )
    assert wrong_bag.status_code == 409, wrong_bag.text
    ok(w.step(OPERATOR, "main", "receipt_at_site"))
    ok(w.step(OPERATOR, "main", "start_manufacturing"))
    done = w.post(
        OPERATOR,
        f"/orders/{main}/events",
        {"event": "complete_manufacturing", "signatures": [OPERATOR_SIGNS]},
    )
    w.orders["main"] = ok(done, 200)["order"]
    assert w.orders["main"]["state"] == "in_qc"
    (exception,) = ok(w.get(QA, f"/orders/{main}/exceptions"), 200)
    w.exception = exception["id"]

    ok(w.step(COORDINATOR, "delivered", "collection"))
    ok(w.step(COORDINATOR, "delivered", "handover_to_courier"))
    ok(w.step(OPERATOR, "delivered", "receipt_at_site"))
    ok(w.step(OPERATOR, "delivered", "start_manufacturing"))
    ok(
        w.post(
            OPERATOR,
            f"/orders/{delivered}/events",
            {"event": "complete_manufacturing", "signatures": [OPERATOR_SIGNS]},
        ),
        200,
    )
    ok(w.post(QA, f"/orders/{delivered}/qc-results", qc_result()))
    release = {
        "scanned": "&/" + w.orders["delivered"]["coi"],
        "place": "QA office",
        "at": now(),
        "signatures": [{"username": QA, "password": PASSWORD}],
    }
    ok(w.post(QA, f"/orders/{delivered}/release", release), 200)
    ok(w.step(OPERATOR, "delivered", "handover_to_courier_return"))
    w.orders["delivered"] = ok(w.step(COORDINATOR, "delivered", "receipt_at_center"))["order"]
    assert w.orders["delivered"]["state"] == "delivered"


def qc_result() -> dict[str, Any]:
    return {
        "test": "sterility",
        "result": "no growth",
        "specification": "no growth",
        "passed": True,
        "tested_at": now(),
    }


# --- the matrix ------------------------------------------------------------------------

Body = Callable[[World, str], Any]


@dataclass(frozen=True)
class Case:
    """One endpoint: who may call it (users of the order's own tenant), and a valid call.

    ``allow`` names roles by their own-tenant user; the ``other_*`` users get the same
    answer, except that an order of another tenant is invisible (404).
    """

    method: str
    path: str
    allow: frozenset[str]
    why: str
    body: Body | None = None
    csv: Body | None = None
    query: Mapping[str, str | int] = field(default_factory=dict)
    order: str = "main"
    public: bool = False
    fresh_token: bool = False

    @property
    def order_scoped(self) -> bool:
        return "{order_id}" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def case(method: str, path: str, allow: frozenset[str], why: str, **kw: Any) -> Case:
    prefix = "" if path == "/healthz" else V1
    return Case(method, prefix + path, frozenset(allow), why, **kw)


def _login_body(w: World, caller: str) -> Any:
    return {"username": COORDINATOR if caller in UNAUTHENTICATED else caller, "password": PASSWORD}


def _enrolment_body(w: World, caller: str) -> Any:
    made = accounts.create_user(
        w.ctx,
        accounts.SYSTEM,
        NewUser(username=f"enrol-{caller}", printed_name=f"Enrol {caller}", role=Role.PLANNER),
    )
    return {"token": made.enrolment_token, "password": PASSWORD}


def _scan(order: str, **extra: Any) -> Body:
    def body(w: World, caller: str) -> Any:
        return {
            "scanned": "&/" + w.orders[order]["coi"],
            "place": "matrix bench",
            "at": now(),
            "signatures": NOT_MY_SIGNATURE,
            **extra,
        }

    return body


def _temperature_log(w: World, caller: str) -> Any:
    """A logger file that stays inside the shipment's limits: no exception is raised."""
    low, high = w.shipment_limits
    if low is not None and high is not None:
        inside = (low + high) / 2
    else:
        inside = high - 10 if high is not None else (low or 0) + 10
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines = [f"{(start + timedelta(minutes=m)).isoformat()},{inside:.1f}" for m in (0, 30, 60)]
    return "timestamp,temperature_c\n" + "\n".join(lines) + "\n"


def _later(w: World, days: int) -> str:
    return (w.ctx.today() + timedelta(days=days)).isoformat()


CASES: tuple[Case, ...] = (
    case("GET", "/healthz", EVERYONE, "liveness needs no token", public=True),
    case("GET", "/cosignatures", EVERYONE, "anyone sees what awaits their co-signature"),
    case(
        "POST",
        "/cosignatures/{request_id}/sign",
        frozenset(),
        "an unknown request: refused alike, whoever asks",
        body=lambda w, c: {"password": PASSWORD, "meaning": "responsibility"},
    ),
    case(
        "POST",
        "/cosignatures/{request_id}/withdraw",
        frozenset(),
        "an unknown request: refused alike, whoever asks",
    ),
    case(
        "POST",
        "/auth/tokens",
        EVERYONE,
        "logging in needs no token",
        public=True,
        body=_login_body,
    ),
    case(
        "DELETE",
        "/auth/tokens/current",
        EVERYONE,
        "anyone logged in may log out",
        fresh_token=True,
    ),
    case("GET", "/me", EVERYONE, "anyone logged in may see who they are"),
    case(
        "POST",
        "/users",
        frozenset({ADMIN}),
        "admin: accounts",
        body=lambda w, c: {
            "username": "matrix-newcomer",
            "printed_name": "Nina Newcomer",
            "role": "planner",
        },
    ),
    case("GET", "/users", frozenset({ADMIN}), "admin: accounts"),
    case("DELETE", "/users/{user_id}/tokens", frozenset({ADMIN}), "admin: accounts"),
    case(
        "PATCH",
        "/users/{user_id}",
        frozenset({ADMIN}),
        "admin: accounts",
        body=lambda w, c: {"printed_name": "Bea Bystander", "reason": "matrix"},
    ),
    case("POST", "/users/{user_id}/approval", frozenset({ADMIN}), "admin: second approval"),
    case("POST", "/users/{user_id}/password-reset", frozenset({ADMIN}), "admin: accounts"),
    case("DELETE", "/users/{user_id}/lockout", frozenset({ADMIN}), "admin: accounts"),
    case(
        "POST",
        "/auth/enrolment",
        EVERYONE,
        "enrolling needs the one-time token, not a login",
        public=True,
        body=_enrolment_body,
    ),
    case(
        "POST",
        "/auth/password",
        EVERYONE,
        "changing one's password needs the old one, not a token",
        public=True,
        body=lambda w, c: {
            "username": _login_body(w, c)["username"],
            "old_password": PASSWORD,
            "new_password": PASSWORD,
        },
    ),
    case(
        "POST",
        "/orders",
        frozenset({COORDINATOR}),
        "coordinators enrol their center's patients",
        body=lambda w, c: {
            "product": "tisagenlecleucel",
            "earliest_apheresis": _later(w, 5),
            "patient": {
                "given_name": "Erika",
                "family_name": "Beispielperson",
                "date_of_birth": "1980-01-01",
                "hospital_number": "X-1",
            },
        },
    ),
    case(
        "GET",
        "/orders",
        ORDER_READERS,
        "every order role lists the orders of its tenant; admin sees no order data",
        query={"limit": 200},
    ),
    case("GET", "/orders/{order_id}", ORDER_READERS, "order roles read orders of their tenant"),
    case(
        "GET",
        "/orders/{order_id}/patient",
        frozenset({COORDINATOR}),
        "only the order's own center sees patient identity",
    ),
    case(
        "GET",
        "/orders/{order_id}/offers",
        frozenset({COORDINATOR, PLANNER}),
        "lifecycle book_slot: center_coordinator, planner",
    ),
    case(
        "POST",
        "/orders/{order_id}/booking",
        frozenset({COORDINATOR, PLANNER}),
        "lifecycle book_slot: center_coordinator, planner (the order is in QC: 409)",
        body=lambda w, c: {"site": SITE, "start": _later(w, 60)},
    ),
    case(
        "POST",
        "/orders/{order_id}/reschedule",
        frozenset({COORDINATOR, PLANNER}),
        "rebooking is the bookers' (the order is in QC: 409)",
        body=lambda w, c: {
            "site": SITE,
            "start": _later(w, 60),
            "reason_code": "clinical_decision",
        },
    ),
    case(
        "POST",
        "/orders/{order_id}/cancel",
        frozenset({COORDINATOR, PLANNER}),
        "lifecycle cancel: center_coordinator, planner (a reason that does not apply: 422)",
        body=lambda w, c: {"reason_code": "expanded_access"},
    ),
    case(
        "POST",
        "/orders/{order_id}/patient-lost",
        frozenset({COORDINATOR}),
        "lifecycle record_patient_lost: center_coordinator (a reason that does not apply)",
        body=lambda w, c: {"reason_code": "expanded_access"},
    ),
    case(
        "POST",
        "/orders/{order_id}/events",
        frozenset({QA}),
        "lifecycle report_oos in in_qc: qa (signature not the caller's: 422)",
        body=lambda w, c: {"event": "report_oos", "signatures": NOT_MY_SIGNATURE},
    ),
    case(
        "POST",
        "/orders/{order_id}/custody-events",
        frozenset({QA}),
        "lifecycle release in in_qc: qa",
        body=_scan("main", step="release", organisation="matrix"),
    ),
    case("GET", "/orders/{order_id}/custody-events", ORDER_READERS, "order data, by tenant"),
    case(
        "POST",
        "/orders/{order_id}/qc-results",
        frozenset({OPERATOR, QA}),
        "QC results come from the site that made the batch",
        body=lambda w, c: qc_result(),
    ),
    case("GET", "/orders/{order_id}/qc-results", ORDER_READERS, "order data, by tenant"),
    case(
        "POST",
        "/orders/{order_id}/release",
        frozenset({QA}),
        "QA releases (lifecycle release: qa)",
        body=_scan("main"),
    ),
    case(
        "POST",
        "/orders/{order_id}/infusion",
        frozenset({COORDINATOR}),
        "lifecycle infuse in delivered: center_coordinator",
        body=_scan("delivered"),
        order="delivered",
    ),
    case(
        "POST",
        "/orders/{order_id}/shipments",
        frozenset({OPERATOR, LOGISTICS}),
        "lifecycle ship_to_center: site_operator, logistics (the order is in QC: 409)",
        body=lambda w, c: {"direction": "to_center", "courier": "Cryoport", "tracking": "CP-9"},
    ),
    case("GET", "/orders/{order_id}/shipments", ORDER_READERS, "order data, by tenant"),
    case(
        "POST",
        "/orders/{order_id}/shipments/{shipment_id}/temperature-log",
        frozenset({COORDINATOR, LOGISTICS, QA}),
        "the to_site shipment's shippers (lifecycle ship_to_site) and QA, who reviews",
        csv=_temperature_log,
    ),
    case("GET", "/orders/{order_id}/exceptions", ORDER_READERS, "order data, by tenant"),
    case(
        "POST",
        "/orders/{order_id}/exceptions/{exception_id}/close",
        frozenset({QA}),
        "QA closes exceptions after review",
        body=lambda w, c: {"reason_code": "deviation", "reason_text": "right bag found"},
    ),
    case("GET", "/orders/{order_id}/audit", ORDER_READERS, "order data, by tenant"),
    case(
        "GET",
        "/orders/{order_id}/label",
        frozenset({COORDINATOR, OPERATOR, QA, LOGISTICS}),
        "those who handle the bag print its label; planners and admins do not",
    ),
    case("GET", "/network", EVERYONE, "the network is no order data"),
    case(
        "GET",
        "/capacity/{site}",
        EVERYONE,
        "network capacity is no order data",
        query={"days": 7},
    ),
    case(
        "GET",
        "/aggregates",
        frozenset({PLANNER, LOGISTICS}),
        "planners read aggregates; logistics sees every order anyway; admin has no order "
        "data; tenant-scoped roles (coordinator, operator, QA) get no network-wide counts",
    ),
)


class Outcome(Enum):
    ALLOWED = "allowed (2xx, or a 409/422 from past the authority check)"
    UNAUTHENTICATED = "401 with WWW-Authenticate: Bearer"
    FORBIDDEN = "403"
    NOT_FOUND = "404 (another tenant's order is invisible)"
    REFUSED = "403 or 404 (a role that may not, on another tenant's order)"


def expected(c: Case, caller: str) -> Outcome:
    if c.public:
        return Outcome.ALLOWED
    if caller in UNAUTHENTICATED:
        return Outcome.UNAUTHENTICATED
    role = OTHER_TENANT.get(caller, caller)
    allowed = role in c.allow
    if caller in OTHER_TENANT and c.order_scoped:
        return Outcome.NOT_FOUND if allowed else Outcome.REFUSED
    return Outcome.ALLOWED if allowed else Outcome.FORBIDDEN


def call(w: World, c: Case, caller: str, order_id: str | None = None) -> httpx.Response:
    path = c.path.format(
        order_id=order_id or w.orders[c.order]["id"],
        shipment_id=w.shipment,
        exception_id=w.exception,
        request_id=UNKNOWN_COSIGNATURE,
        user_id=w.bystander,
        site=SITE,
    )
    headers = w.headers(caller)
    response: httpx.Response
    if c.csv is not None:
        headers["Content-Type"] = "text/csv"
        content = c.csv(w, caller).encode()
        response = w.client.request(
            c.method, path, headers=headers, content=content, params=c.query
        )
    else:
        body = None if c.body is None else c.body(w, caller)
        response = w.client.request(c.method, path, headers=headers, json=body, params=c.query)
    return response


def is_problem(response: httpx.Response) -> bool:
    media = response.headers.get("content-type", "")
    return media.startswith("application/problem+json") and bool(
        response.json().get("status") == response.status_code
    )


MATRIX = [(c, caller) for c in CASES for caller in CALLERS]


@pytest.mark.parametrize(("c", "caller"), MATRIX, ids=[f"{c} as {who}" for c, who in MATRIX])
def test_authorization(world: World, c: Case, caller: str) -> None:
    """Each endpoint answers each caller as the roles and tenancy say, leaking nothing."""
    outcome = expected(c, caller)
    fresh = c.fresh_token and caller not in UNAUTHENTICATED
    if fresh:
        world.tokens[f"{caller}:fresh"] = world.log_in(caller)
        response = call(world, c, f"{caller}:fresh")
    else:
        response = call(world, c, caller)
    status = response.status_code
    said = f"{c} as {caller}: expected {outcome.value} ({c.why}); got {status}: "
    said += response.text[:400]

    if outcome is Outcome.ALLOWED:
        past_authority = status in (409, 422) and is_problem(response)
        assert status < 300 or past_authority, said
        # a 422 from request validation would come before the role check: not proof
        assert status != 422 or response.json()["title"] != "Invalid request", said
    elif outcome is Outcome.UNAUTHENTICATED:
        assert status == 401 and is_problem(response), said
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), said
    elif outcome is Outcome.FORBIDDEN:
        assert status == 403 and is_problem(response), said
    else:
        wanted = {404} if outcome is Outcome.NOT_FOUND else {403, 404}
        assert status in wanted and is_problem(response), said
        unknown = call(world, c, caller, order_id=UNKNOWN_ORDER)
        assert unknown.status_code == status, (
            f"{said}\nan order that does not exist gives {unknown.status_code}: another "
            "tenant's order ids can be probed"
        )

    if caller != COORDINATOR:
        leaked = [v for v in IDENTIFYING if v.encode() in response.content]
        assert not leaked, f"{c} as {caller} received patient identity {leaked}"
    if fresh:
        me = world.get(f"{caller}:fresh", "/me")
        assert me.status_code == 401, f"{caller}'s token still works after logout: {me.text}"
    if str(c) == f"GET {V1}/orders" and outcome is Outcome.ALLOWED:
        listed = {o["id"] for o in response.json()["items"]}
        for key, order in world.orders.items():
            assert (order["id"] in listed) == (caller in SEES_THE_ORDERS), (
                f"{caller} {'misses' if caller in SEES_THE_ORDERS else 'sees'} the {key} order"
            )


def app_endpoints(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, from its OpenAPI document and its routes."""
    methods = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in methods
    }
    for route in app.routes:
        path, verbs = getattr(route, "path", None), getattr(route, "methods", None)
        if path and verbs:
            found |= {(verb, path) for verb in verbs if verb != "HEAD"}
    return found - {
        (verb, path)
        for verb in ("GET", "HEAD")
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
    }


def test_the_matrix_covers_every_endpoint(world: World) -> None:
    """A new endpoint without a row here fails: its authorization is then untested."""
    app = world.client.app
    assert isinstance(app, FastAPI)
    table = {(c.method, c.path) for c in CASES}
    assert len(table) == len(CASES), "an endpoint has two rows"
    served = app_endpoints(app)
    assert sorted(served - table) == [], "endpoints without a row in the matrix"
    assert sorted(table - served) == [], "rows for endpoints the app does not serve"


def test_reading_patient_identity_is_the_own_centers_and_audited(world: World) -> None:
    """The one way to the patient's name: own coordinator only, each read in the trail."""
    order = world.orders["main"]["id"]

    def reads() -> list[dict[str, Any]]:
        trail = world.get(QA, f"/orders/{order}/audit")
        assert trail.status_code == 200, trail.text
        return [
            e
            for e in trail.json()
            if e["action"] == "read" and e["entity_type"] == "patient_identity"
        ]

    before = reads()
    for user in ("other_coordinator", OPERATOR, QA, LOGISTICS, PLANNER, ADMIN, EXPIRED):
        refused = world.get(user, f"/orders/{order}/patient")
        assert refused.status_code in (401, 403, 404), f"{user}: {refused.text}"
    assert reads() == before, "a refused read left a read entry"

    seen = world.get(COORDINATOR, f"/orders/{order}/patient")
    assert seen.status_code == 200, seen.text
    assert seen.json() == PATIENTS["main"]
    after = reads()
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert entry["entity_id"] == order
    assert entry["actor_name"] == USERS[COORDINATOR][3]
    assert entry["role"] == Role.CENTER_COORDINATOR.value
    assert entry["changes"] == [], "a read entry records who looked, not what they saw"


@pytest.mark.parametrize("cosigner", ["coordinator2", "other_coordinator", "other_qa", "admin"])
def test_a_cosigner_in_the_request_is_refused_and_named_nowhere(
    world: World, cosigner: str
) -> None:
    """Another person's password never travels in my request (issue 13, finding 5): a
    co-signer there is refused alike whoever it is, and the answer names no one
    (finding 10); co-signers sign in their own session (tests/api/test_cosignatures.py)."""
    earliest = (world.ctx.today() + timedelta(days=4)).isoformat()
    patient = {
        "given_name": "Cosmo",
        "family_name": "Signatura",
        "date_of_birth": "1950-05-05",
        "hospital_number": f"DF-{cosigner}",
    }
    enrolled = world.post(
        COORDINATOR,
        "/orders",
        {"product": "tisagenlecleucel", "earliest_apheresis": earliest, "patient": patient},
    )
    assert enrolled.status_code == 201, enrolled.text
    oid = enrolled.json()["id"]
    offer = world.get(COORDINATOR, f"/orders/{oid}/offers").json()["offers"][0]
    booked = world.post(
        COORDINATOR, f"/orders/{oid}/booking", {"site": offer["site"], "start": offer["start"]}
    )
    assert booked.status_code == 200, booked.text

    signed = world.post(
        COORDINATOR,
        f"/orders/{oid}/custody-events",
        {
            "step": "collection",
            "scanned": "&/" + booked.json()["coi"],
            "organisation": "Dana-Farber",
            "place": "apheresis unit",
            "at": now(),
            "signatures": [
                {"username": COORDINATOR, "password": PASSWORD},
                {"username": cosigner, "password": PASSWORD},
            ],
        },
    )
    state = world.get(COORDINATOR, f"/orders/{oid}").json()["state"]
    assert signed.status_code == 422, signed.text
    problem = signed.json()
    assert problem["field"] == "signatures.1" and "own session" in problem["detail"]
    assert USERS[cosigner][3] not in signed.text and cosigner not in problem["detail"]
    assert state == "booked"
