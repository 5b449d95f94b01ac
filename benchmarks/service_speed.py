"""How many bookings a second does ``cartnet serve`` take, and how fast does it answer?

Usage: python benchmarks/service_speed.py [--orders 2000] [--clients 16] [--workers 1]
       [--contended 0.05] [--backends sqlite,postgresql] [--postgres URL] [--json]

For each database it starts ``cartnet serve`` (uvicorn) as a subprocess on a free
loopback port, on a fresh SQLite file or a fresh PostgreSQL schema, enrols ``--orders``
orders spread over the kymriah-2020 treatment centers by their demand, fetches the
offers of each (``GET /orders/{id}/offers``) and picks for each a chain that still has
room, then times only ``POST /orders/{id}/booking`` from ``--clients`` threads, each
with its own keep-alive ``httpx.Client`` and each order with its own
``Idempotency-Key``. A 409 (the slot was taken meanwhile) is a correct answer: it is
counted, not treated as an error.

The yardstick, in the same run, is the same use case without HTTP: the same bookings
on a second fresh database, by ``cartnet.service.orders.book`` called from as many
threads in this process. Their ratio is what HTTP, uvicorn, FastAPI and the
per-request token lookup cost.

After each run the database is checked for double booking: every ``slot_usage`` row
is within the capacity the network gives (``CapacityCalendar``), and agrees with the
number of booked orders per site and start day, center and apheresis day, and site
and QC day; the audit trail must verify.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.service import accounts, orders
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict
from cartnet.service.idempotency import Idempotency
from cartnet.service.schemas import BookChain, NewOrder, NewUser, PatientIdentity
from cartnet.service.security import hash_password, new_token, token_hash
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.service.slots import HORIZON_DAYS
from cartnet.store.tables import OrderRow, SlotUsageRow, TokenRow

NETWORK = "kymriah-2020"
PRODUCT = "tisagenlecleucel"
PASSWORD = "benchmark password 1"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
API = "/api/v1"
MAX_AHEAD = timedelta(days=HORIZON_DAYS - 200)
"""How far ahead an earliest apheresis may be (enrolment and offers refuse later days)."""
UNLIMITED = int(np.iinfo(np.int32).max)
"""What the capacity calendar holds for a site without a QC limit."""
RETRIES = 2
"""Retries of a booking whose connection dropped (same Idempotency-Key)."""
TARGET_RATE, TARGET_P99_MS = 300.0, 100.0
"""The issue's targets on 2 cores, for PostgreSQL."""

err = Console(stderr=True)


# --- databases and the server -------------------------------------------------------------


@contextmanager
def fresh_database(
    backend: str, postgres: str, workdir: Path, name: str
) -> Iterator[tuple[str, dict[str, Probe]]]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped after.

    Also a CPU probe of the database's backends (PostgreSQL; SQLite runs inside the
    process that uses it): connections carry the schema's name as application name.
    """
    if backend == "sqlite":
        yield f"sqlite+pysqlite:///{workdir / f'{name}.db'}", {}
        return
    schema = f"cartnet_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(postgres).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield (
            url.render_as_string(hide_password=False),
            {"database": postgres_probe(postgres, schema)},
        )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    url: str, keys: dict[str, str], workdir: Path, workers: int = 1
) -> Iterator[tuple[str, int]]:
    """``cartnet serve`` on a free loopback port: its base URL and process id."""
    port = free_port()
    env = {**os.environ, **keys, "XDG_DATA_HOME": str(workdir / "xdg")}
    log = (workdir / f"serve-{port}.log").open("w")
    command = "import sys; from cartnet.cli import main; sys.exit(main())"
    args = ["serve", "--db", url, "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-c", command, *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"cartnet serve exited: {_tail(log.name)}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cartnet serve did not start: {_tail(log.name)}")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _tail(path: str, lines: int = 20) -> str:
    return "\n".join(Path(path).read_text().splitlines()[-lines:])


# --- the workload -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One order to enrol and book: its center, earliest apheresis, and later its chain."""

    center: str
    earliest: date


