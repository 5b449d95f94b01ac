"""The control tower's at-risk rules, one order at a time, at their thresholds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import cast

import pytest

from cartnet.ledger.lifecycle import OrderState
from cartnet.network.catalog import open_network
from cartnet.network.entities import Product, StartingMaterial
from cartnet.network.model import Network
from cartnet.service.settings import ServiceSettings, new_key
from cartnet.service.tower_risks import OpenOrder, Risk, expected_arrival, risks_of

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SETTINGS = ServiceSettings(patient_key=new_key(), signing_key=new_key())
KYMRIAH = open_network("kymriah-2020")


class FreshNetwork:
    """The kymriah network whose product travels fresh, 48 h stability."""

    def product(self, _product: str) -> Product:
        return Product(
            id="fresh",
            name="Fresh",
            starting_material=StartingMaterial.FRESH,
            stability_hours=48,
        )

    def lane(self, origin: str, destination: str):  # type: ignore[no-untyped-def]
        return KYMRIAH.lane(origin, destination)


def order(state: OrderState, since: datetime, **kw: object) -> OpenOrder:
    values: dict[str, object] = {
        "id": "ord_1",
        "coi": "W999926000001",
        "center": "dana-farber",
        "market": "US",
        "product": "tisagenlecleucel",
        "state": state,
        "site": "morris-plains",
        "since": since,
        "created_at": since,
        **kw,
    }
    return OpenOrder(**values)  # type: ignore[arg-type]


def kinds(o: OpenOrder, network: Network = KYMRIAH, **settings: object) -> list[Risk]:
    chosen = SETTINGS.model_copy(update=settings) if settings else SETTINGS
    return [n.risk for n in risks_of(o, network, chosen, NOW)]


def test_waiting_for_a_slot_counts_from_the_threshold() -> None:
    assert kinds(order(OrderState.ENROLLED, NOW - timedelta(days=7))) == []
    late = order(OrderState.ENROLLED, NOW - timedelta(days=7, minutes=1))
    assert kinds(late) == [Risk.WAITING_FOR_SLOT]
    assert kinds(late, tower_slot_wait_days=8) == []
    assert Risk.WAITING_FOR_SLOT.actor.value == "planner"


def test_late_against_plan_names_the_first_missed_milestone() -> None:
    plan = {"apheresis": date(2026, 3, 1), "start": date(2026, 3, 8), "release": date(2026, 3, 20)}
    collected = order(OrderState.RECEIVED_AT_SITE, NOW - timedelta(days=1), plan=plan)
    (note,) = risks_of(collected, KYMRIAH, SETTINGS, NOW)
    assert note.risk is Risk.LATE_AGAINST_PLAN
    assert "manufacturing start was planned for 2026-03-08, 2 day(s) ago" in note.detail
    assert kinds(collected, tower_late_days=3) == []
    started = order(OrderState.IN_MANUFACTURING, NOW - timedelta(days=1), plan=plan)
    assert kinds(started) == []  # release is still ahead


def test_a_shipment_is_overdue_after_the_lane_transit_and_the_grace() -> None:
    leg = KYMRIAH.lane("dana-farber", "morris-plains").mean_days
    handed = NOW - timedelta(days=leg, hours=12)
    on_time = order(OrderState.SHIPPED_TO_SITE, handed, courier="Cryo")
    assert expected_arrival(KYMRIAH, on_time) == handed + timedelta(days=leg)
    assert kinds(on_time) == []  # exactly at the grace
    overdue = order(OrderState.SHIPPED_TO_SITE, handed - timedelta(minutes=5), courier="Cryo")
    (note,) = risks_of(overdue, KYMRIAH, SETTINGS, NOW)
    assert note.risk is Risk.SHIPMENT_OVERDUE and "(Cryo)" in note.detail
    assert note.risk.actor.value == "logistics"


def test_a_shipment_planned_for_a_later_day_is_not_overdue_before_that_day_ends() -> None:
    leg = KYMRIAH.lane("morris-plains", "dana-farber").mean_days
    handed = NOW - timedelta(days=leg, hours=13)
    plan = {"delivery": NOW.date()}
    booked_for_today = order(OrderState.SHIPPED_TO_CENTER, handed, plan=plan)
    midnight = datetime.combine(NOW.date() + timedelta(days=1), time(0, 0), tzinfo=UTC)
    assert expected_arrival(KYMRIAH, booked_for_today) == midnight
    assert kinds(booked_for_today) == []
    later = midnight + timedelta(hours=12, minutes=1)
    assert Risk.SHIPMENT_OVERDUE in [
        n.risk for n in risks_of(booked_for_today, KYMRIAH, SETTINGS, later)
    ]
    plan_to_site = {"start": NOW.date() + timedelta(days=2)}
    inbound = order(OrderState.SHIPPED_TO_SITE, NOW - timedelta(days=9), plan=plan_to_site)
    assert expected_arrival(KYMRIAH, inbound) == midnight + timedelta(days=1)


@pytest.mark.parametrize(("hours_ago", "at_risk"), [(35, False), (36.5, True), (50, True)])
def test_fresh_material_near_the_end_of_its_stability_window(
    hours_ago: float, at_risk: bool
) -> None:
    o = order(
        OrderState.SHIPPED_TO_SITE,
        NOW - timedelta(hours=1),
        collected_at=NOW - timedelta(hours=hours_ago),
    )
    found = kinds(o, cast(Network, FreshNetwork()))
    assert (Risk.STABILITY in found) is at_risk
    # cryopreserved material (the kymriah product) has no such window
    assert Risk.STABILITY not in kinds(o)


def test_a_released_product_near_its_expiry() -> None:
    shelf = SETTINGS.shelf_life_days
    near = order(OrderState.DELIVERED, NOW, released_at=NOW - timedelta(days=shelf - 14))
    assert kinds(near) == [Risk.EXPIRY]
    far = order(OrderState.DELIVERED, NOW, released_at=NOW - timedelta(days=shelf - 15))
    assert kinds(far) == []
