"""Estimates as people read them: flagged ones say why their interval is missing or wider."""

from __future__ import annotations

import numpy as np

from cartnet.report.twin_summary import cell, excludes_zero, interval, with_ci
from cartnet.twin.stats import estimate


def test_a_rare_event_reads_too_few_events_not_zero_zero_zero() -> None:
    e = estimate([0.0] * 20).as_dict()
    assert (e["mean"], e["ci_low"], e["ci_high"]) == (0.0, 0.0, 0.0)
    assert cell(e, "count") == "0.0 (too few events)"
    assert with_ci(e, "days", signed=True) == "0.0 days (no CI: too few events)"
    assert interval(e) is None
    rare = estimate([0.0] * 26 + [10.0] * 4).as_dict()  # the t interval excludes zero ...
    assert rare["ci_low"] > 0
    assert not excludes_zero(rare)  # ... but four replications are too few to say


def test_a_skewed_estimate_shows_its_bootstrap_interval_marked() -> None:
    values = np.random.default_rng(7).lognormal(0.0, 1.5, 8)
    e = estimate(values).as_dict()
    assert e["flag"] == "skewed"
    assert interval(e) == (e["boot_low"], e["boot_high"])
    assert cell(e, "count") == f"{e['mean']:.1f} [{e['boot_low']:.1f}, {e['boot_high']:.1f}]*"
    assert "95% bootstrap CI" in with_ci(e, "days", signed=False)
    assert excludes_zero(e) == (e["boot_low"] > 0)


def test_an_ordinary_estimate_keeps_its_t_interval() -> None:
    e = estimate(np.random.default_rng(1).normal(10.0, 1.0, 20)).as_dict()
    assert e["flag"] is None
    assert cell(e, "count") == f"{e['mean']:.1f} [{e['ci_low']:.1f}, {e['ci_high']:.1f}]"
    assert excludes_zero(e)
