"""cartnet's pipeline and the SimPy reference model of it agree on the key figures.

``benchmarks/simpy_pipeline.py`` writes the same pipeline with SimPy processes and
resources. Both models run the packaged ``kymriah-2020`` network for the same
replications (same seeds, hence the same patients; durations are drawn in a
different order, so the sample paths differ). For each key figure the 95 %
confidence intervals over the replications must overlap: a difference in the
semantics of slots, lines, calendars, QC outcomes or losses would move one of
them by more than its noise.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cartnet.network import Network
from cartnet.twin.kpis import measure
from cartnet.twin.replications import run_replication
from cartnet.twin.settings import TwinSettings
from cartnet.twin.stats import Estimate, estimate

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = TwinSettings(horizon_days=365, warmup_days=60)
REPLICATIONS = 30
SEED = 2020
POLICY = "earliest"


def load_simpy_model() -> ModuleType:
    path = ROOT / "benchmarks" / "simpy_pipeline.py"
    spec = importlib.util.spec_from_file_location("simpy_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def both(kymriah: Network) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-replication scalars of cartnet's pipeline and of the SimPy model."""
    model = load_simpy_model()
    ours: dict[str, list[float]] = {}
    simpy: dict[str, list[float]] = {}
    for r in range(REPLICATIONS):
        a = run_replication(kymriah, POLICY, SETTINGS, SEED, r)
        b = measure(model.run_simpy(kymriah, POLICY, SETTINGS, SEED, r), SETTINGS)
        for key, value in a.scalars.items():
            ours.setdefault(key, []).append(value)
        for key, value in b.scalars.items():
            simpy.setdefault(key, []).append(value)
    return ours, simpy


def overlap(a: Estimate, b: Estimate) -> bool:
    return a.low <= b.high and b.low <= a.high


def busiest_site(scalars: dict[str, list[float]]) -> str:
    keys = [k for k in scalars if k.startswith("site.") and k.endswith(".utilization")]
    return max(keys, key=lambda k: estimate(scalars[k]).mean)


def test_both_models_see_the_same_patients(both: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    """Common random numbers: every replication enrols the same patients in both models."""
    ours, simpy = both
    assert ours["all.enrolled"] == simpy["all.enrolled"]
    assert min(ours["all.enrolled"]) > 1000  # the kymriah network's year, not an empty run


@pytest.mark.slow
@pytest.mark.parametrize(
    "figure", ["all.ttt.mean", "all.v2v.mean", "all.treated", "all.lost", "busiest"]
)
def test_key_figures_agree_within_confidence(both: tuple[dict, dict], figure: str) -> None:  # type: ignore[type-arg]
    """Time to treatment, vein-to-vein, treated, lost and the busiest site's utilization
    have overlapping 95 % confidence intervals in the two models."""
    ours, simpy = both
    key = busiest_site(ours) if figure == "busiest" else figure
    a, b = estimate(ours[key]), estimate(simpy[key])
    assert a.n == b.n == REPLICATIONS
    assert a.half_width > 0 and b.half_width > 0  # replications differ: the check has teeth
    assert overlap(a, b), (
        f"{key}: cartnet {a.mean:.3f} ± {a.half_width:.3f}, SimPy {b.mean:.3f} ± {b.half_width:.3f}"
    )