Job = tuple[str, str, str, date]
"""A booking to make: order id, its center, the chosen site and start day."""


def make_specs(ctx: ServiceContext, n: int, seed: int) -> list[Spec]:
    """Orders over the treatment centers in proportion to their commercial demand.

    Centers of markets where no site may make the product yet (China in 2020) are left
    out: their orders could never be booked.
    """
    rng = np.random.default_rng(seed)
    today = ctx.today()
    net = ctx.network
    centers = [
        c
        for c in net.treatment_centers
        if PRODUCT in c.products and net.eligible_sites(PRODUCT, c.market, Scope.COMMERCIAL, today)
    ]
    weight = np.array(
        [sum(d.patients_per_year for d in c.demand if d.product == PRODUCT) for c in centers]
    )
    weight = np.where(weight > 0, weight, 1.0)
    picks = rng.choice(len(centers), size=n, p=weight / weight.sum())
    days = rng.integers(1, MAX_AHEAD.days + 1, size=n)
    return [
        Spec(centers[i].id, today + timedelta(days=int(d)))
        for i, d in zip(picks.tolist(), days.tolist(), strict=True)
    ]


def make_coordinators(ctx: ServiceContext, centers: set[str]) -> dict[str, Principal]:
    """One center coordinator per center (they enrol and book their center's orders).

    argon2 is slow on purpose (about 0.5 s a hash on 2 cores), and a hundred accounts
    would take a minute, so all coordinators share one password and its hash is made
    once: ``create_user`` is otherwise called as ``cartnet users create`` calls it.
    """
    people = {}
    shared = hash_password(PASSWORD)
    with patch.object(accounts, "hash_password", lambda _: shared):
        for center in sorted(centers):
            user = accounts.create_user(
                ctx,
                accounts.SYSTEM,
                NewUser(
                    username=f"coord-{center}",
                    printed_name=f"Coordinator {center}",
                    password=PASSWORD,
                    role=Role.CENTER_COORDINATOR,
                    center=center,
                ),
            )
            people[center] = Principal(
                user.id, user.username, user.printed_name, user.role, user.center, user.site
            )
    return people


def issue_tokens(ctx: ServiceContext, people: dict[str, Principal]) -> dict[str, str]:
    """A bearer token per coordinator, as ``POST /auth/tokens`` makes them.

    Logging in checks the password with argon2 (0.5 s each); a token is a random
    string whose SHA-256 is stored, so they are issued here directly. One login per
    run goes through the API, to show the path works.
    """
    now = ctx.now()
    tokens = {}
    with ctx.transaction() as session:
        for center, person in people.items():
            token = new_token()
            session.add(
                TokenRow(
                    token_hash=token_hash(token),
                    user_id=person.user_id,
                    issued_at=now,
                    expires_at=now + ctx.settings.token_lifetime,
                    revoked_at=None,
                )
            )
            tokens[center] = token
    return tokens


def parallel(
    items: Sequence[Any], work: Callable[[Any], Any], threads: int, label: str
) -> list[Any]:
    """``work`` on every item from ``threads`` threads, in order, with a progress bar."""
    results: list[Any] = [None] * len(items)
    next_index = itertools.count()
    lock = threading.Lock()
    errors: list[BaseException] = []
    with _progress() as bar:
        task = bar.add_task(label, total=len(items))

        def worker() -> None:
            while not errors:
                with lock:
                    i = next(next_index)
                if i >= len(items):
                    return
                try:
                    results[i] = work(items[i])
                except BaseException as e:
                    errors.append(e)
                    return
                bar.advance(task)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    if errors:
        raise errors[0]
    return results


