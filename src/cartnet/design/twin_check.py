"""A chosen design, checked by the digital twin: the simulated KPIs beside the model's.

The design model is deterministic and sees the demand of one horizon; the twin
adds what it leaves out (random arrivals, durations and transit, failed batches,
patients lost while waiting, its booking policy). The design becomes a network
through the network's own scenario mechanism:

* with ``twin.network`` in the design (e.g. kymriah-2020): the base network with
  its demand scaled (``scale_demand``) is the baseline; the design adds
  ``set_lines`` for each chosen size of a network site, ``remove_site`` for a
  network site left closed, and ``add_site`` (with approvals for its markets) for
  a new one;
* otherwise (e.g. an i-SHIPMENT instance) a network is built from the design
  file: one product, a market per center market, the chosen sites with fixed
  manufacturing and QC days, lanes with the design's transit days (the mode most
  of the pair's patients use), demand at the design's rate. It is the only variant.

The model's vein-to-vein time (apheresis to the product's return) compares with
the twin's ``turnaround`` (apheresis to delivery); the twin's ``v2v`` adds the
infusion days.

The check measures the model's own days (``check_settings``): the twin starts a
warm-up before day 0 and its cohort is the patients enrolled on the horizon's
days, so the approvals in force and the demand are the model's. ``disagreements``
lists the figures where the twin contradicts the model (which plans no slot wait
and nobody lost) beyond a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cartnet.design.model import DesignInput
from cartnet.design.solve import DesignResult
from cartnet.network.catalog import open_network
from cartnet.network.entities import Regulator
from cartnet.network.model import Network
from cartnet.network.scenario import Scenario
from cartnet.schedule.policies import policy_factory
from cartnet.twin.replications import Variant, run_variants
from cartnet.twin.results import VariantResult, run_document
from cartnet.twin.settings import TwinSettings

REFERENCE_DATE = date(2024, 1, 1)
"""Reference date of a network built from a design file (only day counts matter)."""

FIGURES = (
    ("all.turnaround.mean", "apheresis to return, mean (d)"),
    ("all.turnaround.p90", "apheresis to return, p90 (d)"),
    ("all.ttt.mean", "time to treatment, mean (d)"),
    ("all.ttt.p90", "time to treatment, p90 (d)"),
    ("all.slot_wait.mean", "waiting for a slot, mean (d)"),
    ("all.treated_per_year", "treated per year"),
    ("all.lost_per_year", "lost while waiting per year"),
)

WARMUP_DAYS = 90.0
"""Days simulated before the model's horizon so the twin's queues are not empty on day 0."""

TOLERANCE = 0.10
"""Relative gap between the twin's mean and the model's figure beyond which it is flagged."""

_FLOOR = {"days": 1.0, "per_year": 0.02, "utilization": 0.05}
"""Absolute part of the tolerance: days, share of the model's patients a year, share."""


