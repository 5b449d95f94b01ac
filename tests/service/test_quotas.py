"""Quotas in the service: bookings honour them, holders use them, unused slots are
released ahead, every change is audited, and racing bookings cannot overrun one.

The network (``data/quota-site.yaml``) has one site that starts one batch a day and two
centers of one market, so a day's only slot goes to whoever the quotas let have it.
Orders are enrolled with their earliest apheresis tomorrow; a chain's start lies at
least two days after its apheresis (a day to collect, a day in transit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.schedule.capacity import HolderKind
from cartnet.service import orders, quotas
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from cartnet.service.quotas import NewQuota, QuotaChange, QuotaRetirement, QuotaView
from cartnet.service.schemas import BookChain, NewOrder, PatientIdentity, Reschedule
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.store.records import record_findings
from cartnet.store.tables import AuditEntryRow

NETWORK = Path(__file__).resolve().parent / "data" / "quota-site.yaml"
SITE = "solo"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T = NOW.date()

HUB = Principal("u-hub", "hub", "Hana Hub", Role.CENTER_COORDINATOR, center="hub")
SPOKE = Principal("u-spoke", "spoke", "Sven Spoke", Role.CENTER_COORDINATOR, center="spoke")
PLANNER = Principal("u-plan", "planner", "Pat Planner", Role.PLANNER)


def day(n: int) -> date:
    return T + timedelta(days=n)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def open_ctx(url: str, keys: dict[str, str], clock: Clock) -> ServiceContext:
    settings = ServiceSettings(database_url=url, network=str(NETWORK), **keys)
    return ServiceContext.open(settings, migrate=False, clock=clock)


@pytest.fixture
def keys() -> dict[str, str]:
    return {"patient_key": new_key(), "signing_key": new_key()}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(migrated_url: str, keys: dict[str, str], clock: Clock) -> Iterator[ServiceContext]:
    context = open_ctx(migrated_url, keys, clock)
    yield context
    context.close()


def enrol(ctx: ServiceContext, who: Principal, trial: str | None = None) -> str:
    new = NewOrder(
        product="cell-one",
        earliest_apheresis=day(1),
        scope=Scope.CLINICAL if trial else Scope.COMMERCIAL,
        trial=trial,
        patient=PatientIdentity(
            given_name="Maria",
            family_name="Musterfrau",
            date_of_birth=date(1961, 4, 12),
            hospital_number="X-1",
        ),
    )
    return orders.enroll(ctx, who, new).id


def book(ctx: ServiceContext, who: Principal, order_id: str, start: date) -> Any:
    return orders.book(ctx, who, order_id, BookChain(site=SITE, start=start))


def hold(ctx: ServiceContext, **fields: Any) -> QuotaView:
    values: dict[str, Any] = {
        "site": SITE,
        "holder_kind": HolderKind.CENTER,
        "holder": "hub",
        "release_days": 0,
        "reason_code": ReasonCode.CAPACITY_CHANGE,
        **fields,
    }
    return quotas.create_quota(ctx, PLANNER, NewQuota(**values))


def refusal(ctx: ServiceContext, who: Principal, order_id: str, start: date) -> Conflict:
    with pytest.raises(Conflict) as caught:
        book(ctx, who, order_id, start)
    return caught.value


def test_a_quota_refuses_others_names_itself_and_serves_its_holder(ctx: ServiceContext) -> None:
    """Another center's booking on a held day is refused with quota-held naming the quota
    (holder, site, period); the holder books the same day from its quota."""
    quota = hold(ctx, slots=3, period_start=day(20), period_end=day(22))
    spoke_order = enrol(ctx, SPOKE)
    refused = refusal(ctx, SPOKE, spoke_order, day(21))
    assert refused.code == "quota-held"
    assert "center hub" in refused.detail and "at solo" in refused.detail
    assert f"{day(20)} to {day(22)}" in refused.detail
    assert orders.get_order(ctx, SPOKE, spoke_order).state.value == "enrolled"

    offered = orders.offers(ctx, SPOKE, spoke_order, k=50, per_site=10)
    assert offered.offers and not any(day(20) <= o.start <= day(22) for o in offered.offers)
    assert [(h.holder_kind, h.holder, h.unused) for h in offered.held] == [("center", "hub", 3)]

    hub_order = enrol(ctx, HUB)
    mine = orders.offers(ctx, HUB, hub_order, earliest_apheresis=day(18))
    assert mine.offers[0].start == day(20) and mine.offers[0].from_quota
    assert mine.held == []
    assert book(ctx, HUB, hub_order, day(21)).plan.start == day(21)
    (view,) = quotas.list_quotas(ctx, PLANNER).items
    assert (view.id, view.held, view.used, view.unused) == (quota.id, 3, 1, 2)


def test_unused_slots_are_released_the_given_days_ahead(ctx: ServiceContext, clock: Clock) -> None:
    """Held days within ``release_days`` of today are open to all; later ones are not,
    until the days pass."""
    hold(ctx, slots=6, period_start=day(3), period_end=day(8), release_days=4)
    first, second = enrol(ctx, SPOKE), enrol(ctx, SPOKE)
    assert book(ctx, SPOKE, first, day(4)).plan.start == day(4)  # within 4 days: released
    assert refusal(ctx, SPOKE, second, day(5)).code == "quota-held"
    clock.now = NOW + timedelta(days=2)  # day 5 and 6 are now within 4 days
    assert book(ctx, SPOKE, second, day(6)).plan.start == day(6)


def test_a_reschedule_into_held_slots_is_refused_and_the_booking_stands(
    ctx: ServiceContext,
) -> None:
    """Moving another center's booking onto a held day is refused like a booking; the
    order keeps its chain and its slot."""
    order = enrol(ctx, SPOKE)
    book(ctx, SPOKE, order, day(10))
    hold(ctx, slots=3, period_start=day(20), period_end=day(22))
    with pytest.raises(Conflict) as caught:
        orders.reschedule(
            ctx, SPOKE, order,
            Reschedule(site=SITE, start=day(21), reason_code=ReasonCode.PATIENT_REQUEST),
        )  # fmt: skip
    assert caught.value.code == "quota-held"
    assert orders.get_order(ctx, SPOKE, order).plan.start == day(10)  # type: ignore[union-attr]
    other = enrol(ctx, HUB)
    assert refusal(ctx, HUB, other, day(10)).code == "capacity-full"  # still taken


def test_a_trial_quota_holds_for_the_trials_orders_only(ctx: ServiceContext) -> None:
    """A quota for a trial serves that trial's orders from any center and refuses the
    commercial ones."""
    hold(
        ctx, holder_kind=HolderKind.TRIAL, holder="T-ONE", slots=2,
        period_start=day(20), period_end=day(21),
    )  # fmt: skip
    commercial = enrol(ctx, HUB)
    refused = refusal(ctx, HUB, commercial, day(20))
    assert refused.code == "quota-held" and "trial T-ONE" in refused.detail
    clinical = enrol(ctx, SPOKE, trial="T-ONE")
    assert book(ctx, SPOKE, clinical, day(20)).plan.start == day(20)


def test_a_share_quota_holds_that_share_of_the_periods_starts(ctx: ServiceContext) -> None:
    """Half of four days' four starts is two held slots; the other two are open to all."""
    hold(ctx, share=0.5, period_start=day(20), period_end=day(23))
    (view,) = quotas.list_quotas(ctx, PLANNER).items
    assert (view.slots, view.share, view.held) == (None, 0.5, 2)
    a, b, c = enrol(ctx, SPOKE), enrol(ctx, SPOKE), enrol(ctx, SPOKE)
    book(ctx, SPOKE, a, day(20))
    book(ctx, SPOKE, b, day(21))
    assert refusal(ctx, SPOKE, c, day(22)).code == "quota-held"