def _progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def enroll_all(
    ctx: ServiceContext, people: dict[str, Principal], specs: list[Spec], label: str
) -> list[str]:
    """Enrol every order in-process (not measured): the order ids, in ``specs`` order."""
    patient = PatientIdentity(
        given_name="Bench",
        family_name="Mark",
        date_of_birth=date(1970, 1, 1),
        hospital_number="BM-1",
    )

    def one(spec: Spec) -> str:
        new = NewOrder(product=PRODUCT, earliest_apheresis=spec.earliest, patient=patient)
        return orders.enroll(ctx, people[spec.center], new).id

    return parallel(specs, one, 4, f"{label}: enrolling {len(specs)} orders")


def capacity_of(cal: CapacityCalendar, kind: str, resource: str, day: date) -> int:
    """Units of ``kind`` the network gives ``resource`` on ``day`` (QC: huge if unlimited)."""
    d = cal.day(day)
    if not 0 <= d < cal.days:
        return 0
    if kind == "manufacturing":
        return int(cal.slots[cal.site_index[resource], d])
    if kind == "apheresis":
        return int(cal.apheresis[cal.center_index[resource], d])
    return int(min(cal.qc[cal.site_index[resource], d], UNLIMITED))


class Tally:
    """Capacity the planned bookings take, counted here as the server will count it."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.cal = CapacityCalendar(ctx.network, ctx.today(), HORIZON_DAYS)
        self.used: Counter[tuple[str, str, date]] = Counter()

    def take(self, center: str, offer: dict[str, Any]) -> bool:
        """Claim the offer's start, apheresis and QC day if all still have room."""
        claims = [
            ("manufacturing", offer["site"], date.fromisoformat(offer["start"])),
            ("apheresis", center, date.fromisoformat(offer["apheresis"])),
            ("qc", offer["site"], date.fromisoformat(offer["release"])),
        ]
        if all(self.used[c] < capacity_of(self.cal, *c) for c in claims):
            self.used.update(claims)
            return True
        return False


Fetch = Callable[[str, str, date], list[dict[str, Any]]]


def plan_chains(
    ctx: ServiceContext, ids: list[str], specs: list[Spec], fetch: Fetch, threads: int, label: str
) -> tuple[list[tuple[str, date] | None], list[dict[str, Any] | None], int]:
    """For each order an offered chain that the orders before it have not filled.

    Offers are made on the empty calendar, so without this most orders would ask for
    the same few slots and the run would measure refusals. An order whose offers are
    all taken asks again from the day after the last one offered
    (``earliest_apheresis``), within the 180 days a booking may look ahead.
    Returns the chains (``None``: no room), each order's first offer, and how many
    offer requests were made.
    """
    tally = Tally(ctx)
    today = ctx.today()
    plan: list[tuple[str, date] | None] = [None] * len(ids)
    first: list[dict[str, Any] | None] = [None] * len(ids)
    asks = [(i, spec.earliest) for i, spec in enumerate(specs)]
    requests = 0
    while asks:
        requests += len(asks)
        answers = parallel(
            asks,
            lambda ask: fetch(ids[ask[0]], specs[ask[0]].center, ask[1]),
            threads,
            f"{label}: fetching offers ({len(asks)} orders)",
        )
        again = []
        for (i, _), offers in zip(asks, answers, strict=True):
            spec = specs[i]
            reach = spec.earliest + timedelta(days=180)
            offers = [o for o in offers if date.fromisoformat(o["start"]) <= reach]
            first[i] = first[i] or (offers[0] if offers else None)
            for o in offers:
                if tally.take(spec.center, o):
                    plan[i] = (o["site"], date.fromisoformat(o["start"]))
                    break
            else:
                if offers:
                    after = max(date.fromisoformat(o["apheresis"]) for o in offers)
                    after += timedelta(days=1)
                    if after <= min(spec.earliest + timedelta(days=150), today + MAX_AHEAD):
                        again.append((i, after))
        asks = again
    return plan, first, requests


