"""A twin run's figures as people read them: the headline and the KPI tables.

Shared by the offline HTML report (:mod:`cartnet.report.twin_report`) and the
portal's result pages, so both say the same thing with the same numbers: shares in
%, differences in percentage points, a real minus sign, and each estimate with its
95 % confidence interval (bold where it excludes zero), or the reason it has none
(too few events) or why it is a bootstrap interval (skewed values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from cartnet.network.model import Network

Document = dict[str, Any]
EstimateDict = dict[str, Any]

MINUS = "\u2212"
VARIANT_COLORS = (
    "#1f77b4 #d62728 #2ca02c #ff7f0e #9467bd #8c564b #e377c2 #17becf #7f7f7f #bcbd22".split()
)

KPI_ROWS: tuple[tuple[str, str, str], ...] = (
    ("ttt.mean", "Time to treatment, mean (days)", "days"),
    ("ttt.p50", "Time to treatment, median (days)", "days"),
    ("ttt.p90", "Time to treatment, p90 (days)", "days"),
    ("v2v.mean", "Vein-to-vein, mean (days)", "days"),
    ("v2v.p50", "Vein-to-vein, median (days)", "days"),
    ("v2v.p90", "Vein-to-vein, p90 (days)", "days"),
    ("turnaround.mean", "Turnaround (apheresis → delivery), mean (days)", "days"),
    ("turnaround.p50", "Turnaround (apheresis → delivery), median (days)", "days"),
    ("turnaround.p90", "Turnaround (apheresis → delivery), p90 (days)", "days"),
    ("importation.mean", "Import testing and QP certification, mean (days)", "days"),
    ("imported_share", "Therapies imported into the market", "share"),
    ("slot_wait.mean", "Waiting for a slot, mean (days)", "days"),
    ("slot_wait.p90", "Waiting for a slot, p90 (days)", "days"),
    ("enrolled", "Enrolled (cohort)", "count"),
    ("treated", "Treated (cohort)", "count"),
    ("treated_per_year", "Treated per year", "count"),
    ("lost", "Lost (cohort)", "count"),
    ("lost_per_year", "Lost per year", "count"),
    ("in_system", "Still in the pipeline at the end (cohort)", "count"),
    ("lost_share", "Share lost", "share"),
    ("not_infused_share", "Share of apheresed patients not infused", "share"),
    ("oos", "Patients with an OOS batch", "count"),
    ("cross_border_share", "Cross-border shipments", "share"),
    ("cost_per_therapy", "Lane cost per therapy", "money"),
)
"""KPI suffix, row title, unit: the rows of the KPI tables."""

HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("ttt.mean", "time to treatment", "days"),
    ("treated_per_year", "patients treated per year", ""),
    ("lost_per_year", "patients lost per year", ""),
)


class RunContext:
    """A run document with what every view of it asks worked out once."""

    def __init__(self, document: Document, networks: dict[str, Network]) -> None:
        self.doc = document
        self.networks = networks
        self.variants: list[dict[str, Any]] = list(document["variants"])
        self.differences: list[dict[str, Any]] = list(document.get("differences") or [])
        self.labels = [v["label"] for v in self.variants]
        self.colors = {
            label: VARIANT_COLORS[i % len(VARIANT_COLORS)] for i, label in enumerate(self.labels)
        }
        self.settings: dict[str, Any] = dict(document.get("settings") or {})
        self.warmup = float(self.settings.get("warmup_days") or 0.0)
        self.horizon = float(self.settings.get("horizon_days") or 0.0)
        self.years = max(self.horizon - self.warmup, 1e-9) / 365.0
        self.hist_days = int(document.get("histogram_days") or 0)
        first = networks.get(self.labels[0]) or next(iter(networks.values()), None)
        self.first_network = first
        self.currency = first.currency if first is not None else ""
        start = self.settings.get("start")
        if start:
            self.start: date | None = date.fromisoformat(str(start))
        else:
            self.start = first.reference_date if first is not None else None
        self.groups = ["all", *self._markets()]

    def _markets(self) -> list[str]:
        found: set[str] = set()
        for v in self.variants:
            found |= {k.split(".")[0] for k in v["kpis"] if k.endswith(".enrolled")}
        found.discard("all")
        order = [m.id for m in self.first_network.markets] if self.first_network is not None else []
        return [m for m in order if m in found] + sorted(found - set(order))

    def group_name(self, group: str) -> str:
        return "All markets" if group == "all" else group

    def site_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for v in self.variants:
            seen.update(dict.fromkeys(v.get("utilization_weekly") or {}))
        return list(seen)

    def site_name(self, label: str, site_id: str) -> str:
        for net in (self.networks.get(label), self.first_network):
            if net is not None:
                try:
                    return net.site(site_id).name
                except LookupError:
                    continue
        return site_id

    def place_name(self, net: Network, place_id: str) -> str:
        try:
            return net.site(place_id).name
        except LookupError:
            pass
        try:
            return net.center(place_id).name
        except LookupError:
            return place_id


def mean_of(e: EstimateDict | None) -> float | None:
    if not e or e.get("mean") is None:
        return None
    return float(e["mean"])


FLAG_NOTE = (
    "too few events: fewer than five replications differ from the most common value, "
    "so no interval is given; *: values too skewed for the number of replications "
    "(Cochran's rule), the interval is a BCa bootstrap interval."
)
"""What the marks of flagged estimates mean, for a note under the tables."""


def interval(e: EstimateDict | None) -> tuple[float, float] | None:
    """The 95 % interval to show: the bootstrap one for skewed estimates, none for rare ones."""
    if not e or e.get("flag") == "too_few_events":
        return None
    keys = ("boot_low", "boot_high") if e.get("flag") == "skewed" else ("ci_low", "ci_high")
    low, high = e.get(keys[0]), e.get(keys[1])
    if low is None or high is None:
        return None
    return float(low), float(high)


def excludes_zero(e: EstimateDict | None) -> bool:
    bounds = interval(e)
    return bounds is not None and (bounds[0] > 0 or bounds[1] < 0)


# -- numbers as text -------------------------------------------------------------------


def number(x: float | None, unit: str, *, signed: bool = False) -> str:
    """``x`` written for a reader: shares in %, money without cents, a real minus sign."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if unit == "share":
        text = f"{abs(x) * 100:.1f}"
    elif unit == "money":
        text = f"{abs(x):,.0f}"
    else:
        text = f"{abs(x):.1f}"
    if float(text.replace(",", "")) == 0:
        sign = ""
    elif x < 0:
        sign = MINUS
    else:
        sign = "+" if signed else ""
    text = sign + text
    if unit == "share":
        text += " pp" if signed else " %"
    return text


