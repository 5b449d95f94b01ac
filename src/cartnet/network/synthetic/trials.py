"""Clinical trials: which centers take part, and the clinical approvals of their sites."""

from __future__ import annotations

from typing import Any

import numpy as np

from cartnet.network.synthetic.draws import Draws
from cartnet.network.synthetic.world import MARKETS

TRIAL_PATIENTS = 60.0
"""Clinical patients a year per synthetic trial (the number of trials follows from it)."""

TRIAL_LINES = 6
"""Lines that the sites approved for a trial in one market have at least, between them."""

Trial = tuple[str, str, list[dict[str, Any]]]
"""(trial id, product, participating centers)."""


def draw_trials(
    draws: Draws,
    n_sites: int,
    sites: list[dict[str, Any]],
    centers: list[dict[str, Any]],
    products: list[dict[str, Any]],
    patients: float,
) -> list[Trial]:
    """Clinical trials: (trial id, product, participating centers); approves their sites.

    About ``TRIAL_PATIENTS`` a year per trial, at 2-8 centers in each of 1-3 markets.
    In each trial market, sites with at least ``TRIAL_LINES`` lines between them are
    approved before the reference date (sites of that market first), and sometimes one
    more site from a later date.
    """
    trials = []
    by_market: dict[str, list[dict[str, Any]]] = {m.id: [] for m in MARKETS}
    for c in centers:
        by_market[c["market"]].append(c)
    with_centers = [m for m in MARKETS if by_market[m.id]]
    weights = np.asarray([m.demand_weight for m in with_centers])
    n_trials = max(1, min(2 * n_sites, round(patients / TRIAL_PATIENTS)))
    width = max(3, len(str(n_trials + 100)))
    for t in range(n_trials):
        trial = f"SYN-{t + 101:0{width}d}"
        product = products[draws.pick(len(products))]
        pid, material = product["id"], product["starting_material"]
        n_markets = min(len(with_centers), 1 + int(draws.rng.integers(3)))
        picks = draws.rng.choice(
            len(with_centers), size=n_markets, replace=False, p=weights / weights.sum()
        )
        participants: list[dict[str, Any]] = []
        for j in sorted(int(x) for x in picks):
            m = with_centers[j]
            pool = [c for c in by_market[m.id] if pid in c["products"]]
            if not pool:
                continue
            n = min(len(pool), int(draws.rng.integers(2, 9)))
            chosen = draws.rng.choice(len(pool), size=n, replace=False)
            participants.extend(pool[int(i)] for i in sorted(chosen))
            able = [s for s in sites if material in s["starting_materials"]]
            home = [s for s in able if s["_market"] == m.id]
            away = [s for s in able if s["_market"] != m.id]
            ranked = [home[int(i)] for i in draws.rng.permutation(len(home))]
            ranked += [away[int(i)] for i in draws.rng.permutation(len(away))]
            lines = 0
            for s in ranked:
                if lines >= TRIAL_LINES:
                    if draws.rng.random() < 0.3:  # one more site, usually from a later date
                        when = draws.effective(0.5)
                        s["approvals"].append(draws.approval(pid, m.regulator, when, trial))
                    break
                s["approvals"].append(draws.approval(pid, m.regulator, draws.effective(0.0), trial))
                lines += s["lines"]
        if participants:
            trials.append((trial, pid, participants))
    return trials
