"""Orders: enrol a patient, offer slot chains, book, reschedule, cancel, read.

Enrolment gives the order its ISBT 128 chain-of-identity id (a counter per issuing
facility and year) and a random pseudonym; the patient's identity is sealed with the
vault key and only a center coordinator of the order's own center can open it, each
time leaving an audit entry. Booking takes the chain's capacity in the database
(:mod:`cartnet.service.slots`), in the same transaction as the order's new state.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Collection
from datetime import date, datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cartnet.identity import (
    ChainOfIdentityId,
    DonationIdentificationNumber,
    SingleEuropeanCode,
    TissueEstablishmentCode,
)
from cartnet.identity.coi import SEQUENCE_COUNT, sequence_of
from cartnet.ledger.chain import Change
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import OrderEvent, OrderState, allowed_events
from cartnet.ledger.roles import Role
from cartnet.network.entities import Regulator, Scope
from cartnet.schedule.capacity import Party
from cartnet.schedule.offers import Exclusion, OfferRequest, SlotChain
from cartnet.service.access import ORDER_READERS, Principal, load_order, visible_orders
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.cosign import request_cosignature
from cartnet.service.errors import Conflict, Invalid, NotFound
from cartnet.service.idempotency import Idempotency
from cartnet.service.quota_hold import lock_quotas
from cartnet.service.schemas import (
    Aggregates,
    AuditEntryView,
    BookChain,
    CapacityDay,
    CountRow,
    EventRequest,
    ExcludedSite,
    HeldQuota,
    NewOrder,
    Offer,
    OfferList,
    OrderPage,
    OrderView,
    PatientIdentity,
    PlannedChain,
    Reason,
    Reschedule,
    SiteCapacity,
    StepResult,
    StepView,
)
from cartnet.service.slots import Claim, SlotKind, chain_claims, qc_claims
from cartnet.service.steps import Presigned, signatures_needed, step_view, take_step
from cartnet.service.trail import record_slots
from cartnet.store.evidence import sha256_text
from cartnet.store.tables import AuditEntryRow, OrderExceptionRow, OrderRow, OrderStepRow

PSEUDONYM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_PAGE = 200
APHERESIS_AHEAD_DAYS = 200
"""How far ahead an earliest apheresis may lie: the offer search (180 days past it)
must stay inside the 400-day capacity calendar."""
BOOKERS = frozenset({Role.CENTER_COORDINATOR, Role.PLANNER})

CHAIN_TAIL = timedelta(days=90)
"""Past its start a chain's QC release lies within this; a booking loads no later days."""
RELEASE_EVENTS = (OrderEvent.RELEASE.value, OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS.value)
_PRE_COLLECTION = frozenset({OrderState.ENROLLED, OrderState.BOOKED})
_PRE_START = frozenset(
    {
        OrderState.BOOKED,
        OrderState.APHERESIS_COLLECTED,
        OrderState.SHIPPED_TO_SITE,
        OrderState.RECEIVED_AT_SITE,
    }
)
_PRE_QC = _PRE_START | {OrderState.IN_MANUFACTURING}


# --- views ------------------------------------------------------------------------------