CLIPPED = "†"
CLIPPED_NOTE = (
    f"{CLIPPED} interval clipped to what the figure can be: not below 0, a share not above "
    "100 % (the normal approximation reaches past it with few replications)."
)


def clipped(
    bounds: tuple[float, float], *, share: bool, level: bool
) -> tuple[float, float, str, str]:
    """An interval clipped to what the figure can be, with the marks of the clipped ends: a
    level (not a difference) is never negative, a share never above 100 %."""
    low, high = bounds
    low_mark = high_mark = ""
    if level and low < 0:
        low, low_mark = 0.0, CLIPPED
    if level and share and high > 1:
        high, high_mark = 1.0, CLIPPED
    return low, high, low_mark, high_mark


def cell(e: EstimateDict | None, unit: str, *, signed: bool = False) -> str:
    """``mean [low, high]``, or the mean alone when there is no CI; a level's interval
    clipped (and marked) to the range the figure can take."""
    mean = mean_of(e)
    if mean is None or e is None:
        return "–"
    value = number(mean, unit, signed=signed)
    if e.get("flag") == "too_few_events":
        return f"{value} (too few events)"
    bounds = interval(e)
    if bounds is None:
        return value
    low, high, low_mark, high_mark = clipped(bounds, share=unit == "share", level=not signed)
    mark = "*" if e.get("flag") == "skewed" else ""
    low_text = _strip_unit(number(low, unit, signed=signed)) + low_mark
    high_text = _strip_unit(number(high, unit, signed=signed)) + high_mark
    return f"{value} [{low_text}, {high_text}]{mark}"


