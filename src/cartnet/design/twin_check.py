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
    ("all.turnaround.mean", "apheresis to return, mean (d)", "mean_v2v_days"),
    ("all.turnaround.p90", "apheresis to return, p90 (d)", None),
    ("all.ttt.mean", "time to treatment, mean (d)", None),
    ("all.ttt.p90", "time to treatment, p90 (d)", None),
    ("all.slot_wait.mean", "waiting for a slot, mean (d)", None),
    ("all.treated_per_year", "treated per year", "patients_per_year"),
    ("all.lost_per_year", "lost while waiting per year", None),
)


@dataclass
class TwinCheck:
    """The twin's KPIs per variant, with the model's figures where it has one."""

    rows: list[dict[str, Any]]
    document: dict[str, Any]
    networks: dict[str, Network] = field(default_factory=dict)
    utilization: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "utilization": self.utilization, "run": self.document}


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
    approvals = [
        {
            "product": product,
            "regulator": r.value,
            "scope": "commercial",
            "effective": (on - timedelta(days=365)).isoformat(),
        }
        for r in dict.fromkeys(markets.values())
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
) -> TwinCheck:
    """Simulate the design (and its baseline) and set the twin's KPIs beside the model's."""
    settings = settings or TwinSettings(apheresis_days=design.durations.apheresis_days)
    made = policy_factory(policy)
    variants = [Variant(label, net, made) for label, net in design_networks(design, result)]
    aggregates = run_variants(variants, settings, replications, seed)
    results = [VariantResult(v, a) for v, a in zip(variants, aggregates, strict=True)]
    document = run_document(design.name, results, settings, replications, seed, [])
    model = {
        "mean_v2v_days": result.mean_v2v_days,
        "patients_per_year": result.patients * 365 / max(result.horizon_days, 1),
    }
    rows = []
    for key, title, model_key in FIGURES:
        row: dict[str, Any] = {
            "figure": title,
            "key": key,
            "model": None if model_key is None else model.get(model_key),
        }
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
            {"site": s.site, "model": s.utilization, "twin": None if e is None else e["mean"]}
        )
    return TwinCheck(
        rows,
        document,
        {label: v.network for label, v in zip([v.label for v in variants], variants, strict=True)},
        utilization,
    )
