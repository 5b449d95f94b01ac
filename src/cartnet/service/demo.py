"""Demo data: a few weeks of a CAR-T network's orders, made through the service's use cases.

``cartnet serve --demo`` and the browser tests need a database in which every page has
something real to show: orders in every state of the lifecycle, a refused scan, a
temperature excursion, an out-of-specification batch. Rows written by hand would show
what we think the service writes; these are written by the use cases themselves
(enrol, offers and booking, custody handoffs with e-signatures, QC results, OOS, logger
uploads), so every order carries its audit entries, signatures and capacity claims
exactly as the API makes them, and ``cartnet audit verify`` passes on the result.

How: the service's "today" is :attr:`ServiceContext.clock`. :func:`fill_demo` swaps in
a :class:`SimulatedClock` and replays the weeks before now in time order (a heap of the
next action of every order), so that enrolments happen on past days, bookings start
after that day's today, and every timestamp is in the past when it hands the real clock
back. The audit trail's timestamps only ever move forward.

Arrivals are sampled with a seeded :class:`numpy.random.Generator` over the demo's
treatment centers, weighted by each center's demand streams (patients a year, per
scope and trial) in the network. Most orders simply run along their booked plan until
now; a few are *held* at one state each (chosen so that their plan puts them there
about now), so that every lifecycle state is present whatever day the demo runs. All
random draws are made before the replay starts: the same seed gives the same orders,
sites and states (ids, pseudonyms, passwords and times differ).

Accounts: one per role and tenant (coordinators at a US, an EU and a UK center; a site
operator and QA at Morris Plains and at Les Ulis; logistics, planner, administrator).
Their passwords are random per run and printed once: a fixed demo password would open
every demo server that someone started with ``--host 0.0.0.0``. Because the passwords
are printed anyway, the demo accounts are hashed with a low argon2id cost
(:data:`DEMO_HASH_COST`); otherwise the few hundred e-signatures of the replay would
take half a minute of password checks. Accounts made later get the service's default.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from argon2 import PasswordHasher
from sqlalchemy import func, inspect, select

from cartnet.identity import ChainOfIdentityId
from cartnet.identity.coi import sequence_of
from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.service import accounts, custody, orders, quality, security, shipments
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict
from cartnet.service.schemas import (
    BookChain,
    CloseException,
    CustodyRequest,
    EventRequest,
    NewOrder,
    NewQcResult,
    NewShipment,
    NewUser,
    PatientIdentity,
    PlannedChain,
    Reason,
    SignatureInput,
    StepRequest,
)
from cartnet.store.database import make_engine
from cartnet.store.tables import AuditEntryRow, Base, OrderRow, UserRow

DEFAULT_SEED = 2020
WINDOW_DAYS = 42
"""How far back the first orders are enrolled: long enough for some to reach infusion."""
FLOWING_ORDERS = 20
"""Orders that run along their plan until now (the held ones come on top)."""
DEMO_HASH_COST = (1, 4096, 1)
"""argon2id time cost, memory cost (KiB) and parallelism of the demo accounts, whose
passwords are printed on screen (the service's default is OWASP's 2, 19456, 1)."""
PRODUCT = "tisagenlecleucel"

Progress = Callable[[float, str], None]
"""Told the fraction of the replay done (0-1) and what is happening."""


@dataclass(frozen=True)
class _Place:
    id: str
    zone: str
    """IANA time zone of the place, for the local times of its custody events."""


CENTERS = (
    _Place("dana-farber", "America/New_York"),
    _Place("charite-berlin", "Europe/Berlin"),
    _Place("uclh-london", "Europe/London"),
)
SITES = (_Place("morris-plains", "America/New_York"), _Place("les-ulis", "Europe/Paris"))
_ZONES = {p.id: p.zone for p in (*CENTERS, *SITES)}
_HUBS = {
    "US": ("FedEx hub, Memphis TN", "America/Chicago"),
    "EU": ("Cryoport depot, Paris-Charles de Gaulle", "Europe/Paris"),
}


@dataclass(frozen=True)
class DemoLogin:
    """One demo account: what to type at the login page, and who it is."""

    username: str
    password: str
    role: Role
    tenant: str | None
    printed_name: str


@dataclass(frozen=True)
class DemoLogins:
    """The demo accounts and what the replay made."""

    logins: tuple[DemoLogin, ...]
    states: dict[str, int]
    """Orders per lifecycle state at the end."""

    def login(self, role: Role, tenant: str | None = None) -> DemoLogin:
        """The (first) account of ``role``, at ``tenant`` if given."""
        for item in self.logins:
            if item.role is role and (tenant is None or item.tenant == tenant):
                return item
        raise KeyError(f"no demo login for {role.value} {tenant or ''}".strip())

    def password(self, username: str) -> str:
        for item in self.logins:
            if item.username == username:
                return item.password
        raise KeyError(f"no demo login {username!r}")


class DemoError(RuntimeError):
    """The demo cannot be made here (a database with data, a network without its cast)."""


class SimulatedClock:
    """A clock that says what it is told: the replay moves it forward, action by action."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


