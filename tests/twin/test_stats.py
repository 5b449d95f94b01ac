"""Estimates that say when their interval cannot be trusted: rare events and skew."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cartnet.twin.stats import (
    SKEWED,
    TOO_FEW_EVENTS,
    bca_interval,
    estimate,
    skewness,
    skewness_se,
)


def test_a_kpi_that_never_happens_is_flagged_not_printed_as_zero_zero_zero() -> None:
    e = estimate([0.0] * 20)
    assert (e.mean, e.low, e.high) == (0.0, 0.0, 0.0)
    assert e.flag == TOO_FEW_EVENTS
    assert e.as_dict()["flag"] == TOO_FEW_EVENTS


@pytest.mark.parametrize("events", [1, 2, 4])
def test_a_rare_event_in_a_few_replications_is_flagged(events: int) -> None:
    values = [0.0] * (30 - events) + [3.0 + k for k in range(events)]
    assert estimate(values).flag == TOO_FEW_EVENTS


def test_enough_departures_or_continuous_values_are_not_flagged() -> None:
    rng = np.random.default_rng(1)
    # five departures are enough events, though still skewed for 30 replications
    assert estimate([0.0] * 25 + [1.0, 2.0, 1.0, 3.0, 2.0]).flag == SKEWED
    e = estimate(rng.normal(30, 2, 20))
    assert e.flag is None
    assert "boot_low" not in e.as_dict()
    assert e.low < 30 < e.high


def test_skewness_matches_the_textbook_formula() -> None:
    """G1 = sqrt(n(n-1))/(n-2) · m3/m2^1.5, computed here by hand on a small sample."""
    x = np.array([1.0, 2.0, 2.0, 3.0, 10.0])
    n, mean = len(x), x.mean()
    m2 = sum((v - mean) ** 2 for v in x) / n
    m3 = sum((v - mean) ** 3 for v in x) / n
    assert skewness(x) == pytest.approx(math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5)
    assert skewness(-x) == pytest.approx(-skewness(x))


def test_skewed_values_over_few_replications_get_a_bootstrap_interval() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(0.0, 1.5, 8)
    assert 25 * skewness(values) ** 2 >= 8  # Cochran's rule says n is too small
    e = estimate(values)
    assert e.flag == SKEWED
    d = e.as_dict()
    assert d["boot_low"] is not None and d["boot_high"] is not None
    assert e.boot_low < e.mean < e.boot_high
    # the interval follows the skew: longer above the mean than below
    assert e.boot_high - e.mean > e.mean - e.boot_low
    assert estimate(values) == e  # reproducible
    # with many replications the same kind of values is normal enough again
    assert estimate(rng.lognormal(0.0, 0.3, 400)).flag is None


def test_bca_covers_a_skewed_mean_more_often_than_t_where_t_fails() -> None:
    """Right-skewed KPIs over 10 replications: the t interval often ends below the true
    mean; the BCa interval does so less often (coverage checked by simulation)."""
    rng = np.random.default_rng(2020)
    sigma, n, trials = 1.2, 10, 400
    true_mean = math.exp(sigma**2 / 2)
    t_misses = bca_misses = 0
    for _ in range(trials):
        x = rng.lognormal(0.0, sigma, n)
        e = estimate(x)
        _, high = bca_interval(x)
        t_misses += e.high < true_mean
        bca_misses += high < true_mean
    assert t_misses / trials > 0.05  # t misses high far more than its nominal 2.5 %
    assert bca_misses < t_misses


def test_normal_replications_are_seldom_called_skewed() -> None:
    """Sample skewness is noisy over ten values; the standard-error guard keeps normal
    KPIs on their t interval (about 5 % flagged, not the 33 % of Cochran's bound alone)."""
    rng = np.random.default_rng(3)
    samples = rng.normal(25.0, 0.3, (2000, 10))
    flagged = np.mean([estimate(x).flag == SKEWED for x in samples])
    cochran_alone = np.mean([25 * skewness(x) ** 2 >= 10 for x in samples])
    assert flagged < 0.08
    assert cochran_alone > 0.2
    assert skewness_se(10) == pytest.approx(0.687, abs=1e-3)