def _strip_unit(text: str) -> str:
    for suffix in (" pp", " %"):
        text = text.removesuffix(suffix)
    return text


def with_ci(e: EstimateDict | None, unit: str, *, signed: bool) -> str:
    """``+17.5 days (95% CI +5.0 to +30.0)`` for a headline."""
    mean = mean_of(e)
    if mean is None or e is None:
        return "not available"
    suffix = f" {unit}" if unit else ""
    text = number(mean, "count", signed=signed) + suffix
    bounds = interval(e)
    if e.get("flag") == "too_few_events":
        text += " (no CI: too few events)"
    elif bounds is not None:
        low = number(bounds[0], "count", signed=signed)
        high = number(bounds[1], "count", signed=signed)
        kind = "95% bootstrap CI" if e.get("flag") == "skewed" else "95% CI"
        text += f" ({kind} {low} to {high})"
    else:
        text += " (no CI: too few replications)"
    return text


@dataclass(frozen=True, slots=True)
class Figure:
    """One estimate as text, and whether its 95 % CI excludes zero."""

    text: str
    significant: bool = False


@dataclass(frozen=True, slots=True)
class Headline:
    """A variant (or a variant against the baseline): per market group, its key figures."""

    title: str
    lines: list[tuple[str, list[Figure]]]


@dataclass(frozen=True, slots=True)
class KpiTable:
    """Rows of KPIs by market group, for a variant or a difference between two."""

    caption: str
    scenario: str | None
    policy: str | None
    signed: bool
    groups: list[str]
    rows: list[tuple[str, list[Figure]]]


def headlines(ctx: RunContext) -> list[Headline]:
    """Each difference from the baseline, or the single variant's own figures."""
    if ctx.differences:
        return [
            Headline(
                f"{d['variant']} compared with {d['baseline']}",
                [
                    (
                        ctx.group_name(group),
                        [
                            Figure(f"{name} {with_ci(e, unit, signed=True)}", excludes_zero(e))
                            for key, name, unit in HEADLINE
                            for e in [d["kpis"].get(f"{group}.{key}")]
                        ],
                    )
                    for group in ctx.groups
                ],
            )
            for d in ctx.differences
        ]
    v = ctx.variants[0]
    rows = (*HEADLINE, ("v2v.mean", "vein-to-vein", "days"))
    return [
        Headline(
            v["label"],
            [
                (
                    ctx.group_name(group),
                    [
                        Figure(
                            f"{name} {with_ci(v['kpis'].get(f'{group}.{key}'), unit, signed=False)}"
                        )
                        for key, name, unit in rows
                    ],
                )
                for group in ctx.groups
            ],
        )
    ]


def kpi_tables(ctx: RunContext) -> list[KpiTable]:
    """A table per variant, then one per difference from the baseline."""
    tables = [
        _table(ctx, v["kpis"], v["label"], v.get("scenario"), v.get("policy"), signed=False)
        for v in ctx.variants
    ]
    tables += [
        _table(
            ctx,
            d["kpis"],
            f"Difference: {d['variant']} {MINUS} {d['baseline']}",
            None,
            None,
            signed=True,
        )
        for d in ctx.differences
    ]
    return tables


def _difference(d: dict[str, Any]) -> str:
    return f"Difference: {d['variant']} {MINUS} {d['baseline']}"


def _table(
    ctx: RunContext,
    kpis: dict[str, EstimateDict],
    caption: str,
    scenario: str | None,
    policy: str | None,
    *,
    signed: bool,
) -> KpiTable:
    rows = []
    for key, title, unit in KPI_ROWS:
        name = f"{title} ({ctx.currency})" if unit == "money" and ctx.currency else title
        figures = []
        for group in ctx.groups:
            e = kpis.get(f"{group}.{key}")
            figures.append(Figure(cell(e, unit, signed=signed), signed and excludes_zero(e)))
        rows.append((name, figures))
    groups = [ctx.group_name(g) for g in ctx.groups]
    return KpiTable(caption, scenario, policy, signed, groups, rows)
