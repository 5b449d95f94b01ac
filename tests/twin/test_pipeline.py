"""What a planner sees the twin do: approvals, policies, capacity, failures, losses."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from cartnet.network import Network
from cartnet.twin.pipeline import Pipeline
from cartnet.twin.policies import make_policy
from cartnet.twin.replications import Variant, generators, run_replication, run_variants
from cartnet.twin.settings import TwinSettings

YEAR = TwinSettings(horizon_days=365, warmup_days=60)


def test_eu_patients_are_made_where_the_ema_approved(kymriah: Network) -> None:
    """Under before-ema-2020 no EU commercial order goes to Les Ulis or Stein; after, many do."""

    def eu_commercial_sites(scenario: str) -> Counter[str]:
        p, d = generators(1, 0)
        net = kymriah.with_scenario(scenario)
        record = Pipeline(net, make_policy("earliest"), YEAR, p, d).run()
        return Counter(
            o.site.id
            for o in record.orders
            if o.site is not None and o.stream.market == "EU" and o.stream.scope == "commercial"
        )

    before, after = eu_commercial_sites("before-ema-2020"), eu_commercial_sites("after-ema-2020")
    assert set(before) == {"morris-plains", "leipzig"}
    assert after["les-ulis"] + after["stein"] > 100


def test_more_eu_capacity_means_sooner_treatment_and_fewer_losses(kymriah: Network) -> None:
    """The seed's question, in direction: two more EU sites cut EU waiting and losses."""
    variants = [
        Variant("before", kymriah.with_scenario("before-ema-2020"), "earliest"),
        Variant("after", kymriah.with_scenario("after-ema-2020"), "earliest"),
    ]
    before, after = run_variants(variants, YEAR, replications=4, seed=2)
    assert before.estimate("EU.ttt.mean").mean > after.estimate("EU.ttt.mean").mean
    assert before.estimate("EU.lost").mean > after.estimate("EU.lost").mean


def test_nearest_and_earliest_policies_book_differently(example: Network) -> None:
    near = run_replication(example, "nearest", YEAR, 3, 0)
    early = run_replication(example, "earliest", YEAR, 3, 0)
    assert near.flows != early.flows
    assert early.scalars["all.ttt.mean"] < near.scalars["all.ttt.mean"]


def test_no_loss_hazard_means_nobody_is_lost(example: Network) -> None:
    settings = YEAR.model_copy(update={"loss_hazard_per_day": 0.0})
    k = run_replication(example, "earliest", settings, 5, 0)
    assert k.scalars["all.lost"] == 0
    assert k.scalars["all.treated"] == k.scalars["all.enrolled"] - k.scalars["all.in_system"]


def test_failures_are_counted_and_oos_releases_happen(example: Network) -> None:
    data = example.model_dump(mode="json", by_alias=True)
    data["products"][0]["oos_probability"] = 0.4
    net = Network.model_validate(data)
    no_loss = YEAR.model_copy(update={"loss_hazard_per_day": 0.0})  # every batch gets tested
    k = run_replication(net, "earliest", no_loss, 5, 0)
    assert k.scalars["all.oos"] > 0.25 * k.scalars["all.enrolled"]
    assert k.scalars["all.oos_released"] > 0
    clean = run_replication(example, "earliest", no_loss, 5, 0)
    assert k.scalars["all.v2v.mean"] > clean.scalars["all.v2v.mean"]


def test_utilization_is_a_share_of_line_time(kymriah: Network) -> None:
    k = run_replication(kymriah.with_scenario("after-ema-2020"), "earliest", YEAR, 1, 0)
    for site in kymriah.sites:
        weekly = k.utilization_weekly[site.id]
        assert (weekly >= 0).all()
        assert (weekly <= 1 + 1e-9).all()
    assert k.scalars["site.morris-plains.utilization"] > 0.3


def test_closed_days_start_no_batch(example: Network) -> None:
    """Newark is closed on weekends: no manufacturing starts there on a Saturday or Sunday."""
    p, d = generators(1, 0)
    record = Pipeline(example, make_policy("earliest"), YEAR, p, d).run()
    start = example.reference_date
    newark = [
        o.mfg_start
        for o in record.orders
        if o.site is not None and o.site.id == "newark" and o.mfg_start is not None
    ]
    assert len(newark) > 50
    assert all((start + timedelta(days=int(t))).weekday() < 5 for t in newark)


def test_settings_refuse_a_horizon_within_the_warmup() -> None:
    with pytest.raises(ValueError, match="must be longer than the warm-up"):
        TwinSettings(horizon_days=60, warmup_days=90)
    with pytest.raises(ValueError, match="must add up to 1"):
        TwinSettings(oos_remanufacture=0.9)