def booking_jobs(
    ids: list[str],
    specs: list[Spec],
    plan: list[tuple[str, date] | None],
    first: list[dict[str, Any] | None],
    contended: float,
) -> tuple[list[Job], int]:
    """The bookings to send: every order with room, and some without, to race for slots.

    An order without room asks for its first offer, a slot the plan gives to others:
    whoever comes second gets a 409, a slot taken meanwhile. ``contended`` is their
    share of the orders with room; the rest are not sent (the network is full for
    them). Returns the jobs, shuffled the same way every run, and how many were left out.
    """
    jobs, spare = [], []
    for oid, spec, chosen, offer in zip(ids, specs, plan, first, strict=True):
        if chosen is not None:
            jobs.append((oid, spec.center, *chosen))
        elif offer is not None:
            spare.append((oid, spec.center, offer["site"], date.fromisoformat(offer["start"])))
    extra = spare[: round(contended * len(jobs))]
    jobs += extra
    order = np.random.default_rng(0).permutation(len(jobs))
    return [jobs[i] for i in order.tolist()], len(ids) - len(jobs)


# --- measuring ----------------------------------------------------------------------------


Probe = Callable[[], dict[int, float]]
"""Cumulative CPU seconds of some processes, by process id."""


@dataclass
class Run:
    """One timed booking phase."""

    wall_s: float
    latencies_ms: list[float]
    statuses: Counter[str]
    cpu_s: dict[str, float]
    """CPU seconds used during the run: by this process, the server, the database's
    backends serving the run, everything else on the machine, and ``busy`` in all."""
    processes: dict[str, int] = field(default_factory=dict)
    """How many processes each probe saw (database: backends, so connections opened)."""

    @property
    def booked(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("200"))

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms)
        ok = self.booked
        return {
            "requests": len(lat),
            "booked": ok,
            "refused_409": sum(n for s, n in self.statuses.items() if s.startswith("409")),
            "errors": sum(n for s, n in self.statuses.items() if s[:3] not in ("200", "409")),
            "retried": sum(n for s, n in self.statuses.items() if "retry" in s),
            "statuses": dict(self.statuses),
            "wall_s": round(self.wall_s, 3),
            "requests_per_s": round(len(lat) / self.wall_s, 1),
            "bookings_per_s": round(ok / self.wall_s, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "max_ms": round(float(lat.max()), 2),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "processes": self.processes,
            "cores": os.cpu_count(),
        }


TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds all cores have spent not idle since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def _process_cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    parts = stat.rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def process_probe(pid: int) -> Probe:
    """The CPU of a process and its children (uvicorn's worker processes)."""

    def probe() -> dict[int, float]:
        found = {pid: _process_cpu_s(pid)}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == pid:
                    found[int(entry.name)] = _process_cpu_s(int(entry.name))
        return found

    return probe


def postgres_probe(admin_url: str, application_name: str) -> Probe:
    """The CPU of the PostgreSQL backends whose connections carry ``application_name``.

    Only meaningful when PostgreSQL runs on this machine (it does on 127.0.0.1).
    """
    engine = create_engine(admin_url, poolclass=NullPool)

    def probe() -> dict[int, float]:
        with engine.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            ).scalars()
            return {pid: _process_cpu_s(pid) for pid in pids}

    return probe


class CpuMeter:
    """CPU used since it was made by the processes a probe finds, sampled now and then.

    Sampling during the run keeps the CPU of a database backend that ends before the
    run does (a connection the pool closes), up to the last sample.
    """

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.first = probe()
        self.last = dict(self.first)

    def sample(self) -> None:
        self.last.update(self.probe())

    def used(self) -> float:
        return sum(v - self.first.get(pid, 0.0) for pid, v in self.last.items())


