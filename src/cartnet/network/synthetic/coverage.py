"""Approvals that make the network whole: two commercial sites per market and product,
and no group of markets short of capacity.

Drawn after sites and centers: ``cover_commercial`` before the demand exists, ``balance``
once it does (it asks ``shortfall`` which demand groups are short).
"""

from __future__ import annotations

from typing import Any

from cartnet.network.entities import Regulator
from cartnet.network.geo import CONTINENT_OF
from cartnet.network.synthetic.demand import site_capacity
from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.shortfall import short_groups
from cartnet.network.synthetic.world import MARKETS, MarketSpec

BALANCE_UTILIZATION = 0.9
"""No group of markets needs its eligible sites above this utilisation (more approvals if so)..."""

BALANCE_SPREAD = 1.2
"""... or above this multiple of the network's utilisation, when that is higher."""

_Group = tuple[str, str, str, str | None]
"""Demand of one product, market, scope and trial."""


def cover_commercial(
    draws: Draws, sites: list[dict[str, Any]], products: list[dict[str, Any]]
) -> None:
    """Approve more sites until every market has 2 eligible commercial sites per product."""
    ref = draws.ref.isoformat()
    for product in products:
        pid = product["id"]
        material = product["starting_material"]
        for m in MARKETS:
            continent = CONTINENT_OF[m.countries[0]]

            def held(s: dict[str, Any], pid: str = pid, m: MarketSpec = m) -> list[Any]:
                return [
                    a
                    for a in s["approvals"]
                    if a["product"] == pid
                    and a["regulator"] == m.regulator.value
                    and a["scope"] == "commercial"
                ]

            eligible = sum(
                1
                for s in sites
                if material in s["starting_materials"]
                and any(a["effective"] <= ref for a in held(s))
            )
            if eligible >= 2:
                continue
            # Candidates, best first: a site that takes the material and has no such
            # approval (nearby ones first), then one whose approval is still pending.
            free = [s for s in sites if material in s["starting_materials"] and not held(s)]
            near = [s for s in free if CONTINENT_OF[s["country"]] == continent]
            far = [s for s in free if CONTINENT_OF[s["country"]] != continent]
            pending = [
                s
                for s in sites
                if material in s["starting_materials"]
                and held(s)
                and all(a["effective"] > ref for a in held(s))
            ]
            others = [s for s in sites if material not in s["starting_materials"]]
            pools = [near, far, pending, others]
            for pool in pools:
                for j in draws.rng.permutation(len(pool)):
                    if eligible >= 2:
                        break
                    s = pool[int(j)]
                    if material not in s["starting_materials"]:
                        s["starting_materials"].append(material)
                    mine = held(s)
                    if mine:
                        mine[0]["effective"] = draws.effective(0.0)
                    else:
                        s["approvals"].append(
                            draws.approval(pid, m.regulator, draws.effective(0.0))
                        )
                    eligible += 1


def balance(
    draws: Draws,
    sites: list[dict[str, Any]],
    centers: list[dict[str, Any]],
    products: list[dict[str, Any]],
) -> None:
    """Approve more sites until the demand fits with no site loaded above a level.

    The level is ``BALANCE_UTILIZATION``, or ``BALANCE_SPREAD`` times the network's
    utilisation when that is higher (a ``patients_per_year`` near or beyond capacity):
    no group of markets is much worse off than the network as a whole. A max-flow from
    demand groups (product, market, scope, trial) to the sites eligible for them on the
    reference date; while it cannot carry all the demand, the groups on the source
    side of the minimum cut are short of capacity, and one of them gets an approval at
    a site outside their reach.
    """
    ref = draws.ref.isoformat()
    material = {p["id"]: p["starting_material"] for p in products}
    regulator = {m.id: m.regulator.value for m in MARKETS}
    demand: dict[_Group, int] = {}
    for c in centers:
        for d in c["demand"]:
            key = (d["product"], c["market"], d["scope"], d.get("trial"))
            demand[key] = demand.get(key, 0) + round(d["patients_per_year"] * 10)
    groups = sorted(k for k, v in demand.items() if v > 0)
    full = [site_capacity(s, products) * 10 for s in sites]
    level = max(BALANCE_UTILIZATION, BALANCE_SPREAD * sum(demand.values()) / sum(full))
    capacity = [int(level * c) for c in full]

    def matches(a: dict[str, Any], g: _Group) -> bool:
        return (
            a["product"] == g[0]
            and a["regulator"] == regulator[g[1]]
            and a["scope"] == g[2]
            and a.get("trial") == g[3]
        )

    market_of = {m.regulator.value: m.id for m in MARKETS}
    for _ in range(4 * len(sites) * max(1, len(groups))):
        in_force: dict[_Group, list[int]] = {}
        for j, s in enumerate(sites):
            for a in s["approvals"]:
                if a["effective"] <= ref and material[a["product"]] in s["starting_materials"]:
                    key = (a["product"], market_of[a["regulator"]], a["scope"], a.get("trial"))
                    in_force.setdefault(key, []).append(j)
        eligible = [in_force.get(g, []) for g in groups]
        short = short_groups([demand[g] for g in groups], eligible, capacity)
        if not short:
            return
        reach = {j for i in short for j in eligible[i]}
        outside = [j for j in range(len(sites)) if j not in reach]
        if not outside:
            return  # the whole network is loaded above BALANCE_UTILIZATION
        weights = [demand[groups[i]] for i in short]
        g = groups[short[draws.pick(len(short), weights)]]
        continent = CONTINENT_OF[next(m for m in MARKETS if m.id == g[1]).countries[0]]
        takes = [j for j in outside if material[g[0]] in sites[j]["starting_materials"]]
        near = [j for j in takes if CONTINENT_OF[sites[j]["country"]] == continent]
        pool = near or takes or outside
        site = sites[pool[draws.pick(len(pool))]]
        if material[g[0]] not in site["starting_materials"]:
            site["starting_materials"].append(material[g[0]])
        held = [a for a in site["approvals"] if matches(a, g)]
        if held:  # pending: it takes effect earlier
            held[0]["effective"] = draws.effective(0.0)
        else:
            site["approvals"].append(
                draws.approval(g[0], Regulator(regulator[g[1]]), draws.effective(0.0), g[3])
            )
