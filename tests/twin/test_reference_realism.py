"""The twin on the realistic reference network: importation, center calendars, attrition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cartnet.network import Network
from cartnet.twin.pipeline import Pipeline
from cartnet.twin.policies import make_policy
from cartnet.twin.replications import generators, run_replication
from cartnet.twin.settings import TwinSettings
from cartnet.twin.stats import estimate

YEAR = TwinSettings(horizon_days=365, warmup_days=60)


def with_eu_importation(example: Network, **extra: Any) -> Network:
    data = example.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["markets"][1]["importation"] = {"duration": {"dist": "fixed", "days": 5}, **extra}
    return Network.model_validate(data)


def delivered_orders(net: Network, seed: int = 3) -> list[Any]:
    p, d = generators(seed, 0)
    record = Pipeline(net, make_policy("earliest"), YEAR, p, d).run()
    return [o for o in record.orders if o.delivered is not None]


def test_importation_adds_its_days_only_on_lanes_into_the_market_from_outside(
    example: Network,
) -> None:
    """Newark (US) → EU centers carry the 5-day step; Leiden → EU and Newark → US do not."""
    net = with_eu_importation(example)
    orders = delivered_orders(net)
    imported = [o for o in orders if o.importation_days is not None]
    assert imported and len(imported) < len(orders)
    for o in orders:
        assert o.site is not None
        outside = o.site.site.country not in net.market(o.stream.market).countries
        assert (o.importation_days is not None) == outside
        lane = net.lane(o.site.id, o.center)
        on_road = o.delivered - o.released - (5.0 if outside else 0.0)
        low = lane.transit.low + lane.customs_days  # type: ignore[union-attr]
        high = lane.transit.high + lane.customs_days  # type: ignore[union-attr]
        assert low - 1e-9 <= on_road <= high + 1e-9


def test_a_waived_lane_carries_no_importation(example: Network) -> None:
    """The same network with an MRA for US-made batches: nothing is imported, delivery is
    5 days sooner on average on the lanes that had the step."""
    needed = delivered_orders(with_eu_importation(example))
    waived = delivered_orders(with_eu_importation(example, waived_for=["US"]))
    assert all(o.importation_days is None for o in waived)

    def newark_to_eu(orders: list[Any]) -> float:
        days = [
            o.delivered - o.released
            for o in orders
            if o.site is not None and o.site.id == "newark" and o.stream.market == "EU"
        ]
        assert len(days) > 20
        return sum(days) / len(days)

    assert newark_to_eu(needed) - newark_to_eu(waived) == pytest.approx(5.0, abs=0.5)


def test_centers_never_collect_or_infuse_on_their_closed_days(kymriah: Network) -> None:
    """Weekends and national holidays of the reference network: no apheresis, no infusion."""
    net = kymriah.with_scenario("before-ema-2020")
    p, d = generators(7, 0)
    record = Pipeline(net, make_policy("earliest"), YEAR, p, d).run()
    start = net.reference_date
    collected = infused = 0
    for o in record.orders:
        days = net.center_days(o.center)
        if o.apheresis is not None:
            assert days.is_open(start + timedelta(days=int(o.apheresis))), o.center
            collected += 1
        if o.infused is not None:
            assert days.is_open(start + timedelta(days=int(o.infused))), o.center
            assert o.infused >= o.delivered + YEAR.infusion_days
            infused += 1
    assert collected > 1000 and infused > 1000
    imported = [o for o in record.orders if o.importation_days is not None]
    assert imported and {o.stream.market for o in imported} <= {"EU", "UK"}
    assert {o.site.id for o in imported if o.site is not None} == {"morris-plains"}


def test_reference_share_of_apheresed_patients_not_infused_is_in_the_published_range(
    kymriah: Network,
) -> None:
    """10-25 % of apheresed patients are not infused in published series (see
    docs/background/kymriah-2020.md); the twin's 95 % CI lies inside that range."""
    net = kymriah.with_scenario("after-ema-2020")
    runs = [run_replication(net, "earliest", TwinSettings(), 2020, r) for r in range(8)]
    for group in ("all", "EU"):
        share = estimate([k.scalars[f"{group}.not_infused_share"] for k in runs])
        assert share.mean - share.half_width >= 0.10
        assert share.mean + share.half_width <= 0.25