def timed(
    jobs: Sequence[Any],
    clients: int,
    make_worker_state: Callable[[], Any],
    call: Callable[[Any, Any], str],
    label: str,
    probes: dict[str, Probe],
) -> Run:
    """Run ``call(state, job)`` for every job from ``clients`` threads started together."""
    latencies: list[float] = [0.0] * len(jobs)
    statuses: list[str] = [""] * len(jobs)
    next_index = itertools.count()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    failures: list[BaseException] = []
    running, finished = [clients], threading.Event()
    with _progress() as bar:
        task = bar.add_task(label, total=len(jobs))

        def worker() -> None:
            state = make_worker_state()
            start.wait()
            try:
                while True:
                    with lock:
                        i = next(next_index)
                    if i >= len(jobs):
                        return
                    t = time.perf_counter()
                    statuses[i] = call(state, jobs[i])
                    latencies[i] = (time.perf_counter() - t) * 1e3
                    bar.advance(task)
            except BaseException as e:
                failures.append(e)
            finally:
                with lock:
                    running[0] -= 1
                    if not running[0]:
                        finished.set()
                if hasattr(state, "close"):
                    state.close()

        pool = [threading.Thread(target=worker) for _ in range(clients)]
        for t in pool:
            t.start()
        meters = {name: CpuMeter(probe) for name, probe in probes.items()}
        busy0, own0 = _machine_busy_s(), time.process_time()
        start.wait()
        t0 = time.perf_counter()
        while not finished.wait(0.25):
            for meter in meters.values():
                meter.sample()
        wall = time.perf_counter() - t0
        for t in pool:
            t.join()
        busy, own = _machine_busy_s() - busy0, time.process_time() - own0
        for meter in meters.values():
            meter.sample()
    if failures:
        raise failures[0]
    cpu = {"this process": own, **{name: m.used() for name, m in meters.items()}}
    cpu["other processes"] = max(0.0, busy - sum(cpu.values()))
    cpu["busy"] = busy
    processes = {name: len(m.last) for name, m in meters.items()}
    return Run(wall, latencies, Counter(statuses), cpu, processes)


def warm_up(
    ctx: ServiceContext, people: dict[str, Principal], jobs: list[Job], clients: int, label: str
) -> None:
    """Offers for a few orders from every thread, unmeasured, as the server had before.

    The server has answered thousands of offer requests when its bookings are timed:
    its connection pool is full, its statement and planner caches are warm. This gives
    the yardstick the same start.
    """
    parallel(
        jobs[: 4 * clients],
        lambda job: orders.offers(ctx, people[job[1]], job[0]),
        clients,
        f"{label}: warming up the yardstick",
    )


def book_in_process(
    ctx: ServiceContext,
    people: dict[str, Principal],
    jobs: list[Job],
    clients: int,
    label: str,
    probes: dict[str, Probe],
) -> Run:
    """The yardstick: ``orders.book`` on a ServiceContext, from ``clients`` threads."""

    def call(_: None, job: Job) -> str:
        order_id, center, site, start = job
        body = BookChain(site=site, start=start)
        key = Idempotency.of(
            f"book-{order_id}",
            "POST",
            f"{API}/orders/{order_id}/booking",
            json.dumps({"site": site, "start": start.isoformat()}).encode(),
            ctx.now(),
        )
        try:
            orders.book(ctx, people[center], order_id, body, key)
        except Conflict as e:
            return f"409 {e.code}" if e.code else "409"
        except Exception as e:  # counted as an error, as the API would answer 500 or 503
            return f"error {type(e).__name__}"
        return "200"

    return timed(
        jobs, clients, lambda: None, call, f"{label}: booking in-process (yardstick)", probes
    )


# --- the double-booking check -------------------------------------------------------------


@dataclass
class Check:
    """What the database says after a run."""

    slot_rows: int = 0
    over_capacity: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    booked_orders: int = 0
    audit_problems: int = 0

    @property
    def ok(self) -> bool:
        return not (self.over_capacity or self.mismatched or self.audit_problems)


