"""Booking policies for the twin that plan rather than react.

* ``greedy``: first come, first served, each order booked where its expected
  delivery is earliest (the baseline every optimizer must beat).
* ``optimize``: a rolling-horizon optimizer. New orders are booked greedily; every
  ``replan_every_days`` the whole waiting backlog (orders booked but not yet called
  for apheresis) is re-planned at once: each order goes to the eligible site that
  minimises the backlog's total expected time to treatment, given that each site
  frees a place every cycle / lines days. That is a transportation problem (orders
  to site positions whose waits grow with the position), solved as an LP by HiGHS;
  its optimum is integral.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import highspy
import numpy as np

from cartnet.highs import new_highs
from cartnet.twin.policies import (
    POLICIES as TWIN_POLICIES,
)
from cartnet.twin.policies import (
    EarliestDelivery,
    OrderRequest,
    PolicyFactory,
    SiteOption,
    WaitingOrder,
)

MOVE_PENALTY_DAYS = 0.25
"""A move must save more than this (expected days) to be worth a re-booking."""


class Greedy(EarliestDelivery):
    name = "greedy"
    description = "first come, first served, earliest expected delivery"


class RollingHorizon(EarliestDelivery):
    name = "optimize"
    description = "greedy booking, then the waiting backlog re-planned as a whole every day"

    def __init__(self, replan_every_days: float = 1.0) -> None:
        self.replan_every_days = replan_every_days

    def choose(self, order: OrderRequest, options: Sequence[SiteOption], now: float) -> SiteOption:
        return super().choose(order, options, now)

    def replan(self, now: float, waiting: Sequence[WaitingOrder]) -> Mapping[int, str]:
        if len(waiting) < 2:
            return {}
        return plan_backlog(waiting)


def plan_backlog(waiting: Sequence[WaitingOrder]) -> dict[int, str]:
    """Order id → new site for the orders the LP moves (the rest stay where they are)."""
    sites: dict[str, SiteOption] = {}
    for w in waiting:
        for o in w.options:
            sites.setdefault(o.site, o)
    site_ids = sorted(sites)
    index = {s: i for i, s in enumerate(site_ids)}
    # x[o, s] columns: one per (order, eligible site)
    x_order: list[int] = []
    x_site: list[int] = []
    x_cost: list[float] = []
    for k, w in enumerate(waiting):
        for o in w.options:
            base = o.expected_delivery - o.expected_wait_days
            x_order.append(k)
            x_site.append(index[o.site])
            x_cost.append(base + (MOVE_PENALTY_DAYS if o.site != w.site else 0.0))
    if not x_order:
        return {}
    # y[s, j] columns: the j-th place to free up at site s, waiting grows with j
    candidates = np.bincount(np.asarray(x_site), minlength=len(site_ids))
    y_site: list[int] = []
    y_cost: list[float] = []
    for s, sid in enumerate(site_ids):
        opt = sites[sid]
        for j in range(int(candidates[s])):
            y_site.append(s)
            y_cost.append(max(0, j + 1 - opt.free_places) * opt.interval_days)
    nx, ny = len(x_order), len(y_site)
    n_rows = len(waiting) + len(site_ids)
    # rows: each order placed once (= 1); per site, orders placed = positions used (= 0)
    rows = np.concatenate([np.asarray(x_order), len(waiting) + np.asarray(x_site),
                           len(waiting) + np.asarray(y_site)])  # fmt: skip
    cols = np.concatenate([np.arange(nx), np.arange(nx), nx + np.arange(ny)])
    vals = np.concatenate([np.ones(nx), np.ones(nx), -np.ones(ny)])
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(cols, np.arange(nx + ny + 1))
    lower = np.concatenate([np.ones(len(waiting)), np.zeros(len(site_ids))])
    h = new_highs()
    lp = highspy.HighsLp()
    lp.num_col_ = nx + ny
    lp.num_row_ = n_rows
    lp.col_cost_ = np.asarray(x_cost + y_cost, dtype=float)
    lp.col_lower_ = np.zeros(nx + ny)
    lp.col_upper_ = np.concatenate([np.full(nx, 1.0), np.ones(ny)])
    lp.row_lower_ = lower
    lp.row_upper_ = lower
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = vals.astype(float)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return {}
    values = np.asarray(h.getSolution().col_value)[:nx]
    moves: dict[int, str] = {}
    chosen: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for c in np.flatnonzero(values > 0.5).tolist():
        chosen[x_order[c]].append((values[c], site_ids[x_site[c]]))
    for k, picks in chosen.items():
        site = max(picks)[1]
        if site != waiting[k].site:
            moves[waiting[k].request.order_id] = site
    return moves


POLICIES: dict[str, PolicyFactory] = {
    **TWIN_POLICIES,
    Greedy.name: Greedy,
    RollingHorizon.name: RollingHorizon,
}
"""Every booking policy a run may name: the twin's own and the optimizing ones."""


def policy_factory(name: str) -> PolicyFactory:
    """The factory of the policy called ``name``, for the twin to make its own copies."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise KeyError(f"unknown policy {name!r} (known: {known})") from None


def policy_names() -> list[str]:
    return sorted(POLICIES)
