"""Key figures of one replication, and their aggregation over many.

Time figures (vein-to-vein, manufacturing turnaround, time to treatment) cover the
cohort of patients enrolled between the end of the warm-up and the horizon, so the
warm-up never enters the statistics; the run goes on after the horizon until that
cohort is treated or lost (or the drain ends). Only summaries leave a replication:
arrays are summed as they arrive, and only the per-replication scalars (a few KB
each, needed for confidence intervals and paired differences) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cartnet.twin.pipeline import DONE, RunRecord
from cartnet.twin.settings import TwinSettings
from cartnet.twin.stats import Estimate, estimate

HIST_DAYS = 240
"""Histograms of day-valued figures use 1-day bins from 0 to this many days."""

TIME_FIGURES = ("v2v", "turnaround", "ttt", "slot_wait")
"""Vein-to-vein, apheresis to delivery, enrolment to infusion, enrolment to call."""


@dataclass
class ReplicationKPIs:
    scalars: dict[str, float]
    histograms: dict[str, np.ndarray]
    utilization_weekly: dict[str, np.ndarray]
    backlog_daily: np.ndarray
    events: int
    flows: dict[tuple[str, str], int] = field(default_factory=dict)


def measure(record: RunRecord, settings: TwinSettings) -> ReplicationKPIs:
    warm, horizon = settings.warmup_days, settings.horizon_days
    cohort = [o for o in record.orders if warm <= o.enrolled < horizon]
    years = (horizon - warm) / 365.0
    scalars: dict[str, float] = {}
    histograms: dict[str, np.ndarray] = {}
    flows: dict[tuple[str, str], int] = {}
    groups: dict[str, list] = {"all": cohort}  # type: ignore[type-arg]
    for o in cohort:
        groups.setdefault(o.stream.market, []).append(o)
    for name, orders in groups.items():
        treated = [o for o in orders if o.infused is not None]
        lost = [o for o in orders if o.lost_at is not None]
        scalars[f"{name}.enrolled"] = len(orders)
        scalars[f"{name}.treated"] = len(treated)
        scalars[f"{name}.lost"] = len(lost)
        scalars[f"{name}.in_system"] = sum(1 for o in orders if o.stage != DONE)
        scalars[f"{name}.treated_per_year"] = len(treated) / years
        scalars[f"{name}.lost_per_year"] = len(lost) / years
        scalars[f"{name}.lost_share"] = len(lost) / len(orders) if orders else np.nan
        apheresed = [
            o for o in orders if o.apheresis is not None and (o.lost_at or np.inf) >= o.apheresis
        ]
        scalars[f"{name}.not_infused_share"] = (
            sum(1 for o in apheresed if o.lost_at is not None) / len(apheresed)
            if apheresed
            else np.nan
        )  # the real-world "apheresed but not infused" figure
        imported = [o.importation_days for o in treated if o.importation_days is not None]
        scalars[f"{name}.imported_share"] = len(imported) / len(treated) if treated else np.nan
        scalars[f"{name}.importation.mean"] = float(np.mean(imported)) if imported else np.nan
        scalars[f"{name}.oos"] = sum(1 for o in orders if o.oos > 0)
        scalars[f"{name}.oos_released"] = sum(1 for o in orders if o.oos_released)
        shipped = [o for o in orders if o.apheresis is not None and o.site is not None]
        scalars[f"{name}.cross_border_share"] = (
            sum(o.cross_border for o in shipped) / len(shipped) if shipped else np.nan
        )
        scalars[f"{name}.cost_per_therapy"] = (
            sum(o.cost for o in orders) / len(treated) if treated else np.nan
        )
        values = {
            "v2v": [o.infused - o.apheresis for o in treated],
            "turnaround": [o.delivered - o.apheresis for o in treated],
            "ttt": [o.infused - o.enrolled for o in treated],
            "slot_wait": [o.called - o.enrolled for o in orders if o.called is not None],
        }
        for figure, xs in values.items():
            arr = np.asarray(xs, dtype=float)
            if len(arr):
                scalars[f"{name}.{figure}.mean"] = float(arr.mean())
                p50, p90 = np.percentile(arr, [50, 90])
                scalars[f"{name}.{figure}.p50"] = float(p50)
                scalars[f"{name}.{figure}.p90"] = float(p90)
            else:
                for stat in ("mean", "p50", "p90"):
                    scalars[f"{name}.{figure}.{stat}"] = np.nan
            histograms[f"{name}.{figure}"] = np.bincount(
                np.clip(arr.astype(int), 0, HIST_DAYS), minlength=HIST_DAYS + 1
            )
    for o in cohort:
        if o.site is not None and o.apheresis is not None:
            key = (o.center, o.site.id)
            flows[key] = flows.get(key, 0) + 1
    first_week = int(warm // 7)
    utilization: dict[str, np.ndarray] = {}
    for sid, site in record.sites.items():
        capacity = max(site.lines, 1) * 7.0
        weekly = site.busy / capacity
        utilization[sid] = weekly
        steady = weekly[first_week:]
        scalars[f"site.{sid}.utilization"] = float(steady.mean()) if len(steady) else np.nan
    backlog = record.backlog_daily
    scalars["all.backlog.mean"] = float(backlog[int(warm) :].mean())
    return ReplicationKPIs(scalars, histograms, utilization, backlog, record.events, flows)


class Aggregate:
    """Running aggregation of replications: per-replication scalars, summed arrays."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[float]] = {}
        self.histograms: dict[str, np.ndarray] = {}
        self.utilization: dict[str, np.ndarray] = {}
        self.backlog: np.ndarray | None = None
        self.flows: dict[tuple[str, str], int] = {}
        self.replications = 0
        self.events = 0

    def add(self, k: ReplicationKPIs) -> None:
        n = self.replications
        for key in set(self.scalars) | set(k.scalars):
            column = self.scalars.setdefault(key, [np.nan] * n)
            column.append(k.scalars.get(key, np.nan))
        for key, h in k.histograms.items():
            self.histograms[key] = self.histograms.get(key, 0) + h
        for key, u in k.utilization_weekly.items():
            self.utilization[key] = self.utilization.get(key, 0) + u
        self.backlog = (
            k.backlog_daily.copy() if self.backlog is None else self.backlog + k.backlog_daily
        )
        for pair, v in k.flows.items():
            self.flows[pair] = self.flows.get(pair, 0) + v
        self.replications += 1
        self.events += k.events

    def estimate(self, key: str) -> Estimate:
        return estimate(self.scalars.get(key, []))

    def estimates(self) -> dict[str, Estimate]:
        return {key: estimate(v) for key, v in sorted(self.scalars.items())}

    def mean_utilization(self) -> dict[str, np.ndarray]:
        return {k: v / max(self.replications, 1) for k, v in self.utilization.items()}

    def mean_backlog(self) -> np.ndarray:
        if self.backlog is None:
            return np.zeros(0)
        return self.backlog / max(self.replications, 1)