@dataclass
class TwinCheck:
    """The twin's KPIs per variant, with the model's figures and where the two disagree."""

    rows: list[dict[str, Any]]
    document: dict[str, Any]
    networks: dict[str, Network] = field(default_factory=dict)
    utilization: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    """Figures where the designed network's twin mean contradicts the model."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "utilization": self.utilization,
            "flags": self.flags,
            "run": self.document,
        }


def start_date(design: DesignInput) -> date:
    """Day 0 of the design's horizon: the base network's reference date, or REFERENCE_DATE."""
    if design.twin is not None:
        return open_network(design.twin.network).reference_date
    return REFERENCE_DATE


def check_settings(design: DesignInput, warmup_days: float = WARMUP_DAYS) -> TwinSettings:
    """Twin settings that measure the model's own horizon, after a warm-up before it.

    The twin starts ``warmup_days`` before day 0 of the design and its cohort is the
    patients enrolled on days 0 to ``horizon_days − 1``: the same calendar days, so
    the same approvals in force and the same demand, as the model plans.
    """
    if not 0 <= warmup_days <= 365:
        raise ValueError(f"the warm-up must be 0 to 365 days (got {warmup_days:g})")
    return TwinSettings(
        start=start_date(design) - timedelta(days=math.ceil(warmup_days)),
        horizon_days=math.ceil(warmup_days) + design.horizon_days,
        warmup_days=math.ceil(warmup_days),
        apheresis_days=design.durations.apheresis_days,
    )


def model_figures(result: DesignResult, settings: TwinSettings) -> dict[str, float | None]:
    """What the model claims for each twin figure: no slot wait, nobody lost, its v2v days."""
    if result.mean_v2v_days is None:
        return {}
    days = sorted(result.v2v_histogram)
    weights = [result.v2v_histogram[k] for k in days]
    total = sum(weights)
    p90 = None
    if total > 0:
        running = 0.0
        for k, w in zip(days, weights, strict=True):
            running += w
            if running >= 0.9 * total - 1e-9:
                p90 = float(k)
                break
    infusion = settings.infusion_days
    return {
        "all.turnaround.mean": result.mean_v2v_days,
        "all.turnaround.p90": p90,
        "all.ttt.mean": result.mean_v2v_days + infusion,
        "all.ttt.p90": None if p90 is None else p90 + infusion,
        "all.slot_wait.mean": 0.0,
        "all.treated_per_year": result.patients * 365 / max(result.horizon_days, 1),
        "all.lost_per_year": 0.0,
    }


def disagreements(
    rows: list[dict[str, Any]],
    utilization: list[dict[str, Any]],
    label: str,
    tolerance: float = TOLERANCE,
) -> list[dict[str, Any]]:
    """Figures where the twin (variant ``label``) contradicts the model.

    A figure is flagged when the model's value lies outside the twin's 95 % interval
    widened by the tolerance: ``tolerance`` × the model's value, at least 1 day for
    days, 2 % of the model's patients a year for counts, 5 points for utilization.
    """
    per_year = next(
        (r["model"] for r in rows if r["key"] == "all.treated_per_year" and r["model"]), 0.0
    )
    found = []
    checks = [
        (r["figure"], r["key"], r["model"], r.get(label)) for r in rows if r["model"] is not None
    ]
    checks += [
        (f"utilization of {u['site']}", f"site.{u['site']}.utilization", u["model"], u.get("est"))
        for u in utilization
    ]
    for figure, key, model, twin in checks:
        if not twin or twin.get("mean") is None:
            continue
        if key.endswith("per_year"):
            floor = _FLOOR["per_year"] * per_year
        elif key.endswith("utilization"):
            floor = _FLOOR["utilization"]
        else:
            floor = _FLOOR["days"]
        allowed = max(tolerance * abs(model), floor)
        low = (twin.get("ci_low") if twin.get("ci_low") is not None else twin["mean"]) - allowed
        high = (twin.get("ci_high") if twin.get("ci_high") is not None else twin["mean"]) + allowed
        if not low <= model <= high:
            found.append(
                {
                    "figure": figure,
                    "key": key,
                    "model": round(float(model), 4),
                    "twin": twin["mean"],
                    "ci_low": twin.get("ci_low"),
                    "ci_high": twin.get("ci_high"),
                    "tolerance": round(allowed, 4),
                }
            )
    return found


def design_networks(design: DesignInput, result: DesignResult) -> list[tuple[str, Network]]:
    """(label, network) to simulate: the baseline (when there is one), then the design."""
    if not result.sites:
        raise ValueError("the design has no chosen sites to simulate (it was not solved)")
    if design.twin is not None:
        return _on_base_network(design, result)
    return [("design", _from_design(design, result))]


def _on_base_network(design: DesignInput, result: DesignResult) -> list[tuple[str, Network]]:
    assert design.twin is not None
    net = open_network(design.twin.network)
    scale: list[dict[str, Any]] = []
    if abs(design.twin.demand_scale - 1) > 1e-12:
        scale = [{"op": "scale_demand", "factor": design.twin.demand_scale}]
    chosen = {s.site: s for s in result.sites}
    changes: list[dict[str, Any]] = list(scale)
    regulators = {m.id: m.regulator for m in net.markets}
    for c in design.candidates:
        if c.network_site is not None:
            if c.id in chosen:
                changes.append(
                    {"op": "set_lines", "site": c.network_site, "lines": chosen[c.id].lines}
                )
            else:
                changes.append({"op": "remove_site", "site": c.network_site})
        elif c.id in chosen:
            site = _site(
                design,
                c.id,
                chosen[c.id].lines,
                net.products[0].id,
                {m: regulators[m] for m in (c.markets or regulators)},
                net.reference_date,
            )
            changes.append({"op": "add_site", "site": site})
    base_label = f"as is, demand x{design.twin.demand_scale:g}"
    base = (
        net.applying(Scenario.model_validate({"id": "demand", "changes": scale})) if scale else net
    )
    designed = net.applying(Scenario.model_validate({"id": "design", "changes": changes}))
    return [(base_label, base), (f"design, demand x{design.twin.demand_scale:g}", designed)]


def _site(
    design: DesignInput,
    candidate: str,
    lines: int,
    product: str,
    markets: dict[str, Regulator],
    on: date,
) -> dict[str, Any]:
    c = next(x for x in design.candidates if x.id == candidate)
    if c.country is None:
        raise ValueError(f"candidate {c.id}: the twin check needs its country")
    first: dict[Regulator, int] = {}
    for m, r in markets.items():
        first[r] = min(first.get(r, 10**6), design.first_day(c, m))
    approvals = [
        {
            "product": product,
            "regulator": r.value,
            "scope": "commercial",
            # in force from the design's day (a year before day 0: from the start)
            "effective": (on + timedelta(days=day if day > 0 else -400)).isoformat(),
        }
        for r, day in first.items()
    ]
    return {
        "id": c.id,
        "name": c.name or c.id,
        "operator": {"name": "design", "kind": "owned"},
        "city": c.city or c.name or c.id,
        "country": c.country,
        "lat": c.lat,
        "lon": c.lon,
        "lines": lines,
        "manufacturing": {"dist": "fixed", "days": design.manufacturing_days(c)},
        "qc": {"dist": "fixed", "days": design.qc_days(c)},
        "approvals": approvals,
        "assumption": "opened by cartnet design",
    }


def _from_design(design: DesignInput, result: DesignResult) -> Network:
    markets: dict[str, set[str]] = {}
    for i, c in enumerate(design.centers):
        if c.country is None:
            raise ValueError(f"centers[{i}] ({c.id}): the twin check needs its country")
        markets.setdefault(c.market, set()).add(c.country)
    owner: dict[str, str] = {}
    for m, countries in markets.items():
        for country in countries:
            if country in owner:
                raise ValueError(
                    f"country {country} is in markets {owner[country]!r} and {m!r}; "
                    "the twin needs one market per country"
                )
            owner[country] = m
    regulators = list(Regulator)
    if len(markets) > len(regulators):
        raise ValueError(f"the twin check handles at most {len(regulators)} markets")
    reg = {m: regulators[i] for i, m in enumerate(sorted(markets))}
    product = "car-t"
    oos = 1 - 1 / design.batches_per_patient
    sites = []
    for s in result.sites:
        cand = next(x for x in design.candidates if x.id == s.site)
        served = {m: reg[m] for m in (cand.markets or reg) if m in reg}
        sites.append(_site(design, s.site, s.lines, product, served, REFERENCE_DATE))
    centers = []
    for c in design.centers:
        arrivals = design.daily_arrivals(c)
        per_year = float(arrivals.sum()) * 365 / design.horizon_days
        centers.append(
            {
                "id": c.id,
                "name": c.name or c.id,
                "market": c.market,
                "city": c.city or c.name or c.id,
                "country": c.country,
                "lat": c.lat,
                "lon": c.lon,
                "products": [product],
                "apheresis_per_day": max(1, math.ceil(float(arrivals.max(initial=0)) * 3)),
                "demand": [{"product": product, "patients_per_year": round(per_year, 6)}],
            }
        )
    lanes = []
    by_pair: dict[tuple[str, str], dict[str, Any]] = {}
    for f in result.flows:
        key = (f["center"], f["site"])
        if key not in by_pair or f["patients"] > by_pair[key]["patients"]:
            by_pair[key] = f
    days = {m.id: m.transit_days for m in design.modes}
    fastest = min(design.modes, key=lambda m: m.transit_days).id
    for c in design.centers:
        for s in result.sites:
            used = by_pair.get((c.id, s.site))
            out_mode = used["out_mode"] if used else fastest
            back_mode = used["back_mode"] if used else fastest
            for origin, dest, mode in ((c.id, s.site, out_mode), (s.site, c.id, back_mode)):
                lanes.append(
                    {
                        "origin": origin,
                        "destination": dest,
                        "transit": {
                            "dist": "fixed",
                            "days": _lane_days(design, c.id, s.site, mode, days),
                        },
                        "both_ways": False,
                    }
                )
    return Network.model_validate(
        {
            "name": design.name,
            "reference_date": REFERENCE_DATE.isoformat(),
            "currency": design.currency,
            "products": [{"id": product, "name": "CAR-T therapy", "oos_probability": oos}],
            "markets": [
                {"id": m, "name": m, "regulator": reg[m].value, "countries": sorted(cs)}
                for m, cs in sorted(markets.items())
            ],
            "sites": sites,
            "treatment_centers": centers,
            "lanes": lanes,
            "assumption": "built from a design file by cartnet design --simulate",
        }
    )


def _lane_days(design: DesignInput, center: str, site: str, mode: str, days: dict[str, int]) -> int:
    for lane in design.lanes:
        if (lane.center, lane.site, lane.mode) == (center, site, mode) and lane.transit_days:
            return lane.transit_days
    return days[mode]


def twin_check(
    design: DesignInput,
    result: DesignResult,
    *,
    replications: int = 10,
    seed: int = 2020,
    settings: TwinSettings | None = None,
    policy: str = "earliest",
    baseline: bool = True,
    tolerance: float = TOLERANCE,
) -> TwinCheck:
    """Simulate the design (and its baseline) and set the twin's KPIs beside the model's.

    ``settings`` default to ``check_settings``: the model's horizon after a warm-up.
    The same ``seed`` gives every call the same patients (common random numbers).
    """
    settings = settings or check_settings(design)
    networks = design_networks(design, result)
    if not baseline:
        networks = networks[-1:]
    made = policy_factory(policy)
    variants = [Variant(label, net, made) for label, net in networks]
    aggregates = run_variants(variants, settings, replications, seed)
    results = [VariantResult(v, a) for v, a in zip(variants, aggregates, strict=True)]
    document = run_document(design.name, results, settings, replications, seed, [])
    model = model_figures(result, settings)
    rows = []
    for key, title in FIGURES:
        row: dict[str, Any] = {"figure": title, "key": key, "model": model.get(key)}
        for v in document["variants"]:
            e = v["kpis"].get(key)
            row[v["label"]] = None if e is None else e
        rows.append(row)
    utilization = []
    designed = document["variants"][-1]
    for s in result.sites:
        sites = [x for x in design.candidates if x.id == s.site]
        sid = sites[0].network_site or s.site if sites else s.site
        e = designed["kpis"].get(f"site.{sid}.utilization")
        utilization.append(
            {
                "site": s.site,
                "model": s.utilization,
                "twin": None if e is None else e["mean"],
                "est": e,
            }
        )
    flags = disagreements(rows, utilization, designed["label"], tolerance)
    for u in utilization:
        u.pop("est")
    return TwinCheck(
        rows,
        document,
        {label: v.network for label, v in zip([v.label for v in variants], variants, strict=True)},
        utilization,
        flags,
    )