def order_view(ctx: ServiceContext, session: Session, row: OrderRow) -> OrderView:
    """The order as every permitted role sees it: no patient identity."""
    coi = ChainOfIdentityId.parse(row.coi)
    plan = None
    if row.site and row.start_on and row.apheresis_on:
        plan = PlannedChain(
            site=row.site,
            apheresis=row.apheresis_on,
            start=row.start_on,
            release=row.release_on or row.start_on,
            delivery=row.delivery_on or row.start_on,
            infusion=row.infusion_on or row.start_on,
        )
    open_exceptions, released = session.execute(
        select(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.order_id == row.id, OrderExceptionRow.closed_at.is_(None))
            .scalar_subquery(),
            select(func.max(OrderStepRow.at))
            .where(OrderStepRow.order_id == row.id, OrderStepRow.event.in_(RELEASE_EVENTS))
            .scalar_subquery(),
        )
    ).one()
    expiry = _expiry(ctx, row, released)
    return OrderView(
        id=row.id,
        coi=row.coi,
        coi_eye_readable=coi.eye_readable(),
        pseudonym=row.pseudonym,
        center=row.center,
        market=row.market,
        country=row.country,
        product=row.product,
        scope=Scope(row.scope),
        trial=row.trial,
        state=OrderState(row.state),
        allowed_events=list(allowed_events(row.state)),
        earliest_apheresis=row.earliest_apheresis,
        din=row.din,
        expiry=expiry,
        sec=_sec(ctx, row, expiry),
        plan=plan,
        open_exceptions=open_exceptions or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _expiry(ctx: ServiceContext, row: OrderRow, released: datetime | None) -> date | None:
    """Shelf life from QA's release; before release, from the planned release day."""
    day = released.date() if released is not None else row.release_on
    return None if day is None else day + timedelta(days=ctx.settings.shelf_life_days)


def _sec(ctx: ServiceContext, row: OrderRow, expiry: date | None) -> str | None:
    """The Single European Code of an EU order once its apheresis has a DIN."""
    market = ctx.network.market(row.market)
    if market.regulator is not Regulator.EMA or row.din is None or row.site is None:
        return None
    site = ctx.network.site(row.site)
    te = ctx.settings.tissue_establishments.get(site.id) or default_tissue_establishment(
        site.country, ctx.settings.fin
    )
    code = ctx.settings.product_codes.get(row.product, ctx.settings.default_product_code)
    sec = SingleEuropeanCode.from_din(
        DonationIdentificationNumber.parse(row.din),
        tissue_establishment=TissueEstablishmentCode.parse(te),
        product_code=code,
        expiry=expiry,
    )
    return sec.eye_readable()


def default_tissue_establishment(country: str, fin: str) -> str:
    """A placeholder EU tissue establishment code from the site's country and the FIN.

    Real codes come from the EU Tissue Establishment Compendium; configure them per
    site (``tissue_establishments``). This keeps the SEC well-formed until then.
    """
    return f"{country}{fin[1:]:0>6}"[:8]


# --- enrolment --------------------------------------------------------------------------


def enroll(ctx: ServiceContext, principal: Principal, new: NewOrder) -> OrderView:
    """Create the order for a patient of the coordinator's own center."""
    principal.require({Role.CENTER_COORDINATOR}, "enrol patients")
    net = ctx.network
    center = net.center(principal.center or "")
    if new.product not in center.products:
        raise Invalid(
            f"{center.name} does not offer product {new.product!r} (offers: "
            f"{', '.join(center.products)})",
            field="product",
        )
    if new.scope is Scope.CLINICAL and new.trial is None:
        raise Invalid("a clinical order needs its trial", field="trial")
    if new.scope is Scope.COMMERCIAL and new.trial is not None:
        raise Invalid("a commercial order has no trial", field="trial")
    today = ctx.today()
    if new.earliest_apheresis < today:
        raise Invalid(
            f"earliest apheresis {new.earliest_apheresis} is in the past (today is {today})",
            field="earliest_apheresis",
        )
    if new.earliest_apheresis > today + timedelta(days=APHERESIS_AHEAD_DAYS):
        raise Invalid(
            f"earliest apheresis {new.earliest_apheresis} is beyond the booking horizon",
            field="earliest_apheresis",
        )
    now = ctx.now()
    with ctx.transaction() as session:
        facility = ctx.settings.facility
        number = ctx.next_number(session, f"coi:{facility}:{now.year}")
        if number >= SEQUENCE_COUNT:
            raise Conflict(f"all CoI sequences of {facility} for {now.year} are used")
        coi = ChainOfIdentityId(facility, now.year % 100, sequence_of(number))
        row = OrderRow(
            id=new_id("ord"),
            coi=str(coi),
            center=center.id,
            market=center.market,
            product=new.product,
            scope=new.scope.value,
            trial=new.trial,
            state=OrderState.ENROLLED.value,
            pseudonym=_pseudonym(),
            patient_identity=ctx.vault.seal(new.patient.model_dump(mode="json")),
            country=center.country,
            earliest_apheresis=new.earliest_apheresis,
            created_at=now,
            updated_at=now,
        )
        ctx.add_record(
            session,
            principal,
            row,
            "order",
            lambda r: str(r.id),
            [
                "coi",
                "pseudonym",
                "center",
                "market",
                "country",
                "product",
                "scope",
                "trial",
                "earliest_apheresis",
                "state",
                "created_at",
            ],
            also=[
                ("patient_identity", None, "sealed"),
                ("patient_identity_sha256", None, sha256_text(row.patient_identity)),
            ],
        )
        return order_view(ctx, session, row)


def _pseudonym() -> str:
    return "P-" + "".join(secrets.choice(PSEUDONYM_ALPHABET) for _ in range(10))


# --- reading ----------------------------------------------------------------------------


def get_order(ctx: ServiceContext, principal: Principal, order_id: str) -> OrderView:
    with ctx.reading() as session:
        return order_view(ctx, session, load_order(session, principal, order_id))


def list_orders(
    ctx: ServiceContext,
    principal: Principal,
    *,
    state: OrderState | None = None,
    states: Collection[OrderState] = (),
    site: str | None = None,
    center: str | None = None,
    product: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderPage:
    """Orders visible to ``principal``, oldest first, ``limit`` at a time.

    ``state`` and ``states`` together: an order in any of them. ``search`` matches the
    start of the CoI (as printed or eye-readable), the pseudonym or the DIN.
    """
    principal.require(ORDER_READERS, "list orders")
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1-{MAX_PAGE}", field="limit")
    query = _filtered(principal, state, states, site, center, product, search)
    if cursor is not None:
        after_time, after_id = _read_cursor(cursor)
        query = query.where(
            or_(
                OrderRow.created_at > after_time,
                and_(OrderRow.created_at == after_time, OrderRow.id > after_id),
            )
        )
    query = query.order_by(OrderRow.created_at, OrderRow.id).limit(limit + 1)
    with ctx.reading() as session:
        rows = list(session.scalars(query))
        items = [order_view(ctx, session, r) for r in rows[:limit]]
    next_cursor = _cursor(rows[limit - 1]) if len(rows) > limit else None
    return OrderPage(items=items, next_cursor=next_cursor)


def count_orders(
    ctx: ServiceContext,
    principal: Principal,
    *,
    state: OrderState | None = None,
    states: Collection[OrderState] = (),
    site: str | None = None,
    center: str | None = None,
    product: str | None = None,
    search: str | None = None,
) -> int:
    """How many orders :func:`list_orders` would list with these filters, all pages."""
    principal.require(ORDER_READERS, "count orders")
    query = _filtered(principal, state, states, site, center, product, search)
    with ctx.reading() as session:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _filtered(
    principal: Principal,
    state: OrderState | None,
    states: Collection[OrderState],
    site: str | None,
    center: str | None,
    product: str | None,
    search: str | None,
) -> Select[OrderRow]:
    query = visible_orders(principal)
    wanted = {*states, *([state] if state is not None else [])}
    if wanted:
        query = query.where(OrderRow.state.in_(sorted(s.value for s in wanted)))
    for column, value in (
        (OrderRow.site, site),
        (OrderRow.center, center),
        (OrderRow.product, product),
    ):
        if value is not None:
            query = query.where(column == value)
    if search:
        text = search.strip().upper().replace(" ", "")
        prefix = text.replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(
            or_(
                OrderRow.coi.like(prefix),
                OrderRow.pseudonym.like(prefix),
                OrderRow.din.like(prefix),
            )
        )
    return query


def _cursor(row: OrderRow) -> str:
    data = json.dumps([row.created_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, order_id = json.loads(raw)
        when = datetime.fromisoformat(moment)
        if when.tzinfo is None or not isinstance(order_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise Invalid(
            "not a cursor this server gave out; start without one", field="cursor"
        ) from None
    return when, order_id


def patient_identity(ctx: ServiceContext, principal: Principal, order_id: str) -> PatientIdentity:
    """Open the sealed identity: only the order's center, and every read is audited."""
    principal.require({Role.CENTER_COORDINATOR}, "see patient identity")
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id)
        identity = PatientIdentity.model_validate(ctx.vault.open(row.patient_identity))
        ctx.record(session, principal, AuditAction.READ, "patient_identity", row.id)
    return identity


# --- offers and booking -----------------------------------------------------------------


def _request(row: OrderRow, earliest: date) -> OfferRequest:
    return OfferRequest(
        center=row.center,
        product=row.product,
        earliest_apheresis=earliest,
        scope=Scope(row.scope),
        trial=row.trial,
        enrolled=row.created_at.date(),
    )


def offers(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    *,
    k: int = 5,
    per_site: int = 1,
    earliest_apheresis: date | None = None,
) -> OfferList:
    """The best slot chains for the order now, and why other sites cannot take it."""
    principal.require(BOOKERS, "ask for slot offers")
    if not 1 <= k <= 50:
        raise Invalid("k must be 1-50", field="k")
    if not 1 <= per_site <= 10:
        raise Invalid("per_site must be 1-10", field="per_site")
    today = ctx.today()
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        earliest = max(earliest_apheresis or row.earliest_apheresis, row.earliest_apheresis, today)
        if earliest > today + timedelta(days=APHERESIS_AHEAD_DAYS):
            raise Invalid(f"{earliest} is beyond the booking horizon", field="earliest_apheresis")
        planner = ctx.slots.planner(session, today, centers=[row.center])
        found = planner.offers(_request(row, earliest), k=k, per_site=per_site, today=today)
    party = Party(row.center, row.market, row.trial)
    return OfferList(
        order_id=order_id,
        market=found.market,
        offers=[Offer(**{f: getattr(c, f) for f in Offer.model_fields}) for c in found.chains],
        excluded=[ExcludedSite(**e.as_dict()) for e in found.excluded],
        held=[
            HeldQuota(
                site=u.quota.site,
                site_name=ctx.network.site(u.quota.site).name,
                holder_kind=u.quota.holder_kind.value,
                holder=u.quota.holder,
                period_start=u.quota.start,
                period_end=u.quota.end,
                release_days=u.quota.release_days_ahead,
                unused=u.unused,
            )
            for u in planner.calendar.still_held(0)
            if not party.holds(u.quota)
        ],
    )


def _chain(
    ctx: ServiceContext, session: Session, row: OrderRow, site: str, start: date
) -> tuple[SlotChain, list[Claim]]:
    today = ctx.today()
    if site not in {s.id for s in ctx.network.sites}:
        raise Invalid(f"unknown manufacturing site {site!r}", field="site")
    horizon = today + timedelta(days=ctx.slots.horizon_days - 1)
    if not today < start <= horizon:
        raise Invalid(
            f"start {start} must be after today ({today}) and by {horizon}", field="start"
        )
    planner = ctx.slots.planner(
        session, today, sites=[site], centers=[row.center], until=start + CHAIN_TAIL
    )
    earliest = max(row.earliest_apheresis, today)
    found = planner.chain(_request(row, earliest), site, start, today=today)
    if isinstance(found, Exclusion):
        raise Conflict(f"{found.site_name}: {found.message}", code=found.reason.value)
    return found, chain_claims(found, row.center, planner.calendar)


def _plan_changes(row: OrderRow, chain: SlotChain | None) -> list[Change]:
    """Set the order's planned chain and say what changed, for the audit entry."""
    changes: list[Change] = []
    new = {
        "site": None if chain is None else chain.site,
        "apheresis_on": None if chain is None else chain.apheresis,
        "start_on": None if chain is None else chain.start,
        "release_on": None if chain is None else chain.release,
        "delivery_on": None if chain is None else chain.delivery,
        "infusion_on": None if chain is None else chain.infusion,
    }
    for name, value in new.items():
        old = getattr(row, name)
        if old != value:
            changes.append((name, _text(old), _text(value)))
            setattr(row, name, value)
    return changes


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def held_claims(ctx: ServiceContext, row: OrderRow) -> list[Claim]:
    """Capacity the order still holds and can give back: the parts not used yet."""
    state = OrderState(row.state)
    if row.site is None or row.start_on is None or row.apheresis_on is None:
        return []
    today = ctx.today()
    claims: list[Claim] = []
    if state in _PRE_COLLECTION and row.apheresis_on >= today:
        claims.append(Claim(SlotKind.APHERESIS, row.center, row.apheresis_on))
    if state in _PRE_START and row.start_on > today:
        claims.append(Claim(SlotKind.MANUFACTURING, row.site, row.start_on))
    if state in _PRE_QC and row.release_on is not None and row.release_on > today:
        claims += qc_claims(ctx.slots.snapshot_base(today), row.site, row.release_on)
    return claims


def book(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    body: BookChain,
    idempotency: Idempotency | None = None,
) -> OrderView:
    """Book the chosen chain, all or nothing: the slot, the apheresis, the QC day."""
    principal.require(BOOKERS, "book slot chains")
    try:
        with ctx.transaction() as session:
            if idempotency is not None:
                stored = idempotency.replay(session, principal)
                if stored is not None:
                    return OrderView.model_validate_json(stored)
            row = load_order(session, principal, order_id, for_update=True)
            state = OrderState(row.state)
            event = (
                OrderEvent.REBOOK_APHERESIS
                if state is OrderState.OUT_OF_SPECIFICATION
                else OrderEvent.BOOK_SLOT
            )
            if state not in (OrderState.ENROLLED, OrderState.OUT_OF_SPECIFICATION):
                raise Conflict(
                    f"order is {state.value}; book a chain for an enrolled order, or after an "
                    "out-of-specification result (use reschedule to move a booking)",
                    code="illegal-transition",
                )
            lock_quotas(session, ctx.today(), body.site)
            chain, claims = _chain(ctx, session, row, body.site, body.start)
            taken = ctx.slots.reserve(session, claims, ctx.today())
            record_slots(ctx, session, principal, row.id, taken)
            changes = _plan_changes(row, chain)
            take_step(
                ctx,
                session,
                principal,
                row,
                event,
                reason_code=body.reason_code,
                reason_text=body.reason_text,
                changes=changes,
            )
            view = order_view(ctx, session, row)
            if idempotency is not None:
                idempotency.remember(session, principal, view.model_dump_json())
            return view
    except IntegrityError:
        if idempotency is None:
            raise
        with ctx.transaction() as session:
            stored = idempotency.replay(session, principal)
        if stored is None:
            raise
        return OrderView.model_validate_json(stored)


def reschedule(
    ctx: ServiceContext,
    principal: Principal,
    order_id: str,
    body: Reschedule,
    *,
    expect: tuple[str, date] | None = None,
) -> OrderView:
    """Move a booked chain to another slot before the apheresis; with a reason.

    ``expect``: the (site, start) the caller saw the order booked on; if the booking
    changed since (a plan made earlier), the move is refused as stale, under the lock.
    """
    principal.require(BOOKERS, "reschedule bookings")
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        if OrderState(row.state) is not OrderState.BOOKED:
            raise Conflict(
                f"order is {row.state}; only a booked order before its apheresis "
                "can be rescheduled",
                code="illegal-transition",
            )
        if expect is not None and (row.site, row.start_on) != expect:
            raise Conflict(
                f"the booking changed since the plan was made: the plan moves it from "
                f"{expect[0]} starting {expect[1]}, it is now at {row.site} starting "
                f"{row.start_on}",
                code="stale-plan",
            )
        lock_quotas(session, ctx.today(), body.site)
        old_claims = held_claims(ctx, row)
        given = ctx.slots.give_back(session, old_claims)
        chain, claims = _chain(ctx, session, row, body.site, body.start)
        taken = ctx.slots.reserve(session, claims, ctx.today())
        record_slots(ctx, session, principal, row.id, [*given, *taken])
        changes = _plan_changes(row, chain)
        if not changes:
            raise Invalid("the order is already booked on this chain", field="start")
        row.updated_at = ctx.now()
        session.flush()
        ctx.record(
            session,
            principal,
            AuditAction.UPDATE,
            "order",
            row.id,
            changes,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return order_view(ctx, session, row)


def close(
    ctx: ServiceContext, principal: Principal, order_id: str, event: OrderEvent, body: Reason
) -> OrderView:
    """Cancel the order or record the patient lost; unused capacity goes back."""
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        given = ctx.slots.give_back(session, held_claims(ctx, row))
        record_slots(ctx, session, principal, row.id, given)
        take_step(
            ctx,
            session,
            principal,
            row,
            event,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
        return order_view(ctx, session, row)


def apply_event(
    ctx: ServiceContext, principal: Principal, order_id: str, body: EventRequest
) -> StepResult:
    """Finish manufacturing, report OOS, or an OOS disposition, signed as the rules say."""
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id, for_update=True)
        return take_event(ctx, session, principal, row, body)


def take_event(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: OrderRow,
    body: EventRequest,
    presigned: Presigned | None = None,
) -> StepResult:
    """The step of :func:`apply_event`, or its request for co-signers where needed."""
    event = OrderEvent(body.event)
    if event is OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS:
        require_no_open_exceptions(session, row)
    if presigned is None and signatures_needed(ctx, row, event) > 1:
        return request_cosignature(
            ctx,
            session,
            principal,
            row,
            event,
            kind="event",
            payload=body.model_dump(mode="json", exclude={"signatures"}),
            details={},
            signatures=body.signatures,
            reason_code=body.reason_code,
            reason_text=body.reason_text,
        )
    changes: list[Change] = []
    if event is OrderEvent.REMANUFACTURE and row.state == OrderState.OUT_OF_SPECIFICATION:
        changes = _restart_manufacturing(ctx, session, principal, row)
    step = take_step(
        ctx,
        session,
        principal,
        row,
        event,
        reason_code=body.reason_code,
        reason_text=body.reason_text,
        signatures=body.signatures,
        changes=changes,
        presigned=presigned,
    )
    return StepResult(
        order=order_view(ctx, session, row), step=step_view(session, step), custody=None
    )


def _restart_manufacturing(
    ctx: ServiceContext, session: Session, principal: Principal, row: OrderRow
) -> list[Change]:
    """Re-manufacture from stored apheresis on the site's next free line, from today.

    Takes that manufacturing slot (and QC day, where QC is limited) and moves the rest
    of the plan with it; the changes go into the step's audit entry.
    """
    if row.site is None or row.start_on is None or row.release_on is None:
        return []
    today = ctx.today()
    calendar = ctx.slots.snapshot(session, today, sites=[row.site], centers=[])
    free = calendar.free_slots(row.site, 0, calendar.days - 1) > 0
    if not free.any():
        raise Conflict(
            f"{row.site} has no free manufacturing slot in the next {calendar.days} days",
            code="slot-taken",
        )
    start = calendar.date_of(int(free.argmax()))
    shift = start - row.start_on
    changes: list[Change] = []
    for name in ("start_on", "release_on", "delivery_on", "infusion_on"):
        old = getattr(row, name)
        if old is not None and shift:
            changes.append((name, _text(old), _text(old + shift)))
            setattr(row, name, old + shift)
    claims = [Claim(SlotKind.MANUFACTURING, row.site, start)]
    taken = ctx.slots.reserve(
        session, claims + qc_claims(calendar, row.site, row.release_on), today
    )
    record_slots(ctx, session, principal, row.id, taken)
    return changes


def require_no_open_exceptions(session: Session, row: OrderRow) -> None:
    open_ = session.scalars(
        select(OrderExceptionRow.id).where(
            OrderExceptionRow.order_id == row.id, OrderExceptionRow.closed_at.is_(None)
        )
    ).all()
    if open_:
        raise Conflict(
            f"order has {len(open_)} open exception(s) (ids "
            f"{', '.join(map(str, open_))}); QA must close them first",
            code="open-exceptions",
        )


# --- audit trail, aggregates, capacity ----------------------------------------------------


def order_audit(ctx: ServiceContext, principal: Principal, order_id: str) -> list[AuditEntryView]:
    """Every audit entry about the order and its records, oldest first."""
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        rows = session.scalars(
            select(AuditEntryRow)
            .where(
                or_(AuditEntryRow.entity_id == row.id, AuditEntryRow.entity_id.like(f"{row.id}/%"))
            )
            .order_by(AuditEntryRow.sequence)
        ).all()
    return [
        AuditEntryView(
            sequence=r.sequence,
            timestamp=r.timestamp,
            actor_id=r.actor_id,
            actor_name=r.actor_name,
            role=Role(r.role),
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            changes=[tuple(c) for c in r.changes],
            reason_code=r.reason_code,
            reason_text=r.reason_text,
            hash=r.hash,
        )
        for r in rows
    ]


def order_steps(ctx: ServiceContext, principal: Principal, order_id: str) -> list[StepView]:
    """The lifecycle steps the order took, with their signatures, oldest first."""
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        rows = session.scalars(
            select(OrderStepRow)
            .where(OrderStepRow.order_id == row.id)
            .order_by(OrderStepRow.at, OrderStepRow.id)
        ).all()
        return [step_view(session, r) for r in rows]


def aggregates(ctx: ServiceContext, principal: Principal) -> Aggregates:
    """Counts of orders by state, site and market, and open exceptions."""
    principal.require({Role.PLANNER, Role.LOGISTICS}, "read aggregates")

    def counts(session: Session, column: object) -> list[CountRow]:
        rows = session.execute(
            select(column, func.count()).group_by(column).order_by(column)  # type: ignore[call-overload]
        ).all()
        return [CountRow(key=str(key) if key is not None else "(none)", count=n) for key, n in rows]

    with ctx.reading() as session:
        total = session.scalar(select(func.count()).select_from(OrderRow)) or 0
        open_ = session.scalar(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.closed_at.is_(None))
        )
        return Aggregates(
            orders=total,
            by_state=counts(session, OrderRow.state),
            by_site=counts(session, OrderRow.site),
            by_market=counts(session, OrderRow.market),
            open_exceptions=open_ or 0,
        )


def site_capacity(
    ctx: ServiceContext, principal: Principal, site: str, first: date | None, days: int
) -> SiteCapacity:
    """Manufacturing starts per day at a site: capacity and booked."""
    principal.require(
        {
            Role.PLANNER,
            Role.SITE_OPERATOR,
            Role.QA,
            Role.CENTER_COORDINATOR,
            Role.LOGISTICS,
            Role.ADMIN,
        },
        "read capacity",
    )
    if site not in {s.id for s in ctx.network.sites}:
        raise NotFound(f"no manufacturing site {site!r}", field="site")
    if not 1 <= days <= 366:
        raise Invalid("days must be 1-366", field="days")
    today = ctx.today()
    start = first or today
    if not 0 <= (start - today).days <= ctx.slots.horizon_days - days:
        raise Invalid(
            f"from ... from + days must lie within the {ctx.slots.horizon_days}-day booking "
            f"horizon starting {today}",
            field="from",
        )
    with ctx.reading() as session:
        cal = ctx.slots.snapshot(session, today)
    i = cal.site_index[site]
    d0 = cal.day(start)
    return SiteCapacity(
        site=site,
        site_name=ctx.network.site(site).name,
        days=[
            CapacityDay(
                day=cal.date_of(d), capacity=int(cal.slots[i, d]), booked=int(cal.booked[i, d])
            )
            for d in range(d0, d0 + days)
        ],
    )