def check_no_double_booking(ctx: ServiceContext, expected_booked: int) -> Check:
    """slot_usage within capacity and equal to the booked orders' own counts.

    Every ``slot_usage`` row (kind, resource, day, booked) is compared with the
    capacity the network gives (``CapacityCalendar``) and with the number of booked
    orders on that site and start day, center and apheresis day, or site and QC day
    (QC only where a site's QC is limited: elsewhere nothing is counted). The number
    of booked orders must equal the number of 200 answers, and the audit trail must
    verify.
    """
    cal = CapacityCalendar(ctx.network, ctx.today(), HORIZON_DAYS)
    result = Check()
    columns = (SlotUsageRow.kind, SlotUsageRow.resource, SlotUsageRow.day, SlotUsageRow.booked)
    booked = OrderRow.state == OrderState.BOOKED.value
    counts: Counter[tuple[str, str, date]] = Counter()
    with ctx.transaction() as session:
        usage = {(k, r, d): n for k, r, d, n in session.execute(select(*columns))}
        for kind, resource_column, day_column in (
            ("manufacturing", OrderRow.site, OrderRow.start_on),
            ("apheresis", OrderRow.center, OrderRow.apheresis_on),
            ("qc", OrderRow.site, OrderRow.release_on),
        ):
            query = select(resource_column, day_column, func.count()).where(booked)
            for resource, on, n in session.execute(query.group_by(resource_column, day_column)):
                if resource is None or on is None:
                    result.mismatched.append(f"{n} booked orders have no planned {kind} day")
                elif kind != "qc" or capacity_of(cal, kind, resource, on) < UNLIMITED:
                    counts[(kind, resource, on)] = n
        result.booked_orders = (
            session.scalar(select(func.count()).select_from(OrderRow).where(booked)) or 0
        )
        result.audit_problems = len(ctx.audit.verify(session))
    result.slot_rows = len(usage)
    for key in sorted(usage.keys() | counts.keys()):
        kind, resource, on = key
        n, cap, orders_there = usage.get(key, 0), capacity_of(cal, *key), counts.get(key, 0)
        if n > cap:
            result.over_capacity.append(f"{kind} {resource} {on}: {n} booked > capacity {cap}")
        if n != orders_there:
            result.mismatched.append(
                f"{kind} {resource} {on}: slot_usage says {n}, {orders_there} booked orders"
            )
    if result.booked_orders != expected_booked:
        result.mismatched.append(
            f"{result.booked_orders} orders are booked but {expected_booked} bookings got 200"
        )
    return result


# --- one backend ----------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both measurements on one database kind, each on its own fresh database."""
    keys = {"CARTNET_PATIENT_KEY": new_key(), "CARTNET_SIGNING_KEY": new_key()}

    def open_ctx(url: str) -> ServiceContext:
        settings = ServiceSettings(
            database_url=url,
            network=NETWORK,
            patient_key=keys["CARTNET_PATIENT_KEY"],
            signing_key=keys["CARTNET_SIGNING_KEY"],
        )
        return ServiceContext.open(settings)

    with fresh_database(backend, args.postgres, workdir, "http") as (url, probes):
        ctx = open_ctx(url)
        try:
            specs = make_specs(ctx, args.orders, args.seed)
            t = time.perf_counter()
            people = make_coordinators(ctx, {s.center for s in specs})
            ids = enroll_all(ctx, people, specs, backend)
            err.print(
                f"{backend}: {len(people)} coordinators and {len(ids)} orders enrolled in "
                f"{time.perf_counter() - t:.1f} s",
                highlight=False,
            )
            with server(url, keys, workdir, args.workers) as (base, pid):
                tokens = issue_tokens(ctx, people)
                login(base, next(iter(people.values())).username)
                t = time.perf_counter()
                plan, first, asked = plan_chains(
                    ctx, ids, specs, offer_fetcher(base, tokens), args.clients, backend
                )
                jobs, left_out = booking_jobs(ids, specs, plan, first, args.contended)
                room = sum(p is not None for p in plan)
                err.print(
                    f"{backend}: {asked} offer requests in {time.perf_counter() - t:.1f} s; "
                    f"{room} orders have a chain with room; sending {len(jobs)} bookings "
                    f"({len(jobs) - room} racing for taken slots, {left_out} left out)",
                    highlight=False,
                )
                http_run = book_over_http(
                    base,
                    tokens,
                    jobs,
                    args.clients,
                    backend,
                    {"server": process_probe(pid), **probes},
                )
            http_check = check_no_double_booking(ctx, http_run.booked)
        finally:
            ctx.close()
    with fresh_database(backend, args.postgres, workdir, "inproc") as (url, probes):
        ctx = open_ctx(url)
        try:
            people = make_coordinators(ctx, {s.center for s in specs})
            ids = enroll_all(ctx, people, specs, f"{backend} (yardstick)")
            jobs, _ = booking_jobs(ids, specs, plan, first, args.contended)
            warm_up(ctx, people, jobs, args.clients, backend)
            inproc_run = book_in_process(ctx, people, jobs, args.clients, backend, probes)
            inproc_check = check_no_double_booking(ctx, inproc_run.booked)
        finally:
            ctx.close()
    http, inproc = http_run.summary(), inproc_run.summary()
    return {
        "backend": backend,
        "orders": args.orders,
        "clients": args.clients,
        "workers": args.workers,
        "bookings_sent": len(jobs),
        "racing_for_taken_slots": len(jobs) - room,
        "left_out_network_full": left_out,
        "http": http,
        "in_process": inproc,
        "yardstick": "in_process: cartnet.service.orders.book called from as many threads in "
        "one process, without HTTP, on a second fresh database with the same orders and chains",
        "ratio_http_to_in_process": round(http["bookings_per_s"] / inproc["bookings_per_s"], 3),
        "check_http": {**asdict(http_check), "ok": http_check.ok},
        "check_in_process": {**asdict(inproc_check), "ok": inproc_check.ok},
    }


