"""Reliability of the running service: a real ``cartnet serve`` on each test database.

Concurrent writers, the race for the last slot and a SIGKILL in the middle of a load
run are properties of the whole stack (uvicorn, its thread pool, the connection pool,
the database's locks and its crash recovery), so they run against a server subprocess
over loopback, not the in-process TestClient. The network (``data/one-slot.yaml``)
has one site with three manufacturing starts every day and a center with plenty of
apheresis capacity, so the manufacturing slot alone decides who gets a chain.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cartnet.ledger.roles import Role
from cartnet.service import accounts
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.store import AuditRepository, make_engine, make_session_factory
from cartnet.store.tables import CustodyEventRow, OrderRow, SlotUsageRow

NETWORK = Path(__file__).resolve().parent / "data" / "one-slot.yaml"
SITE, CENTER, PRODUCT = "solo", "hub", "cell-one"
SLOTS_PER_DAY = 3
"""``lines`` 3 × 7 / (1-day cycle × 7 open days) in one-slot.yaml."""
PASSWORD = "correct horse battery"
COORDINATOR = "hub-coordinator"
"""A name no other test server has: logging in proves the server is this test's."""
CLIENTS = 64
CLI = [sys.executable, "-c", "from cartnet.cli import main; main()"]
START_TIMEOUT_S = 60.0
"""A bound on waiting for /healthz, so a server that never comes up fails the test."""
RACE_CODES = {"slot-taken", "capacity-full"}
"""A loser is refused either by the atomic UPDATE or by the check before it."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(home: Path, keys: dict[str, str]) -> dict[str, str]:
    """The test's environment without any CARTNET_* setting but the keys given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTNET_")}
    env.update(keys)
    env["XDG_DATA_HOME"] = str(home / "xdg-data")
    return env