_CAST: tuple[tuple[str, Role, str | None, str], ...] = (
    ("admin", Role.ADMIN, None, "Ada Admin"),
    ("coordinator-dana-farber", Role.CENTER_COORDINATOR, "dana-farber", "Carla Hughes"),
    ("coordinator-charite-berlin", Role.CENTER_COORDINATOR, "charite-berlin", "Katrin Vogel"),
    ("coordinator-uclh-london", Role.CENTER_COORDINATOR, "uclh-london", "Oliver Bennett"),
    ("operator-morris-plains", Role.SITE_OPERATOR, "morris-plains", "Sam Rivera"),
    ("qa-morris-plains", Role.QA, "morris-plains", "Quinn Patel"),
    ("operator-les-ulis", Role.SITE_OPERATOR, "les-ulis", "Élodie Martin"),
    ("qa-les-ulis", Role.QA, "les-ulis", "Hugo Lefèvre"),
    ("logistics", Role.LOGISTICS, None, "Lee Novak"),
    ("planner", Role.PLANNER, None, "Pat Kim"),
)

_NAMES = {
    "US": (
        ("James", "Mary", "Robert", "Linda", "Michael", "Emily", "David", "Grace", "Daniel"),
        ("Johnson", "Miller", "Garcia", "Davis", "Wilson", "Anderson", "Thomas", "Moore"),
    ),
    "DE": (
        ("Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie", "Paul", "Sophie", "Elias"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Wolf"),
    ),
    "GB": (
        ("Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Freya", "Noah"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Evans", "Walker", "Wright"),
    ),
}

# Entry into each state, in days after enrolment, along a typical booked chain (earliest
# apheresis LEAD days after enrolment, 3 days inbound, 18 days to release, 2 to deliver,
# 2 to infuse; the offers of the kymriah-2020 network look like this). A held order is
# enrolled so that its state was entered about a day before now.
_LEAD = 4
_HELD_AGE_DAYS: dict[OrderState, int] = {
    OrderState.BOOKED: 1,
    OrderState.APHERESIS_COLLECTED: _LEAD + 1,
    OrderState.SHIPPED_TO_SITE: _LEAD + 1,
    OrderState.RECEIVED_AT_SITE: _LEAD + 3,
    OrderState.IN_MANUFACTURING: _LEAD + 7,
    OrderState.IN_QC: _LEAD + 15,
    OrderState.OUT_OF_SPECIFICATION: _LEAD + 22,
    OrderState.RELEASED: _LEAD + 21,
    OrderState.SHIPPED_TO_CENTER: _LEAD + 22,
    OrderState.DELIVERED: _LEAD + 24,
    OrderState.INFUSED: _LEAD + 30,
    OrderState.CANCELLED: 4,
    OrderState.PATIENT_LOST: _LEAD + 8,
}
_INCIDENTS: dict[OrderState, tuple[str, ...]] = {
    OrderState.IN_MANUFACTURING: ("coi_mismatch",),
    OrderState.IN_QC: ("excursion",),
    OrderState.OUT_OF_SPECIFICATION: ("oos",),
    OrderState.DELIVERED: ("excursion",),
    OrderState.INFUSED: ("coi_mismatch",),
}
"""Which held orders meet trouble: the refused scan and the excursion of the in-process
ones stay open; those of the later ones QA reviewed and closed before release."""


@dataclass
class _Order:
    """One patient's order: what was drawn for it, then what the service gave it."""

    center: str
    country: str
    scope: Scope
    trial: str | None
    enrolled_at: datetime
    lead_days: int
    hold: OrderState | None
    incidents: tuple[str, ...]
    patient: PatientIdentity
    booking_hours: float
    planner_books: bool
    courier_transfer: bool
    hub: tuple[str, str]
    """Where a courier hands the shipper on to another, and its time zone."""
    id: str = ""
    coi: str = ""
    plan: PlannedChain | None = None
    to_site: str = ""
    to_center: str = ""


@dataclass
class _User:
    principal: Principal
    password: str

    def sign(self) -> list[SignatureInput]:
        return [SignatureInput(username=self.principal.username, password=self.password)]


def new_password() -> str:
    """A random demo password: 16 letters and digits in four groups (about 80 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    groups = ["".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4)]
    return "-".join(groups)


def require_empty_database(url: str) -> None:
    """Refuse a database that holds anything but empty cartnet tables.

    The demo writes weeks of made-up orders; it must never land among real ones.
    """
    engine = make_engine(url)
    try:
        names = set(inspect(engine).get_table_names())
        foreign = names - set(Base.metadata.tables) - {"alembic_version"}
        if foreign:
            raise DemoError(
                f"the database holds tables that are not cartnet's ({', '.join(sorted(foreign))})"
                "; --demo needs a new or empty database"
            )
        counts = {}
        with engine.connect() as connection:
            for label, table in (("users", UserRow), ("orders", OrderRow)):
                if table.__tablename__ in names:
                    counts[label] = connection.scalar(select(func.count()).select_from(table))
            if AuditEntryRow.__tablename__ in names:
                counts["audit entries"] = connection.scalar(
                    select(func.count()).select_from(AuditEntryRow)
                )
        held = {k: v for k, v in counts.items() if v}
        if held:
            what = ", ".join(f"{v} {k}" for k, v in held.items())
            raise DemoError(
                f"the database already holds data ({what}); --demo needs a new or empty database"
            )
    finally:
        engine.dispose()


@contextmanager
def _demo_password_cost() -> Iterator[None]:
    """Hash the demo accounts cheaply (their passwords are printed on screen anyway)."""
    saved = security._hasher
    time_cost, memory_cost, parallelism = DEMO_HASH_COST
    security._hasher = PasswordHasher(time_cost, memory_cost, parallelism=parallelism)
    try:
        yield
    finally:
        security._hasher = saved


def fill_demo(
    ctx: ServiceContext, seed: int = DEFAULT_SEED, *, progress: Progress | None = None
) -> DemoLogins:
    """Make the demo accounts and replay a few weeks of orders up to now; the logins.

    ``ctx`` must be on an empty database (see :func:`require_empty_database`) of a network
    with the demo's centers and sites (kymriah-2020). The clock is the context's own again
    when this returns, and every timestamp written is before then.
    """
    missing = [p.id for p in CENTERS if p.id not in {c.id for c in ctx.network.treatment_centers}]
    missing += [p.id for p in SITES if p.id not in {s.id for s in ctx.network.sites}]
    if missing:
        raise DemoError(
            f"network {ctx.network.name!r} has no {', '.join(missing)}; the demo runs on "
            "kymriah-2020"
        )
    with ctx.reading() as session:
        users = session.scalar(select(func.count()).select_from(UserRow))
        entries = session.scalar(select(func.count()).select_from(AuditEntryRow))
    if users or entries:
        raise DemoError(
            f"the database already holds data ({users} users, {entries} audit entries); "
            "the demo fills a new or empty database"
        )
    real_clock = ctx.clock
    end = real_clock().astimezone(UTC) - timedelta(minutes=30)
    replay = _Replay(ctx, np.random.default_rng(seed), end, progress)
    ctx.clock = replay.clock
    try:
        logins = replay.run()
    finally:
        ctx.clock = real_clock
    return logins


class _Replay:
    """The weeks before ``end``, one use case at a time, in time order."""

    def __init__(
        self,
        ctx: ServiceContext,
        rng: np.random.Generator,
        end: datetime,
        progress: Progress | None,
    ) -> None:
        self.ctx = ctx
        self.rng = rng
        self.end = end
        self.start = end - timedelta(days=WINDOW_DAYS + 3)
        self.clock = SimulatedClock(self.start)
        self.progress = progress or (lambda _fraction, _what: None)
        self.users: dict[str, _User] = {}
        self.orders: list[_Order] = []
        self.enrolled: list[_Order] = []

    # --- the run ----------------------------------------------------------------------

    def _handover(self, o: _Order, held_in_transit: OrderState, planned: datetime) -> datetime:
        """When the courier takes the bag: as planned, except for an order the demo leaves in
        transit, handed over an hour before the demo ends so that it is on time whatever the
        hour the demo is built (the control tower would otherwise call it late some hours)."""
        if o.hold is held_in_transit:
            return max(planned, self.end - timedelta(hours=1))
        return planned

    def run(self) -> DemoLogins:
        self.progress(0.0, "demo accounts")
        passwords = {username: new_password() for username, *_ in _CAST}
        self.orders = self._draw_orders()
        with _demo_password_cost():
            self._make_users(passwords)
        queue: list[tuple[datetime, int, int, Iterator[datetime]]] = []
        for n, order in enumerate(self.orders):
            life = self._life(order)
            heapq.heappush(queue, (next(life), n, n, life))
        late: list[tuple[int, Iterator[datetime]]] = []
        step = len(self.orders)
        span = (self.end - self.start).total_seconds()
        while queue:
            moment, _, n, life = heapq.heappop(queue)
            if moment > self.end:
                if self.orders[n].hold is not None:
                    late.append((n, life))
                continue
            self.clock.moment = max(moment, self.clock.moment + timedelta(seconds=1))
            self.progress((self.clock.moment - self.start).total_seconds() / span, "orders")
            following = next(life, None)
            if following is not None:
                step += 1
                heapq.heappush(queue, (following, step, n, life))
        # A held order whose plan came out later than usual finishes the steps to its
        # state now, a few seconds apart, so that every state is present on any day.
        self.clock.moment = max(self.clock.moment, self.end)
        for _, life in sorted(late, key=lambda item: item[0]):
            while True:
                self.clock.moment += timedelta(seconds=5)
                if next(life, None) is None:
                    break
        self.progress(1.0, "done")
        with self.ctx.reading() as session:
            states: dict[str, int] = {
                str(state): int(count)
                for state, count in session.execute(
                    select(OrderRow.state, func.count()).group_by(OrderRow.state)
                )
            }
        logins = tuple(
            DemoLogin(username, passwords[username], role, tenant, name)
            for username, role, tenant, name in _CAST
        )
        return DemoLogins(logins=logins, states=states)

    def _make_users(self, passwords: dict[str, str]) -> None:
        """The administrator from the command line, the others as the service makes them:
        by the administrator, approved by a second one (the command line) for GxP roles,
        and enrolled by their person with the one-time token."""
        self.clock.moment = self.start
        by = accounts.SYSTEM
        for username, role, tenant, name in _CAST:
            self.clock.moment += timedelta(minutes=3)
            new = NewUser(
                username=username,
                printed_name=name,
                password=passwords[username] if by is accounts.SYSTEM else None,
                role=role,
                center=tenant if role is Role.CENTER_COORDINATOR else None,
                site=tenant if role in (Role.SITE_OPERATOR, Role.QA) else None,
            )
            made = accounts.create_user(self.ctx, by, new)
            if made.user.pending is not None:
                made = accounts.approve(self.ctx, accounts.SYSTEM, made.user.id)
            user = made.user
            if made.enrolment_token is not None:
                user = accounts.enrol(self.ctx, made.enrolment_token, passwords[username], "demo")
            principal = Principal(
                user.id, user.username, user.printed_name, user.role, user.center, user.site
            )
            self.users[username] = _User(principal, passwords[username])
            if role is Role.ADMIN:
                by = principal

    # --- what is drawn before the replay ---------------------------------------------------

    def _draw_orders(self) -> list[_Order]:
        streams = [
            (center.id, center.country, demand.scope, demand.trial, demand.patients_per_year)
            for place in CENTERS
            for center in [self.ctx.network.center(place.id)]
            for demand in center.demand
            if demand.product == PRODUCT
        ]
        weights = np.array([s[4] for s in streams], dtype=float)
        weights /= weights.sum()
        today = self.end.date()
        drawn: list[_Order] = []
        plans: list[tuple[OrderState | None, date]] = [
            (state, today - timedelta(days=age)) for state, age in _HELD_AGE_DAYS.items()
        ]
        first = today - timedelta(days=WINDOW_DAYS)
        for day in sorted(self.rng.integers(0, WINDOW_DAYS, size=FLOWING_ORDERS)):
            plans.append((None, first + timedelta(days=int(day))))
        plans.append((OrderState.ENROLLED, today))
        for hold, day in plans:
            center, country, scope, trial, _ = streams[
                int(self.rng.choice(len(streams), p=weights))
            ]
            zone = ZoneInfo(_ZONES[center])
            hour = float(self.rng.uniform(8.5, 15.5))
            enrolled_at = _at(day, hour, zone)
            if hold is OrderState.ENROLLED:
                enrolled_at = self.end - timedelta(hours=float(self.rng.uniform(1.0, 5.0)))
            drawn.append(
                _Order(
                    center=center,
                    country=country,
                    scope=scope,
                    trial=trial,
                    enrolled_at=enrolled_at,
                    lead_days=int(self.rng.integers(3, 7)) if hold is None else _LEAD,
                    hold=hold,
                    incidents=_INCIDENTS.get(hold, ()) if hold is not None else (),
                    patient=self._patient(country, center, day),
                    booking_hours=float(self.rng.uniform(0.5, 3.0)),
                    planner_books=bool(self.rng.random() < 0.2),
                    courier_transfer=bool(self.rng.random() < 0.5),
                    hub=_HUBS["US" if country == "US" else "EU"],
                )
            )
        return drawn

    def _patient(self, country: str, center: str, day: date) -> PatientIdentity:
        given, family = _NAMES.get(country, _NAMES["GB"])
        age_days = int(self.rng.integers(6 * 365, 76 * 365))
        return PatientIdentity(
            given_name=str(given[int(self.rng.integers(len(given)))]),
            family_name=str(family[int(self.rng.integers(len(family)))]),
            date_of_birth=day - timedelta(days=age_days),
            hospital_number=f"{center[:3].upper()}-{int(self.rng.integers(100000, 999999))}",
        )

    # --- one order's life -----------------------------------------------------------------

    def _life(self, o: _Order) -> Iterator[datetime]:
        """Yield when the next step is due; take it when resumed (the clock is then)."""
        coordinator = self.users[f"coordinator-{o.center}"]
        center_zone = ZoneInfo(_ZONES[o.center])
        yield o.enrolled_at
        self._enroll(o, coordinator)
        if o.hold is OrderState.ENROLLED:
            return
        yield o.enrolled_at + timedelta(hours=o.booking_hours)
        self._book(o, self.users["planner"] if o.planner_books else coordinator)
        plan = o.plan
        assert plan is not None
        site_zone = ZoneInfo(_ZONES[plan.site])
        operator = self.users[f"operator-{plan.site}"]
        qa = self.users[f"qa-{plan.site}"]
        logistics = self.users["logistics"]
        if o.hold is OrderState.CANCELLED:
            yield self.clock.moment + timedelta(days=1, hours=2)
            orders.close(
                self.ctx,
                coordinator.principal,
                o.id,
                OrderEvent.CANCEL,
                Reason(
                    reason_code=ReasonCode.CLINICAL_DECISION,
                    reason_text="patient switched to a bispecific antibody before apheresis",
                ),
            )
            return
        if o.hold is OrderState.BOOKED:
            return

        yield _at(plan.apheresis, 9.5, center_zone)
        self._custody(o, coordinator, CustodyStep.COLLECTION, "Apheresis unit", 21.0)
        if o.hold is OrderState.APHERESIS_COLLECTED:
            return
        yield _at(plan.apheresis, 14.0, center_zone)
        o.to_site = shipments.create_shipment(
            self.ctx,
            logistics.principal,
            o.id,
            NewShipment(direction="to_site", courier="Cryoport", tracking=self._tracking(o, 1)),
        ).id
        yield self._handover(o, OrderState.SHIPPED_TO_SITE, _at(plan.apheresis, 15.0, center_zone))
        handover = self.clock.moment
        self._custody(o, coordinator, CustodyStep.HANDOVER_TO_COURIER, "Loading dock", -186.0)
        if o.courier_transfer and handover + timedelta(hours=16) < self.end:
            yield handover + timedelta(hours=16)
            self._custody(o, logistics, CustodyStep.COURIER_TRANSFER, o.hub[0], -184.5, o.hub[1])
        if o.hold is OrderState.SHIPPED_TO_SITE:
            return

        yield _at(plan.start - timedelta(days=1), 10.0, site_zone)
        if "coi_mismatch" in o.incidents:
            self._refused_scan(o, operator)
            yield self.clock.moment + timedelta(minutes=4)
        self._custody(o, operator, CustodyStep.RECEIPT_AT_SITE, "Goods receipt, cell lab", -183.0)
        yield self.clock.moment + timedelta(hours=1)
        self._logger_file(
            o, logistics, o.to_site, handover, "excursion" in o.incidents, center_zone
        )
        if o.hold is OrderState.RECEIVED_AT_SITE:
            return

        yield _at(plan.start, 8.0, site_zone)
        self._custody(o, operator, CustodyStep.START_MANUFACTURING, "Clean room, line 3", None)
        if o.hold is OrderState.IN_MANUFACTURING:
            return
        if o.hold is OrderState.PATIENT_LOST:
            yield _at(plan.start + timedelta(days=3), 11.0, center_zone)
            orders.close(
                self.ctx,
                coordinator.principal,
                o.id,
                OrderEvent.RECORD_PATIENT_LOST,
                Reason(
                    reason_code=ReasonCode.PATIENT_PROGRESSED,
                    reason_text="rapid progression during manufacturing; not fit for "
                    "lymphodepletion",
                ),
            )
            return

        qc_days = (plan.release - plan.start).days
        yield _at(plan.start + timedelta(days=max(1, qc_days // 2)), 16.0, site_zone)
        orders.apply_event(
            self.ctx,
            operator.principal,
            o.id,
            EventRequest(event="complete_manufacturing", signatures=operator.sign()),
        )
        if o.hold is OrderState.IN_QC:
            return

        yield _at(plan.release - timedelta(days=1), 14.0, site_zone)
        self._qc_results(o, qa, failed="oos" in o.incidents)
        if "oos" in o.incidents:
            yield self.clock.moment + timedelta(hours=2)
            orders.apply_event(
                self.ctx,
                qa.principal,
                o.id,
                EventRequest(event="report_oos", signatures=qa.sign()),
            )
            return
        if o.incidents:
            yield _at(plan.release, 9.0, site_zone)
            self._close_exceptions(o, qa)
        yield _at(plan.release, 10.0, site_zone)
        custody.record_signed_step(
            self.ctx,
            qa.principal,
            o.id,
            CustodyStep.RELEASE,
            StepRequest(
                scanned=self._scan(o),
                place="QA release office",
                at=self._local(site_zone),
                signatures=qa.sign(),
            ),
        )
        if o.hold is OrderState.RELEASED:
            return

        yield _at(plan.release, 13.0, site_zone)
        o.to_center = shipments.create_shipment(
            self.ctx,
            operator.principal,
            o.id,
            NewShipment(direction="to_center", courier="Cryoport", tracking=self._tracking(o, 2)),
        ).id
        yield self._handover(o, OrderState.SHIPPED_TO_CENTER, _at(plan.release, 15.0, site_zone))
        handover = self.clock.moment
        self._custody(
            o, operator, CustodyStep.HANDOVER_TO_COURIER_RETURN, "Shipping, cryo store", -188.0
        )
        if o.hold is OrderState.SHIPPED_TO_CENTER:
            return

        yield _at(plan.delivery, 10.0, center_zone)
        self._custody(o, coordinator, CustodyStep.RECEIPT_AT_CENTER, "Cell therapy lab", -185.0)
        yield self.clock.moment + timedelta(hours=1)
        self._logger_file(o, logistics, o.to_center, handover, False, site_zone)
        if o.hold is OrderState.DELIVERED:
            return

        yield _at(plan.infusion, 10.0, center_zone)
        custody.record_signed_step(
            self.ctx,
            coordinator.principal,
            o.id,
            CustodyStep.INFUSION,
            StepRequest(
                scanned=self._scan(o),
                place="Ward 4, bed 12",
                at=self._local(center_zone),
                signatures=coordinator.sign(),
            ),
        )

    # --- steps --------------------------------------------------------------------------

    def _enroll(self, o: _Order, coordinator: _User) -> None:
        today = self.ctx.today()
        view = orders.enroll(
            self.ctx,
            coordinator.principal,
            NewOrder(
                product=PRODUCT,
                scope=o.scope,
                trial=o.trial,
                earliest_apheresis=today + timedelta(days=o.lead_days),
                patient=o.patient,
            ),
        )
        o.id, o.coi = view.id, view.coi
        self.enrolled.append(o)

    def _book(self, o: _Order, booker: _User) -> None:
        """Book the best offer at a site with demo staff (the first one, mostly)."""
        staffed = {p.id for p in SITES}
        found = orders.offers(self.ctx, booker.principal, o.id, k=10, per_site=1)
        chosen = next((c for c in found.offers if c.site in staffed), None)
        if chosen is None:
            raise DemoError(f"no offer at {', '.join(sorted(staffed))} for order {o.id}")
        view = orders.book(
            self.ctx, booker.principal, o.id, BookChain(site=chosen.site, start=chosen.start)
        )
        o.plan = view.plan

    def _custody(
        self,
        o: _Order,
        who: _User,
        step: CustodyStep,
        place: str,
        temperature: float | None,
        zone_name: str = "UTC",
    ) -> None:
        principal = who.principal
        tenant = principal.center or principal.site
        if tenant is not None:
            organisation = (
                self.ctx.network.center(tenant).name
                if principal.center
                else self.ctx.network.site(tenant).name
            )
            zone = ZoneInfo(_ZONES[tenant])
        else:
            organisation, zone = "Cryoport", ZoneInfo(zone_name)
        custody.record_custody(
            self.ctx,
            principal,
            o.id,
            CustodyRequest(
                step=step,
                scanned=self._scan(o),
                organisation=organisation,
                place=place,
                at=self._local(zone),
                temperature_c=temperature,
                signatures=[] if step is CustodyStep.COURIER_TRANSFER else who.sign(),
            ),
        )

    def _refused_scan(self, o: _Order, operator: _User) -> None:
        """The bag of another order scanned at receipt: refused, kept, an exception raised."""
        others = [x.coi for x in self.enrolled if x.coi != o.coi]
        if others:
            wrong = "&/" + others[-1]
        else:
            coi = ChainOfIdentityId.parse(o.coi)
            wrong = ChainOfIdentityId(coi.facility, coi.year, sequence_of(999_000)).barcode_data()
        site = operator.principal.site or ""
        try:
            custody.record_custody(
                self.ctx,
                operator.principal,
                o.id,
                CustodyRequest(
                    step=CustodyStep.RECEIPT_AT_SITE,
                    scanned=wrong,
                    organisation=self.ctx.network.site(site).name,
                    place="Goods receipt, cell lab",
                    at=self._local(ZoneInfo(_ZONES[site])),
                    temperature_c=-183.0,
                    signatures=operator.sign(),
                ),
            )
        except Conflict as refused:
            if refused.code != "coi-mismatch":
                raise
        else:
            raise DemoError(f"the wrong scan {wrong} was accepted for order {o.id}")

    def _logger_file(
        self,
        o: _Order,
        logistics: _User,
        shipment: str,
        handover: datetime,
        excursion: bool,
        zone: ZoneInfo,
    ) -> None:
        """The shipper's logger export, from handover to receipt every 20 minutes, in the
        time zone it was started in."""
        readings = []
        moment = handover
        arrival = self.clock.moment - timedelta(minutes=50)
        step = 0
        while moment <= arrival:
            temperature = -186.0 + 1.5 * np.sin(step / 7.0)
            readings.append((moment, temperature))
            moment += timedelta(minutes=20)
            step += 1
        if excursion and len(readings) > 12:
            middle = len(readings) // 2
            for i, rise in enumerate((-160.0, -147.5, -141.0, -144.0, -158.0)):
                readings[middle + i] = (readings[middle + i][0], rise)
        lines = ["timestamp,temperature_c"]
        lines += [f"{m.astimezone(zone).isoformat()},{t:.1f}" for m, t in readings]
        shipments.upload_temperature_log(
            self.ctx, logistics.principal, o.id, shipment, ("\n".join(lines) + "\n").encode()
        )

    def _qc_results(self, o: _Order, qa: _User, *, failed: bool) -> None:
        tested = self.clock.moment - timedelta(hours=3)
        results = (
            ("sterility", "no growth at 14 days", "no growth", True),
            ("endotoxin", "< 0.5 EU/mL", "≤ 5 EU/mL", True),
            (
                "viability",
                "71 % viable cells" if failed else "88 % viable cells",
                "≥ 80 %",
                not failed,
            ),
            ("car_expression", "23 % CAR+ T cells", "≥ 2 %", True),
        )
        for test, result, specification, passed in results:
            self.clock.moment += timedelta(minutes=2)
            quality.add_qc_result(
                self.ctx,
                qa.principal,
                o.id,
                NewQcResult(
                    test=test,
                    result=result,
                    specification=specification,
                    passed=passed,
                    tested_at=tested,
                ),
            )

    def _close_exceptions(self, o: _Order, qa: _User) -> None:
        for exception in quality.order_exceptions(self.ctx, qa.principal, o.id):
            if exception.closed_at is not None:
                continue
            self.clock.moment += timedelta(minutes=5)
            text = (
                "wrong bag scanned at receipt and set aside; the right bag was received"
                if exception.kind == "scan_mismatch"
                else "excursion of under an hour above -150 °C; product within its "
                "stability data, no impact"
            )
            quality.close_exception(
                self.ctx,
                qa.principal,
                o.id,
                exception.id,
                CloseException(reason_code=ReasonCode.DEVIATION, reason_text=text),
            )

    # --- small helpers --------------------------------------------------------------------

    def _scan(self, o: _Order) -> str:
        return "&/" + o.coi

    def _local(self, zone: ZoneInfo) -> datetime:
        """Now, as a wall clock at the place shows it (the custody event keeps the offset)."""
        return self.clock.moment.astimezone(zone)

    def _tracking(self, o: _Order, leg: int) -> str:
        return f"CP-{o.coi[-6:]}-{leg}"


def _at(day: date, hour: float, zone: ZoneInfo) -> datetime:
    """``hour`` o'clock (fractional) on ``day`` at a place, in UTC."""
    local = datetime.combine(day, time(0, 0), tzinfo=zone) + timedelta(hours=hour)
    return local.astimezone(UTC)


__all__ = [
    "DEFAULT_SEED",
    "DemoError",
    "DemoLogin",
    "DemoLogins",
    "SimulatedClock",
    "fill_demo",
    "require_empty_database",
]