def login(base: str, username: str) -> None:
    """One login through the API (the others' tokens are issued directly)."""
    r = httpx.post(
        f"{base}{API}/auth/tokens", json={"username": username, "password": PASSWORD}, timeout=30
    )
    r.raise_for_status()


def offer_fetcher(base: str, tokens: dict[str, str]) -> Fetch:
    """``GET /orders/{id}/offers``, one keep-alive client per thread."""
    local = threading.local()

    def fetch(order_id: str, center: str, earliest: date) -> list[dict[str, Any]]:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base + API, timeout=120)
        r = local.http.get(
            f"/orders/{order_id}/offers",
            params={"k": 50, "per_site": 10, "earliest_apheresis": earliest.isoformat()},
            headers={"Authorization": f"Bearer {tokens[center]}"},
        )
        r.raise_for_status()
        return r.json()["offers"]  # type: ignore[no-any-return]

    return fetch


def book_over_http(
    base: str,
    tokens: dict[str, str],
    jobs: list[Job],
    clients: int,
    label: str,
    probes: dict[str, Probe],
) -> Run:
    """The measured phase: ``POST /orders/{id}/booking`` from ``clients`` threads.

    A dropped connection is retried with the same ``Idempotency-Key``, as a client
    should: the retry gets the first answer if the first request did go through.
    """

    def client() -> httpx.Client:
        return httpx.Client(base_url=base + API, timeout=120)

    def call(http: httpx.Client, job: Job) -> str:
        order_id, center, site, start = job
        for attempt in range(RETRIES + 1):
            try:
                r = http.post(
                    f"/orders/{order_id}/booking",
                    json={"site": site, "start": start.isoformat()},
                    headers={
                        "Authorization": f"Bearer {tokens[center]}",
                        "Idempotency-Key": f"book-{order_id}",
                    },
                )
                break
            except httpx.TransportError as e:
                if attempt == RETRIES:
                    return f"dropped ({type(e).__name__})"
        retried = " after a retry" if attempt else ""
        if r.status_code == 200:
            return "200" + retried
        code = r.json().get("code") if "json" in r.headers.get("content-type", "") else None
        return f"{r.status_code}{' ' + code if code else ''}{retried}"

    return timed(jobs, clients, client, call, f"{label}: booking over HTTP", probes)