def test_changes_are_audited_and_retiring_frees_the_slots(ctx: ServiceContext) -> None:
    """Create, change and retire are audit entries with the planner and the reason; the
    trail matches the table; a retired quota is kept, and holds nothing."""
    quota = hold(ctx, slots=3, period_start=day(20), period_end=day(22))
    order = enrol(ctx, SPOKE)
    assert refusal(ctx, SPOKE, order, day(20)).code == "quota-held"
    changed = quotas.change_quota(
        ctx, PLANNER, quota.id,
        QuotaChange(slots=2, release_days=7, reason_code=ReasonCode.CAPACITY_CHANGE),
    )  # fmt: skip
    assert (changed.slots, changed.release_days) == (2, 7)
    assert book(ctx, SPOKE, order, day(20)).plan.start == day(20)  # 2 of 3 days held now
    order = enrol(ctx, SPOKE)
    assert refusal(ctx, SPOKE, order, day(21)).code == "quota-held"
    retired = quotas.retire_quota(
        ctx, PLANNER, quota.id,
        QuotaRetirement(reason_code=ReasonCode.OTHER, reason_text="trial paused"),
    )  # fmt: skip
    assert retired.retired_at is not None and retired.retired_by == PLANNER.user_id
    assert book(ctx, SPOKE, order, day(21)).plan.start == day(21)
    assert quotas.list_quotas(ctx, PLANNER).items == []
    assert [q.id for q in quotas.list_quotas(ctx, PLANNER, retired=True).items] == [quota.id]

    with ctx.reading() as session:
        trail = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.entity_type == "quota", AuditEntryRow.entity_id == quota.id)
            .order_by(AuditEntryRow.sequence)
        ).all()
        assert record_findings(session).problems == []
    assert [(e.action, e.actor_id, e.reason_code) for e in trail] == [
        ("create", PLANNER.user_id, "capacity_change"),
        ("update", PLANNER.user_id, "capacity_change"),
        ("void", PLANNER.user_id, "other"),
    ]
    assert {tuple(c) for c in trail[1].changes} == {("slots", 3, 2), ("release_days", 0, 7)}
    assert trail[2].reason_text == "trial paused"
    with pytest.raises(Invalid, match="retired"):
        quotas.change_quota(
            ctx, PLANNER, quota.id, QuotaChange(slots=1, reason_code=ReasonCode.OTHER,
                                                reason_text="again")
        )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"site": "nowhere"}, "site"),
        ({"holder": "mgh"}, "holder"),
        ({"holder_kind": HolderKind.TRIAL, "holder": "T-TWO"}, "holder"),
        ({"slots": 4}, "slots"),  # three days hold three starts
        ({"slots": 1, "share": 0.5}, "slots"),
        ({"slots": None}, "slots"),
        ({"period_end": day(19)}, "period_end"),
    ],
)
def test_a_quota_that_cannot_hold_is_refused_by_its_field(
    ctx: ServiceContext, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        hold(ctx, **{"slots": 3, "period_start": day(20), "period_end": day(22), **fields})
    assert caught.value.field == field
    assert quotas.list_quotas(ctx, PLANNER, retired=True).items == []


def test_only_planners_keep_quotas(ctx: ServiceContext) -> None:
    new = NewQuota(
        site=SITE, holder_kind=HolderKind.CENTER, holder="hub", slots=1,
        period_start=day(20), period_end=day(22), reason_code=ReasonCode.CAPACITY_CHANGE,
    )  # fmt: skip
    with pytest.raises(Forbidden):
        quotas.create_quota(ctx, HUB, new)
    with pytest.raises(Forbidden):
        quotas.list_quotas(ctx, SPOKE)
    with pytest.raises(NotFound):
        quotas.retire_quota(
            ctx, PLANNER, "quo_missing", QuotaRetirement(reason_code="other", reason_text="x")
        )


def test_racing_bookings_cannot_overrun_a_quota(
    ctx: ServiceContext, migrated_url: str, keys: dict[str, str], clock: Clock
) -> None:
    """Three days, two held for the hub: of three other bookings started at once, from
    three service processes' worth of connections, exactly one gets the free day."""
    hold(ctx, slots=2, period_start=day(20), period_end=day(22))
    racers = [enrol(ctx, SPOKE) for _ in range(3)]
    contexts = [open_ctx(migrated_url, keys, clock) for _ in racers]
    barrier = threading.Barrier(len(racers), timeout=60)
    results: list[object] = [None] * len(racers)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = book(contexts[i], SPOKE, racers[i], day(20 + i))
        except (ServiceError, threading.BrokenBarrierError) as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(racers))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for c in contexts:
            c.close()
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 2, results
    assert {r.code for r in lost} == {"quota-held"}
    hub = [enrol(ctx, HUB) for _ in range(2)]
    free = [d for d in (day(20), day(21), day(22)) if d != won[0].plan.start]  # type: ignore[attr-defined]
    for order_id, start in zip(hub, free, strict=True):
        assert book(ctx, HUB, order_id, start).plan.start == start
