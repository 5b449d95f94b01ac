"""The twin against theory: Erlang C, Little's law, conservation of patients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cartnet.network import Network
from cartnet.twin.kpis import measure
from cartnet.twin.pipeline import Pipeline, RunRecord
from cartnet.twin.policies import make_policy
from cartnet.twin.replications import generators, run_replication
from cartnet.twin.settings import TwinSettings

from .networks import single_site_queue

BARE = {
    "apheresis_days": 0.0,
    "infusion_days": 0.0,
    "loss_hazard_per_day": 0.0,
    "call_ahead_per_line": 0.0,
    "drain_days": 0.0,
}


def erlang_c_wait(c: int, lam: float, mu: float) -> float:
    """Mean wait in queue of M/M/c (Erlang C), the textbook formula."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


@pytest.mark.parametrize(("lines", "rho"), [(2, 0.7), (5, 0.8)])
def test_single_site_reproduces_erlang_c_mean_wait(lines: int, rho: float) -> None:
    """Waiting for a slot on c exponential lines matches the M/M/c mean wait within 3 %."""
    net = single_site_queue(lines, rho)
    settings = TwinSettings(horizon_days=60_000 / lines, warmup_days=500, **BARE)
    waits = [
        run_replication(net, "earliest", settings, seed=11, replication=r).scalars[
            "all.slot_wait.mean"
        ]
        for r in range(4)
    ]
    expected = erlang_c_wait(lines, rho * lines, 1.0)
    assert np.mean(waits) == pytest.approx(expected, rel=0.03)


def _without_oos(net: Network) -> Network:
    """One backlog visit per order (no new apheresis after OOS) keeps W easy to measure."""
    data = net.model_dump(mode="json", by_alias=True)
    for p in data["products"]:
        p["oos_probability"] = 0.0
    for s in data["sites"]:
        s["oos_probability"] = None
    return Network.model_validate(data)


def _backlog_spans(record: RunRecord) -> list[tuple[float, float]]:
    """When each order entered the backlog and left it (manufacturing start or loss)."""
    spans = []
    for o in record.orders:
        exit_ = o.mfg_start if o.mfg_start is not None else o.lost_at
        spans.append((o.enrolled, exit_ if exit_ is not None else record.end))
    return spans


def test_backlog_obeys_littles_law_on_every_sample_path(kymriah: Network) -> None:
    """Time-integrated backlog equals the sum of the time each order spent in it (L = λW)."""
    net = _without_oos(kymriah).with_scenario("after-ema-2020")
    settings = TwinSettings(horizon_days=365, warmup_days=60)
    patients, durations = generators(5, 0)
    record = Pipeline(net, make_policy("earliest"), settings, patients, durations).run()
    end = record.end
    sojourns = 0.0
    for o in record.orders:
        if o.enrolled >= end:
            continue
        exit_ = o.mfg_start if o.mfg_start is not None else o.lost_at
        sojourns += min(exit_ if exit_ is not None else end, end) - o.enrolled
    assert record.backlog_area == pytest.approx(sojourns, rel=1e-9)
    arrivals = sum(1 for o in record.orders if o.enrolled < end)
    assert record.backlog_entries == arrivals
    # and the daily figures add up to the same integral over the days before the horizon
    before = sum(max(0.0, min(b, 365.0) - a) for a, b in _backlog_spans(record))
    assert record.backlog_daily.sum() == pytest.approx(before, rel=1e-9)


def test_backlog_kpi_is_the_exact_time_average_not_a_midnight_sample(kymriah: Network) -> None:
    """all.backlog.mean is the integral of the backlog curve over [warm-up, horizon) / length.

    Batches held over closed days start at midnight, so a count taken at midnight
    (before those starts) overstates the backlog: on this case by about 3.5 %.
    """
    net = _without_oos(kymriah).with_scenario("after-ema-2020")
    warm, horizon = 90, 365
    settings = TwinSettings(horizon_days=horizon, warmup_days=warm)
    patients, durations = generators(2020, 0)
    record = Pipeline(net, make_policy("earliest"), settings, patients, durations).run()
    spans = _backlog_spans(record)
    area = sum(max(0.0, min(b, horizon) - max(a, warm)) for a, b in spans)
    exact = area / (horizon - warm)
    midnight = np.mean([sum(a <= d <= b for a, b in spans) for d in range(warm, horizon)])
    assert abs(midnight / exact - 1) > 0.02  # the case tells the two apart
    assert measure(record, settings).scalars["all.backlog.mean"] == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("scenario", ["before-ema-2020", "after-ema-2020"])
def test_every_patient_is_treated_lost_or_still_in_the_system(
    kymriah: Network, scenario: str
) -> None:
    """Enrolled = treated + lost + in the system at the end, in every market and replication."""
    net = kymriah.with_scenario(scenario)
    settings = TwinSettings(horizon_days=240, warmup_days=30, drain_days=20)
    for r in range(3):
        k = run_replication(net, "earliest", settings, seed=3, replication=r)
        groups = {key.split(".")[0] for key in k.scalars if key.endswith(".enrolled")}
        assert "all" in groups
        for g in groups:
            s = k.scalars
            assert s[f"{g}.enrolled"] == s[f"{g}.treated"] + s[f"{g}.lost"] + s[f"{g}.in_system"]
        assert k.scalars["all.in_system"] > 0  # a short drain leaves patients in the pipeline
        assert k.scalars["all.treated"] > 0
        assert k.scalars["all.lost"] > 0
