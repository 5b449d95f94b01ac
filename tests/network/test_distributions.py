"""Duration distributions: means, reproducible draws, parameter checks."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from cartnet.network.distributions import Duration

duration = TypeAdapter(Duration)

SPECS = [
    {"dist": "fixed", "days": 7},
    {"dist": "exponential", "mean": 7},
    {"dist": "lognormal", "mean": 7, "sd": 1.5},
    {"dist": "triangular", "low": 6, "mode": 7, "high": 10},
    {"dist": "empirical", "days": [6, 7, 7, 9, 14]},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["dist"])
def test_sample_mean_matches_declared_mean(spec: dict[str, object]) -> None:
    """Draws average to the distribution's mean (the value offers use as expected)."""
    d = duration.validate_python(spec)
    draws = d.sample_many(np.random.default_rng(1), 200_000)
    assert draws.min() >= 0
    assert draws.mean() == pytest.approx(d.mean, rel=0.01)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["dist"])
def test_same_seed_same_durations(spec: dict[str, object]) -> None:
    """One explicit Generator per run makes every draw reproducible."""
    d = duration.validate_python(spec)
    a = [d.sample(np.random.default_rng(42)) for _ in range(3)]
    b = [d.sample(np.random.default_rng(42)) for _ in range(3)]
    assert a == b
    assert d.sample_many(np.random.default_rng(7), 5).tolist() == (
        d.sample_many(np.random.default_rng(7), 5).tolist()
    )


def test_lognormal_sd_is_of_the_duration_not_its_log() -> None:
    """``sd`` is the standard deviation in days, as planners state it."""
    d = duration.validate_python({"dist": "lognormal", "mean": 7, "sd": 1.5})
    draws = d.sample_many(np.random.default_rng(3), 400_000)
    assert draws.std() == pytest.approx(1.5, rel=0.02)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"dist": "fixed", "days": -1}, "greater than or equal to 0"),
        ({"dist": "exponential", "mean": 0}, "greater than 0"),
        ({"dist": "lognormal", "mean": 7}, "Field required"),
        ({"dist": "triangular", "low": 8, "mode": 7, "high": 10}, "low <= mode <= high"),
        ({"dist": "empirical", "days": []}, "at least 1 item"),
        ({"dist": "weibull", "shape": 2}, "does not match any of the expected tags"),
        ({"dist": "fixed", "days": 7, "sd": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_refused(spec: dict[str, object], fragment: str) -> None:
    """Negative, missing, unordered or unknown parameters never reach a simulation."""
    with pytest.raises(ValidationError, match=fragment):
        duration.validate_python(spec)