@dataclass
class Server:
    """``cartnet serve`` as a subprocess on one database; it can be killed and restarted."""

    db: str
    home: Path
    keys: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in self.logs)

    def start(self) -> None:
        """Start on a free port and wait for /healthz; another port if that one was taken."""
        assert self.proc is None or self.proc.poll() is not None
        for _attempt in range(3):
            if self._start_once():
                return
        pytest.fail(f"cartnet serve found no free port:\n{self.log_text()}")

    def _start_once(self) -> bool:
        self.port = free_port()
        log = self.home / f"server-{len(self.logs) + 1}.log"
        self.logs.append(log)
        args = ["serve", "--db", self.db, "--port", str(self.port), "--network", str(NETWORK)]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*CLI, *args, "--log-level", "warning"],
                env=child_env(self.home, self.keys),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                if "address already in use" in log.read_text(errors="replace").lower():
                    return False  # another process took the port after free_port()
                pytest.fail(f"cartnet serve exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cartnet serve did not answer /healthz:\n{self.log_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no pool disposal, no last commit."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.base + "/api/v1", headers=headers, timeout=60)

    def login(self, username: str = COORDINATOR) -> str:
        with self.client() as http:
            response = http.post("/auth/tokens", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return str(response.json()["access_token"])


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[Server]:
    """A started server on a migrated database with a coordinator of the center."""
    keys = {"CARTNET_PATIENT_KEY": new_key(), "CARTNET_SIGNING_KEY": new_key()}
    settings = ServiceSettings(
        database_url=migrated_url,
        network=str(NETWORK),
        patient_key=keys["CARTNET_PATIENT_KEY"],
        signing_key=keys["CARTNET_SIGNING_KEY"],
    )
    ctx = ServiceContext.open(settings, migrate=False)
    try:
        accounts.create_user(
            ctx,
            accounts.SYSTEM,
            NewUser(
                username=COORDINATOR,
                printed_name="Carla Coordinator",
                password=PASSWORD,
                role=Role.CENTER_COORDINATOR,
                center=CENTER,
            ),
        )
    finally:
        ctx.close()
    srv = Server(migrated_url, tmp_path, keys)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def today() -> date:
    return datetime.now(UTC).date()


def enroll(http: httpx.Client, earliest: date) -> httpx.Response:
    return http.post(
        "/orders",
        json={
            "product": PRODUCT,
            "earliest_apheresis": earliest.isoformat(),
            "patient": {
                "given_name": "Maria",
                "family_name": "Musterfrau",
                "date_of_birth": "1961-04-12",
                "hospital_number": "HB-1",
            },
        },
    )


def book(http: httpx.Client, order_id: str, start: date) -> httpx.Response:
    return http.post(f"/orders/{order_id}/booking", json={"site": SITE, "start": start.isoformat()})


def collect(http: httpx.Client, order_id: str, coi: str) -> httpx.Response:
    """The apheresis collection handoff, signed by the coordinator (password re-entry)."""
    return http.post(
        f"/orders/{order_id}/custody-events",
        json={
            "step": "collection",
            "scanned": "&/" + coi,
            "organisation": "Hub Hospital",
            "place": "apheresis unit",
            "at": datetime.now(UTC).isoformat(),
            "temperature_c": 4.0,
            "signatures": [{"username": COORDINATOR, "password": PASSWORD}],
        },
    )


def audit_verifies(server: Server, *, cli: bool = False) -> None:
    """The repository finds no problem in the trail; with ``cli``, nor does
    ``cartnet audit verify`` (which also checks the records and signature seals)."""
    url = server.db
    if cli:
        run = subprocess.run(
            [*CLI, "audit", "verify", "--db", url],
            env=child_env(server.home, {"CARTNET_SIGNING_KEY": server.keys["CARTNET_SIGNING_KEY"]}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0 and "audit trail verified" in run.stdout, run.stdout + run.stderr
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            assert AuditRepository().verify(session) == []
    finally:
        engine.dispose()


# --- 64 clients at once -------------------------------------------------------------------


def at_once(server: Server, token: str, jobs: list[Any]) -> list[httpx.Response | BaseException]:
    """Run ``job(client)`` for each job on its own connection, all released together."""
    barrier = threading.Barrier(len(jobs), timeout=60)
    results: list[httpx.Response | BaseException | None] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            with server.client(token) as client:
                assert client.get("/me").status_code == 200  # connection open before the race
                barrier.wait()
                results[i] = jobs[i](client)
        except BaseException as e:  # reported by the caller's assertions
            barrier.abort()  # the others must not wait for a client that is gone
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(r is not None for r in results), "a client never finished"
    return [r for r in results if r is not None]


def responses_of(results: list[httpx.Response | BaseException]) -> list[httpx.Response]:
    failed = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failed, failed
    return [r for r in results if isinstance(r, httpx.Response)]


def test_64_clients_writing_at_once_all_succeed(server: Server) -> None:
    """Concurrent writers queue for their locks and the audit head: none gets a 5xx.

    Half the clients enrol (they also queue on the CoI counter), half book chains on days
    with room; every request must succeed, identifiers stay unique, the trail verifies.
    """
    token = server.login()
    earliest = today() + timedelta(days=1)
    half = CLIENTS // 2
    with server.client(token) as http:
        enrolled = [enroll(http, earliest) for _ in range(half)]
    assert all(r.status_code == 201 for r in enrolled)
    booking = [r.json()["id"] for r in enrolled]
    days = [today() + timedelta(days=5 + k // SLOTS_PER_DAY) for k in range(half)]
    jobs = [lambda c: enroll(c, earliest)] * half + [
        lambda c, o=o, d=d: book(c, o, d) for o, d in zip(booking, days, strict=True)
    ]
    responses = responses_of(at_once(server, token, jobs))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: half, 200: half}, (
        statuses,
        [r.text for r in responses if r.status_code >= 300][:2],
        server.log_text()[-3000:],
    )
    cois = {r.json()["coi"] for r in [*enrolled, *responses] if r.status_code == 201}
    assert len(cois) == CLIENTS
    audit_verifies(server)


# --- 64 clients, one slot -----------------------------------------------------------------


def test_64_clients_race_for_the_last_slot_and_exactly_one_gets_it(server: Server) -> None:
    """The database decides the last slot: one 200, 63 problem 409s, no double booking."""
    day = today() + timedelta(days=10)
    token = server.login()
    with server.client(token) as http:
        capacity = http.get(f"/capacity/{SITE}", params={"from": day.isoformat(), "days": 1})
        assert capacity.status_code == 200, capacity.text
        assert capacity.json()["days"] == [
            {"day": day.isoformat(), "capacity": SLOTS_PER_DAY, "booked": 0}
        ]
        orders = []
        for _ in range(SLOTS_PER_DAY - 1 + CLIENTS):
            response = enroll(http, today() + timedelta(days=1))
            assert response.status_code == 201, response.text
            orders.append(response.json()["id"])
        fillers, racers = orders[: SLOTS_PER_DAY - 1], orders[SLOTS_PER_DAY - 1 :]
        for order_id in fillers:
            response = book(http, order_id, day)
            assert response.status_code == 200, response.text

    jobs = [lambda c, o=o: book(c, o, day) for o in racers]
    responses = dict(zip(racers, responses_of(at_once(server, token, jobs)), strict=True))
    statuses = Counter(r.status_code for r in responses.values())
    assert statuses == {200: 1, 409: CLIENTS - 1}, {
        s: [r.text for r in responses.values() if r.status_code == s][:3] for s in statuses
    }
    (winner,) = [o for o, r in responses.items() if r.status_code == 200]
    won = responses[winner].json()
    assert won["state"] == "booked"
    assert (won["plan"]["site"], won["plan"]["start"]) == (SITE, day.isoformat())
    for order_id, response in responses.items():
        if order_id == winner:
            continue
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 409 and problem["code"] in RACE_CODES, problem

    with server.client(token) as http:
        capacity = http.get(f"/capacity/{SITE}", params={"from": day.isoformat(), "days": 1})
        assert capacity.json()["days"][0]["booked"] == SLOTS_PER_DAY
        loser = next(o for o in racers if o != winner)
        assert http.get(f"/orders/{loser}").json()["state"] == "enrolled"

    engine = make_engine(server.db)
    try:
        with engine.connect() as connection:
            usage = connection.execute(
                select(SlotUsageRow.booked).where(
                    SlotUsageRow.kind == "manufacturing",
                    SlotUsageRow.resource == SITE,
                    SlotUsageRow.day == day,
                )
            ).scalar_one()
            on_day = set(
                connection.execute(
                    select(OrderRow.id).where(OrderRow.site == SITE, OrderRow.start_on == day)
                ).scalars()
            )
            states = Counter(
                connection.execute(select(OrderRow.state).where(OrderRow.id.in_(racers))).scalars()
            )
    finally:
        engine.dispose()
    assert usage == SLOTS_PER_DAY
    assert on_day == {*fillers, winner}
    assert states == {"booked": 1, "enrolled": CLIENTS - 1}
    audit_verifies(server)


# --- SIGKILL in the middle of a load run ---------------------------------------------------

WORKERS = 8
ROUNDS = 40
"""Orders per worker at most: the load stops by itself even if the kill never comes."""
ACKED_BEFORE_KILL = 8
"""Acknowledged custody events to wait for before the kill."""


@dataclass
class Load:
    """What the server acknowledged (a 2xx) to the load's clients, and what went wrong."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    enrolled: dict[str, str] = field(default_factory=dict)
    """Order id → CoI."""
    booked: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Order id → (site, start) of the acknowledged booking."""
    collected: dict[str, int] = field(default_factory=dict)
    """Order id → id of the acknowledged collection custody event."""
    unexpected: list[str] = field(default_factory=list)
    in_flight: int = 0
    cut_off: int = 0
    """Requests that died with the server (no response)."""

    def call(self, send: Callable[..., httpx.Response], *args: Any) -> httpx.Response | None:
        """``send(*args)``, or None when the server died under it."""
        with self.lock:
            self.in_flight += 1
        try:
            return send(*args)
        except httpx.TransportError:
            with self.lock:
                self.cut_off += 1
            return None
        finally:
            with self.lock:
                self.in_flight -= 1

    def bad(self, what: str, response: httpx.Response) -> None:
        with self.lock:
            self.unexpected.append(f"{what}: {response.status_code} {response.text[:300]}")


def all_orders(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every order the caller sees, following the cursor."""
    orders: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = http.get("/orders", params=params)
        assert page.status_code == 200, page.text
        orders.update((o["id"], o) for o in page.json()["items"])
        if page.json()["next_cursor"] is None:
            return orders
        params["cursor"] = page.json()["next_cursor"]


def one_order(http: httpx.Client, load: Load) -> bool:
    """Enrol, book the best offer, record the collection; False once the server is gone."""
    response = load.call(enroll, http, today() + timedelta(days=1))
    if response is None:
        return False
    if response.status_code != 201:
        load.bad("enroll", response)
        return True
    order_id, coi = response.json()["id"], response.json()["coi"]
    with load.lock:
        load.enrolled[order_id] = coi
    for _attempt in range(5):  # other workers may take the offered slot first
        response = load.call(http.get, f"/orders/{order_id}/offers")
        if response is None:
            return False
        if response.status_code != 200:
            load.bad("offers", response)
            return True
        start = date.fromisoformat(response.json()["offers"][0]["start"])
        response = load.call(book, http, order_id, start)
        if response is None:
            return False
        if response.status_code == 200:
            plan = response.json()["plan"]
            with load.lock:
                load.booked[order_id] = (plan["site"], plan["start"])
            break
        if response.status_code != 409:
            load.bad("book", response)
            return True
    else:
        return True
    response = load.call(collect, http, order_id, coi)
    if response is None:
        return False
    if response.status_code != 201:
        load.bad("collect", response)
        return True
    with load.lock:
        load.collected[order_id] = response.json()["custody"]["id"]
    return True


def run_worker(server: Server, token: str, load: Load, stop: threading.Event) -> None:
    """Order after order until the server dies (or the rounds run out)."""
    with server.client(token) as http:
        for _ in range(ROUNDS):
            if stop.is_set() or not one_order(http, load):
                return


def test_sigkill_mid_load_loses_nothing_acknowledged_and_restarts_clean(server: Server) -> None:
    """Every 2xx the clients got before the SIGKILL is in the database after a restart."""
    token = server.login()
    load, stop = Load(), threading.Event()
    threads = [
        threading.Thread(target=run_worker, args=(server, token, load, stop))
        for _ in range(WORKERS)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    try:
        while len(load.collected) < ACKED_BEFORE_KILL and any(t.is_alive() for t in threads):
            assert time.monotonic() < deadline, "the load made no progress"
            time.sleep(0.01)
        with load.lock:
            in_flight = load.in_flight
            server.kill()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert len(load.collected) >= ACKED_BEFORE_KILL, server.log_text()
    assert in_flight >= 1 and load.cut_off >= 1, "the kill did not hit a running load"

    server.start()  # same database, same keys; migrates on start
    with server.client(token) as http:  # the token outlives the process
        orders = all_orders(http)
        for order_id, coi in load.enrolled.items():
            assert orders[order_id]["coi"] == coi
        for order_id, (site, start) in load.booked.items():
            order = orders[order_id]
            assert (order["plan"]["site"], order["plan"]["start"]) == (site, start), order
            assert order["state"] in {"booked", "apheresis_collected"}, order
        for order_id, event_id in load.collected.items():
            order = orders[order_id]
            assert order["state"] == "apheresis_collected" and order["din"], order
            chain = http.get(f"/orders/{order_id}/custody-events").json()
            assert [(c["id"], c["step"], c["accepted"]) for c in chain] == [
                (event_id, "collection", True)
            ]

    engine = make_engine(server.db)
    try:
        with engine.connect() as connection:
            custody = dict(
                connection.execute(select(CustodyEventRow.id, CustodyEventRow.order_id)).all()
            )
            manufacturing = dict(
                connection.execute(
                    select(SlotUsageRow.day, SlotUsageRow.booked).where(
                        SlotUsageRow.kind == "manufacturing", SlotUsageRow.booked > 0
                    )
                ).all()
            )
            starts = dict(
                connection.execute(
                    select(OrderRow.start_on, func.count())
                    .where(OrderRow.start_on.is_not(None))
                    .group_by(OrderRow.start_on)
                ).all()
            )
            apheresis = dict(
                connection.execute(
                    select(SlotUsageRow.day, SlotUsageRow.booked).where(
                        SlotUsageRow.kind == "apheresis", SlotUsageRow.booked > 0
                    )
                ).all()
            )
            aphereses = dict(
                connection.execute(
                    select(OrderRow.apheresis_on, func.count())
                    .where(OrderRow.apheresis_on.is_not(None))
                    .group_by(OrderRow.apheresis_on)
                ).all()
            )
    finally:
        engine.dispose()
    assert {custody.get(e) for e in load.collected.values()} == set(load.collected)
    # a booking cut off by the kill took no capacity without its order, nor the reverse
    assert manufacturing == starts
    assert apheresis == aphereses
    assert max(manufacturing.values()) <= SLOTS_PER_DAY
    audit_verifies(server)

    with server.client(server.login()) as http:  # the restarted server takes new work
        response = enroll(http, today() + timedelta(days=1))
        assert response.status_code == 201, response.text
        order_id, coi = response.json()["id"], response.json()["coi"]
        offer = http.get(f"/orders/{order_id}/offers").json()["offers"][0]
        response = book(http, order_id, date.fromisoformat(offer["start"]))
        assert response.status_code == 200, response.text
        response = collect(http, order_id, coi)
        assert response.status_code == 201, response.text
    audit_verifies(server, cli=True)
    # last, so that a 5xx under load does not hide whether acknowledged work survived
    assert not load.unexpected, (load.unexpected, server.log_text()[-3000:])