# --- report ---------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> None:
    """One database's figures, the ratio to the yardstick, the checks and the target."""
    b, h, y = result["backend"], result["http"], result["in_process"]
    print(
        f"\n{b}: {result['orders']} orders enrolled, {result['bookings_sent']} bookings sent "
        f"({result['racing_for_taken_slots']} racing for slots others take, "
        f"{result['left_out_network_full']} left out: network full), "
        f"{result['clients']} concurrent clients, {result.get('workers', 1)} server worker(s)"
    )
    print(
        f"{'':<24}{'bookings/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'200':>6}{'409':>6}{'other':>6}"
    )
    for name, r in (("cartnet serve (HTTP)", h), ("orders.book in-process", y)):
        print(
            f"{name:<24}{r['bookings_per_s']:11.1f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}"
            f"{r['max_ms']:9.1f}{r['booked']:6}{r['refused_409']:6}{r['errors']:6}"
        )
    for name, r in (("HTTP", h), ("in-process", y)):
        other = {s: n for s, n in r["statuses"].items() if s != "200"}
        if other:
            print(f"  {name} answers other than 200: {other}")
    for name, r in (("HTTP", h), ("in-process", y)):
        cpu, n = r["cpu_s"], r["requests"]
        parts = ", ".join(
            f"{k} {v / n * 1e3:.1f}" for k, v in cpu.items() if k not in ("busy", "other processes")
        )
        capacity = (r["cores"] or 1) * r["wall_s"]
        print(
            f"  {name} run, CPU ms per booking: {parts}; machine {cpu['busy'] / capacity:.0%} "
            f"busy, other processes {cpu['other processes']:.1f} s of {capacity:.1f} s"
            + (
                f"; {r['processes']['database']} database backends served it"
                if r["processes"].get("database")
                else ""
            )
        )
        if cpu["other processes"] > 0.1 * capacity:
            print(
                f"  warning: other processes took {cpu['other processes'] / capacity:.0%} of "
                f"the machine during the {name} run; these figures are pessimistic"
            )
    print(
        "ratio (bookings/s, HTTP / the yardstick, orders.book called in-process from as "
        f"many threads): {result['ratio_http_to_in_process']:.2f}"
    )
    for name, key in (("HTTP", "check_http"), ("in-process", "check_in_process")):
        c = result[key]
        verdict = "ok" if c["ok"] else "FAILED"
        print(
            f"no double booking ({name}): {verdict}: {c['slot_rows']} slot_usage rows within "
            f"capacity and equal to the counts of the {c['booked_orders']} booked orders; "
            f"audit trail problems: {c['audit_problems']}"
        )
        for line in (c["over_capacity"] + c["mismatched"])[:10]:
            print(f"    {line}")
    if b == "postgresql":
        met = h["bookings_per_s"] >= TARGET_RATE and h["p99_ms"] <= TARGET_P99_MS
        print(
            f"target (≥ {TARGET_RATE:.0f} bookings/s, p99 ≤ {TARGET_P99_MS:.0f} ms on "
            f"PostgreSQL, 2 cores): {'met' if met else 'NOT met'}"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (cartnet serve --workers)"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CARTNET_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="PostgreSQL URL; a schema cartnet_bench_* is made in it and dropped after",
    )
    parser.add_argument(
        "--contended",
        type=float,
        default=0.05,
        help="orders sent for slots the others fill, as a share of those with room (409s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    a = parser.parse_args()
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}; use sqlite and/or postgresql")
    results = []
    with tempfile.TemporaryDirectory(prefix="cartnet-bench-") as tmp:
        for backend in backends:
            result = run_backend(backend, a, Path(tmp))
            results.append(result)
            if not a.json:
                report(result)
    if a.json:
        json.dump({"cpus": os.cpu_count(), "results": results}, sys.stdout, indent=2)
        print()
    if not all(r["check_http"]["ok"] and r["check_in_process"]["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
