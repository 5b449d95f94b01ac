"""Same seed, same results: serially, in worker processes and on a Dask cluster."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from cartnet.network import Network
from cartnet.twin.kpis import Aggregate
from cartnet.twin.replications import Variant, batches, run_replication, run_variants
from cartnet.twin.settings import TwinSettings

SHORT = TwinSettings(horizon_days=150, warmup_days=30, drain_days=60)


def scalars(aggs: list[Aggregate]) -> list[dict[str, list[float]]]:
    return [a.scalars for a in aggs]


def same(a: list[Aggregate], b: list[Aggregate]) -> None:
    for x, y in zip(scalars(a), scalars(b), strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_same_seed_same_replication(example: Network) -> None:
    a = run_replication(example, "earliest", SHORT, seed=9, replication=2)
    b = run_replication(example, "earliest", SHORT, seed=9, replication=2)
    c = run_replication(example, "earliest", SHORT, seed=9, replication=3)
    assert a.scalars == b.scalars
    assert a.scalars != c.scalars


def test_worker_processes_match_the_serial_run(example: Network) -> None:
    variants = [Variant("base", example, "earliest")]
    serial = run_variants(variants, SHORT, replications=6, seed=4)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = run_variants(variants, SHORT, replications=6, seed=4, executor=pool, workers=2)
    same(serial, parallel)


def test_dask_local_cluster_matches_the_serial_run(example: Network) -> None:
    """A real dask.distributed LocalCluster gives exactly the serial results."""
    distributed = pytest.importorskip("distributed")  # the optional extra, installed by dev
    variants = [
        Variant("base", example, "earliest"),
        Variant("nearest", example, "nearest"),
    ]
    serial = run_variants(variants, SHORT, replications=4, seed=8)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl,
        distributed.Client(cl) as client,
    ):
        on_dask = run_variants(
            variants, SHORT, replications=4, seed=8, executor=client.get_executor(), workers=2
        )
    same(serial, on_dask)


def test_variants_share_their_patients(example: Network) -> None:
    """Common random numbers: every scenario sees the same enrolments in a replication."""
    variants = [
        Variant("base", example, "earliest"),
        Variant("less", example.with_scenario("no-leiden-commercial"), "earliest"),
    ]
    base, less = run_variants(variants, SHORT, replications=3, seed=1)
    assert base.scalars["all.enrolled"] == less.scalars["all.enrolled"]
    assert base.scalars["all.ttt.mean"] != less.scalars["all.ttt.mean"]


def test_batches_cover_every_replication_once() -> None:
    for n, workers in [(1, 2), (7, 2), (100, 2), (1000, 8)]:
        got = [r for b in batches(n, workers) for r in b]
        assert got == list(range(n))
        assert len(batches(n, workers)) <= 4 * workers
