"""Many replications of the pipeline, serially or on any executor it is given (worker
processes or Dask: see :mod:`cartnet.executors`).

Replication ``r`` of a run with seed ``s`` always draws from
``SeedSequence(s, spawn_key=(r,))``: one stream for the patients (arrivals, loss
times, QC draws) and one for durations. So the same seed gives the same results
serially or in parallel, and every variant of a comparison sees the same
patients (common random numbers). Replications travel in batches so one task
runs long enough to pay for its dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass

import numpy as np

from cartnet.network.model import Network
from cartnet.twin.kpis import Aggregate, ReplicationKPIs, measure
from cartnet.twin.pipeline import Pipeline
from cartnet.twin.policies import PolicyFactory, make_policy, policy_name
from cartnet.twin.settings import TwinSettings

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Variant:
    """One arm of a run: a network (scenario applied) under a booking policy (the name of
    one of the twin's own, or a factory: see :data:`cartnet.twin.policies.PolicyFactory`)."""

    label: str
    network: Network
    policy: str | PolicyFactory

    @property
    def policy_name(self) -> str:
        return policy_name(self.policy)


def generators(seed: int, replication: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The patient stream and the duration stream of one replication."""
    patients, durations = np.random.SeedSequence(seed, spawn_key=(replication,)).spawn(2)
    return np.random.default_rng(patients), np.random.default_rng(durations)


def run_replication(
    network: Network,
    policy: str | PolicyFactory,
    settings: TwinSettings,
    seed: int,
    replication: int,
) -> ReplicationKPIs:
    patients, durations = generators(seed, replication)
    pipeline = Pipeline(network, make_policy(policy), settings, patients, durations)
    return measure(pipeline.run(), settings)


def _run_batch(
    variants: Sequence[Variant], settings: TwinSettings, seed: int, replications: Sequence[int]
) -> list[tuple[int, int, ReplicationKPIs]]:
    return [
        (v, r, run_replication(variant.network, variant.policy, settings, seed, r))
        for r in replications
        for v, variant in enumerate(variants)
    ]


def batches(n: int, workers: int) -> list[list[int]]:
    """Split replications 0..n-1 into about four batches per worker."""
    size = max(1, -(-n // max(1, workers * 4)))
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


def run_variants(
    variants: Sequence[Variant],
    settings: TwinSettings,
    replications: int,
    seed: int,
    executor: Executor | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> list[Aggregate]:
    """Aggregates per variant, replications added in index order whatever the executor."""
    aggregates = [Aggregate() for _ in variants]
    total = replications * len(variants)
    done = 0
    pending: dict[int, dict[int, ReplicationKPIs]] = {}
    next_rep = 0

    def absorb(results: list[tuple[int, int, ReplicationKPIs]]) -> None:
        nonlocal done, next_rep
        for v, r, kpis in results:
            pending.setdefault(r, {})[v] = kpis
            done += 1
        while next_rep in pending and len(pending[next_rep]) == len(variants):
            for v, kpis in sorted(pending.pop(next_rep).items()):
                aggregates[v].add(kpis)
            next_rep += 1
        if progress:
            progress(done, total)

    if executor is None:
        for r in range(replications):
            absorb(_run_batch(variants, settings, seed, [r]))
    else:
        futures: list[Future[list[tuple[int, int, ReplicationKPIs]]]] = [
            executor.submit(_run_batch, variants, settings, seed, batch)
            for batch in batches(replications, workers)
        ]
        for future in as_completed(futures):
            absorb(future.result())
    return aggregates
