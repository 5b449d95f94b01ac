"""Duration distributions, written the same way everywhere in network files.

A duration is always in days. Every distribution can give its mean (used for
expected dates in offers and plans) and draw samples from an explicit
``numpy.random.Generator`` (used by the twin), so the same seed gives the same
durations wherever they are drawn.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def mean(self) -> float:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> float:
        """One duration in days."""
        return float(self.sample_many(rng, 1)[0])

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class Fixed(_Distribution):
    """Always the same number of days.

    >>> Fixed(days=7).mean
    7.0
    """

    dist: Literal["fixed"] = "fixed"
    days: NonNegative

    @property
    def mean(self) -> float:
        return float(self.days)

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.days)

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, float(self.days))

    def describe(self) -> str:
        return f"{self.days:g} d"


class Exponential(_Distribution):
    """Memoryless duration; the M in M/M/c queues.

    >>> Exponential(mean=7).mean
    7.0
    """

    dist: Literal["exponential"] = "exponential"
    mean_days: Positive = Field(alias="mean")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def mean(self) -> float:
        return float(self.mean_days)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean_days))

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean_days, size)

    def describe(self) -> str:
        return f"exp(mean {self.mean_days:g} d)"


class Lognormal(_Distribution):
    """Right-skewed duration given by its own mean and standard deviation (not of its log).

    With m = mean and s = sd, the underlying normal has
    sigma² = ln(1 + s²/m²) and mu = ln(m) − sigma²/2.

    >>> d = Lognormal(mean=7, sd=1.5)
    >>> round(d.sigma, 4), round(d.mu, 4)
    (0.2119, 1.9235)
    """

    dist: Literal["lognormal"] = "lognormal"
    mean_days: Positive = Field(alias="mean")
    sd: Positive

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p((self.sd / self.mean_days) ** 2))

    @property
    def mu(self) -> float:
        return math.log(self.mean_days) - self.sigma**2 / 2

    @property
    def mean(self) -> float:
        return float(self.mean_days)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(self.mu, self.sigma))

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, size)

    def describe(self) -> str:
        return f"lognormal(mean {self.mean_days:g} d, sd {self.sd:g} d)"


class Triangular(_Distribution):
    """Bounded duration from a planner's low / most likely / high estimate.

    >>> Triangular(low=6, mode=7, high=11).mean
    8.0
    """

    dist: Literal["triangular"] = "triangular"
    low: NonNegative
    mode: NonNegative
    high: NonNegative

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not (self.low <= self.mode <= self.high) or self.low == self.high:
            raise ValueError("needs low <= mode <= high and low < high")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.triangular(self.low, self.mode, self.high))

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.triangular(self.low, self.mode, self.high, size)

    def describe(self) -> str:
        return f"tri({self.low:g}, {self.mode:g}, {self.high:g} d)"


class Empirical(_Distribution):
    """Observed durations, each drawn with equal probability.

    >>> Empirical(days=[6, 7, 8, 11]).mean
    8.0
    """

    dist: Literal["empirical"] = "empirical"
    days: Annotated[list[NonNegative], Field(min_length=1)]

    @property
    def mean(self) -> float:
        return float(sum(self.days) / len(self.days))

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.days[int(rng.integers(len(self.days)))])

    def sample_many(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.asarray(self.days, dtype=float)[rng.integers(len(self.days), size=size)]

    def describe(self) -> str:
        return f"empirical(n={len(self.days)}, mean {self.mean:g} d)"


Duration = Annotated[
    Fixed | Exponential | Lognormal | Triangular | Empirical, Field(discriminator="dist")
]
"""A duration in days, written ``{dist: fixed, days: 7}`` and so on."""
