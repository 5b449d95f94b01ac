"""The outcome of a twin run as data: per-variant KPIs with CIs, and paired differences.

This is what ``cartnet simulate --json`` / ``cartnet compare --json`` print
(schema ``cartnet.twin-run/1``, documented in ``docs/reference/twin-json.md``)
and what the HTML report draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cartnet.network import Network
from cartnet.twin.kpis import HIST_DAYS, Aggregate
from cartnet.twin.pipeline import unserved_streams
from cartnet.twin.replications import Variant
from cartnet.twin.settings import TwinSettings
from cartnet.twin.stats import estimate

SCHEMA = "cartnet.twin-run/1"


@dataclass
class VariantResult:
    variant: Variant
    aggregate: Aggregate

    @property
    def label(self) -> str:
        return self.variant.label


def paired_difference(base: Aggregate, other: Aggregate, key: str) -> dict[str, Any]:
    """Mean of (other − base) over replications that share their random numbers, with its CI."""
    a = np.asarray(base.scalars.get(key, []), dtype=float)
    b = np.asarray(other.scalars.get(key, []), dtype=float)
    n = min(len(a), len(b))
    return estimate(b[:n] - a[:n]).as_dict()


def run_document(
    network_name: str,
    results: list[VariantResult],
    settings: TwinSettings,
    replications: int,
    seed: int,
    warnings: list[str],
) -> dict[str, Any]:
    """The JSON document of a run; the first variant is the baseline of the differences."""
    variants = []
    for r in results:
        agg = r.aggregate
        variants.append(
            {
                "label": r.label,
                "scenario": r.variant.network.applied_scenario,
                "policy": r.variant.policy_name,
                "kpis": {k: e.as_dict() for k, e in agg.estimates().items()},
                "utilization_weekly": {
                    k: np.round(v, 4).tolist() for k, v in agg.mean_utilization().items()
                },
                "backlog_daily": np.round(agg.mean_backlog(), 3).tolist(),
                "histograms": {k: v.tolist() for k, v in sorted(agg.histograms.items())},
                "flows": [
                    {"center": c, "site": s, "patients_per_replication": round(n / replications, 3)}
                    for (c, s), n in sorted(agg.flows.items())
                ],
                "events": agg.events,
            }
        )
    differences = []
    base = results[0] if results else None
    for r in results[1:]:
        assert base is not None
        keys = sorted(set(base.aggregate.scalars) | set(r.aggregate.scalars))
        differences.append(
            {
                "baseline": base.label,
                "variant": r.label,
                "kpis": {k: paired_difference(base.aggregate, r.aggregate, k) for k in keys},
            }
        )
    start = settings.start or (results[0].variant.network.reference_date if results else None)
    markets = sorted(
        {k.split(".")[0] for r in results for k in r.aggregate.scalars if k.endswith(".enrolled")}
        - {"all"}
    )
    return {
        "schema": SCHEMA,
        "network": network_name,
        "start": start.isoformat() if start else None,
        "markets": markets,
        "replications": replications,
        "seed": seed,
        "settings": settings.model_dump(mode="json"),
        "histogram_days": HIST_DAYS,
        "variants": variants,
        "differences": differences,
        "warnings": warnings,
    }


def unserved_warnings(networks: list[Network], settings: TwinSettings) -> list[str]:
    """Demand that no site may serve, once per stream: those patients wait and are lost."""
    found = []
    for net in networks:
        for st in unserved_streams(net, settings):
            where = f" (scenario {net.applied_scenario})" if net.applied_scenario else ""
            trial = f", trial {st.trial}" if st.trial else ""
            found.append(
                f"no site may serve {st.product} {st.scope}{trial} patients of market "
                f"{st.market} at center {st.center}{where}; they will wait and be lost"
            )
    return list(dict.fromkeys(found))
