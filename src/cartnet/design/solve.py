"""Network design as a MILP: which sites open, at which size, and where patients go.

After i-SHIPMENT (Triantafyllou et al., Sci Rep 2022; docs/background/domain.md §6), but
aggregated so that it scales: patients are not indexed one by one. Demand is a
number of patients per center and day, so the allocation is a daily *flow*.
Indices: centers ``c``, candidate sites ``j``, sizes ``k`` of a site, routes
``r = (outbound mode, return mode)`` of a (center, site) pair, arrival days
``t`` and waits ``w`` (days the material waits at the site for a line). With
``A`` apheresis days, ``L`` transit days, ``M_j`` manufacturing, ``Q_j`` QC and
``C_j`` the capacity window (default ``M_j``), a patient of center ``c`` arriving
on day ``t`` and routed by ``r = (o, b)`` to site ``j`` with wait ``w`` starts
manufacturing on day ``s = t + A + L_o(c,j) + w`` and has vein-to-vein time
``v = A + L_o + w + M_j + Q_j + L_b``. Only combinations with ``v ≤ cap`` get a
column, so the cap is enforced by construction (and a slow mode drops out)::

    variables  y[j,k] ∈ {0,1}          site j opens with size k
               x[c,j,r,t,w] ≥ 0        patients (integer with integer_flows)
    minimise   Σ F_jk·H/365·y[j,k] + Σ (T_out + T_back + V_j)·x + (materials + QC)·N
           or  Σ v·x  (total vein-to-vein days; the mean is that / N)
    s.t.       Σ_{j,r,w} x[c,j,r,t,w] = a[c,t]                        each center-day
               Σ_{x at j with s ∈ [d−C_j+1, d]} b·x ≤ Σ_k lines_k·y[j,k]  each site, day d
               Σ_{r,w} x[c,j,r,t,w] ≤ a[c,t]·Σ_k y[j,k]               each c, j, t (tightening)
               Σ_k y[j,k] ≤ 1      (= 1 for a site that must stay open)
               Σ_{j,k} y[j,k] ≤ max_sites                              optional
               total cost ≤ budget_per_therapy · N                     time objective only

``b`` is batches per patient (re-manufacture after failures), ``F_jk`` a size's
yearly fixed cost, scaled to the ``H``-day horizon. A center-day with ``a``
patients is one row whatever ``a`` is, so the model grows with centers × days,
not with patients: the i-SHIPMENT class at 3,000 patients a year has ~9,000
flow columns and 18 binaries. The third row family is implied by the capacity
rows for integer ``y`` but makes the LP relaxation much tighter (the classic
strong facility-location linking).

The status is the solver's: ``optimal`` only when HiGHS proves it (within the
relative gap), ``feasible`` when the time limit stopped it with a design, and
``infeasible`` with an explanation: centers no candidate can serve within the
cap (by candidate: not approved for the market, or the fastest route's days), or,
when every center has a route, the patients that cannot be served at all with the
sizes and limits given (a second model that may leave patients unserved, per
center), and for the time objective the cheapest cost per therapy if the budget
is below it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from cartnet.design.model import Candidate, Center, DesignInput, check_design, km_between
from cartnet.highs import new_highs

_INF = highspy.kHighsInf


@dataclass(frozen=True)
class Route:
    """One way to serve center ``c`` from site ``j``: outbound and return modes."""

    center: int
    site: int
    out_mode: str
    back_mode: str
    out_days: int
    back_days: int
    lead_days: int
    """Days from arrival to the start of manufacturing (apheresis, transit, wait)."""
    v2v_days: int
    """Vein-to-vein days: apheresis to the product's return."""
    slack_days: int
    """Further days a column may wait (0: the wait is part of ``lead_days``)."""
    shipping_cost: float
    """Outbound plus return shipment."""


@dataclass(frozen=True)
class Excluded:
    """Why a center cannot be served by a candidate."""

    center: str
    site: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"center": self.center, "site": self.site, "reason": self.reason}


@dataclass
class SiteChoice:
    site: str
    name: str
    lines: int
    size_label: str
    must_open: bool
    fixed_cost: float
    patients: float
    starts_daily: list[float]
    busy_lines_daily: list[float]
    utilization: float
    """Mean share of lines busy over the days patients start (starts × cycle / lines)."""
    peak_window_share: float
    """Largest rolling-window use over lines (≤ 1 by the capacity rows)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DesignResult:
    """What ``solve_design`` found, with the solver's own status, bound and gap."""

    name: str
    objective_kind: str
    status: str
    """optimal, feasible (time limit, gap reported), infeasible, no-solution."""
    solver_status: str
    method: str = ""
    """enumeration or mip (see ``solve_design``)."""
    evaluated: int = 0
    """Size combinations whose allocation was solved (enumeration)."""
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    seconds: float = 0.0
    build_seconds: float = 0.0
    variables: int = 0
    integer_variables: int = 0
    constraints: int = 0
    patients: float = 0.0
    horizon_days: int = 0
    currency: str = "USD"
    sites: list[SiteChoice] = field(default_factory=list)
    cost: dict[str, float] = field(default_factory=dict)
    """Total cost over the horizon by kind: facility, variable, transport_out, ..."""
    cost_per_therapy: dict[str, float] = field(default_factory=dict)
    mean_v2v_days: float | None = None
    max_v2v_days: float | None = None
    flows: list[dict[str, Any]] = field(default_factory=list)
    """Patients per (center, site, outbound mode, return mode) over the horizon."""
    v2v_histogram: dict[int, float] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    unserved: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    @property
    def solved(self) -> bool:
        return self.status in ("optimal", "feasible")

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": "cartnet.design-result/1",
            "name": self.name,
            "objective_kind": self.objective_kind,
            "status": self.status,
            "solver_status": self.solver_status,
            "method": self.method,
            "evaluated": self.evaluated,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "seconds": round(self.seconds, 4),
            "build_seconds": round(self.build_seconds, 4),
            "variables": self.variables,
            "integer_variables": self.integer_variables,
            "constraints": self.constraints,
            "patients": self.patients,
            "horizon_days": self.horizon_days,
            "currency": self.currency,
            "sites": [s.as_dict() for s in self.sites],
            "cost": self.cost,
            "cost_per_therapy": self.cost_per_therapy,
            "mean_v2v_days": self.mean_v2v_days,
            "max_v2v_days": self.max_v2v_days,
            "v2v_histogram": {str(k): v for k, v in sorted(self.v2v_histogram.items())},
            "flows": self.flows,
            "explanation": self.explanation,
            "excluded": [e.as_dict() for e in self.excluded],
            "unserved": self.unserved,
            "assumptions": self.assumptions,
        }


# -- routes ----------------------------------------------------------------------------


def _lane(d: DesignInput, c: Center, j: Candidate) -> dict[str, tuple[int, float] | None]:
    """Per mode: (transit days, cost per shipment), or None where the mode is not available."""
    km = km_between(c.lat, c.lon, j.lat, j.lon)
    figures: dict[str, tuple[int, float] | None] = {
        m.id: (m.transit_days, m.cost_per_shipment + m.cost_per_km * km) for m in d.modes
    }
    for lane in d.lanes:
        if lane.center == c.id and lane.site == j.id:
            if not lane.available:
                figures[lane.mode] = None
                continue
            base = figures[lane.mode]
            default_days, default_cost = base if base is not None else (0, 0.0)
            figures[lane.mode] = (
                default_days if lane.transit_days is None else lane.transit_days,
                default_cost if lane.cost_per_shipment is None else lane.cost_per_shipment,
            )
    return figures


def routes(d: DesignInput, objective: str = "cost") -> tuple[list[Route], list[Excluded]]:
    """The ways to serve each center from each site within the cap, and what is left out.

    A patient's start day ``s = t + δ`` and return mode fix its vein-to-vein time
    ``δ + M + Q + L_b``; the outbound mode only has to arrive in time
    (``A + L_o ≤ δ``, the material waits ``δ − A − L_o`` days), so the cheapest
    such mode dominates every other and is the only one kept. For the return mode
    the cost objective keeps the cheapest that meets the cap (the fastest among
    equals); the time objective keeps every mode not both slower and dearer than
    another. So one route is one delay ``δ`` and one return mode: exact, and far
    fewer (and less symmetric) columns than every (out, back, wait) combination.

    A pair left out entirely gets one ``Excluded`` saying why: the site is not
    approved for the center's market, no mode is available, or the fastest route
    exceeds the vein-to-vein cap (with its days spelled out).
    """
    found: list[Route] = []
    excluded: list[Excluded] = []
    a = d.durations.apheresis_days
    for ci, c in enumerate(d.centers):
        for ji, j in enumerate(d.candidates):
            if j.markets is not None and c.market not in j.markets:
                excluded.append(Excluded(c.id, j.id, f"not approved for market {c.market!r}"))
                continue
            lanes = {m: v for m, v in _lane(d, c, j).items() if v is not None}
            if not lanes:
                excluded.append(Excluded(c.id, j.id, "no transport mode available"))
                continue
            m_days, q_days = d.manufacturing_days(j), d.qc_days(j)
            fastest_out = min(lanes, key=lambda m: (lanes[m][0], lanes[m][1]))
            fastest_back = fastest_out
            v2v_min = a + lanes[fastest_out][0] + m_days + q_days + lanes[fastest_back][0]
            if v2v_min > d.v2v_cap_days:
                o, b = lanes[fastest_out][0], lanes[fastest_back][0]
                excluded.append(
                    Excluded(
                        c.id,
                        j.id,
                        f"fastest route apheresis {a} + {fastest_out} {o} + manufacturing "
                        f"{m_days} + QC {q_days} + {fastest_back} {b} = {v2v_min} days "
                        f"exceeds the {d.v2v_cap_days}-day cap",
                    )
                )
                continue
            low = a + lanes[fastest_out][0]
            high = d.v2v_cap_days - m_days - q_days - lanes[fastest_back][0]
            for delay in range(low, high + 1):
                outs = [m for m in lanes if a + lanes[m][0] <= delay]
                mo = min(outs, key=lambda m: (lanes[m][1], lanes[m][0]))
                backs = [
                    m for m in lanes if delay + m_days + q_days + lanes[m][0] <= d.v2v_cap_days
                ]
                if objective == "cost":
                    keep = [min(backs, key=lambda m: (lanes[m][1], lanes[m][0]))]
                else:
                    keep = [
                        m
                        for m in backs
                        if not any(
                            (lanes[o][0], lanes[o][1]) < (lanes[m][0], lanes[m][1])
                            and lanes[o][0] <= lanes[m][0]
                            and lanes[o][1] <= lanes[m][1]
                            for o in backs
                        )
                    ]
                for mb in keep:
                    found.append(
                        Route(
                            ci,
                            ji,
                            mo,
                            mb,
                            lanes[mo][0],
                            lanes[mb][0],
                            delay,
                            delay + m_days + q_days + lanes[mb][0],
                            0,
                            lanes[mo][1] + lanes[mb][1],
                        )
                    )
    return found, excluded


# -- the model ---------------------------------------------------------------------------


@dataclass
class _Model:
    """Columns and rows of the MILP as numpy arrays."""

    n_open: int
    open_site: np.ndarray
    open_size: np.ndarray
    x_route: np.ndarray
    x_day: np.ndarray
    x_wait: np.ndarray
    x_start: np.ndarray
    n_unserved: int
    unserved_center: np.ndarray
    unserved_day: np.ndarray
    cost: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_start: np.ndarray
    row_index: np.ndarray
    value: np.ndarray
    offset: float
    """Constant part of the objective (materials and QC under the cost objective)."""
    lower: np.ndarray

    @property
    def n_cols(self) -> int:
        return int(self.cost.size)

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.size)


class _Rows:
    """Triplets of a sparse matrix, row bounds appended as rows are opened."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.count = 0

    def block(self, lower: np.ndarray, upper: np.ndarray) -> int:
        """Open ``len(lower)`` rows; returns the index of the first."""
        first = self.count
        self.lower.append(np.asarray(lower, dtype=float))
        self.upper.append(np.asarray(upper, dtype=float))
        self.count += len(lower)
        return first

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.rows.append(rows)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), rows.shape).copy())

    def csc(self, n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        cols = np.concatenate(self.cols) if self.cols else np.zeros(0, np.int64)
        vals = np.concatenate(self.vals) if self.vals else np.zeros(0)
        keep = vals != 0
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        order = np.lexsort((rows, cols))
        rows, cols, vals = rows[order], cols[order], vals[order]
        starts = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n_cols))])
        return starts.astype(np.int32), rows.astype(np.int32), vals


def _build(
    d: DesignInput,
    rs: list[Route],
    arrivals: np.ndarray,
    objective: str,
    *,
    allow_unserved: bool = False,
    budget: bool = True,
    max_sites: bool = True,
) -> _Model:
    n_c, n_j = len(d.centers), len(d.candidates)
    horizon = d.horizon_days
    total = float(arrivals.sum())
    b = d.batches_per_patient
    # size columns
    open_site = np.array([j for j, c in enumerate(d.candidates) for _ in c.sizes], dtype=np.int64)
    open_size = np.array([k for c in d.candidates for k in range(len(c.sizes))], dtype=np.int64)
    n_open = open_site.size
    lines = np.array(
        [float(d.candidates[j].sizes[k].lines) for j, k in zip(open_site, open_size, strict=True)]
    )
    fixed = np.array(
        [
            d.candidates[j].sizes[k].fixed_cost(horizon)
            for j, k in zip(open_site, open_size, strict=True)
        ]
    )
    # the variable cost per therapy is the site's; sizes of one site that differ get
    # the smallest on the flows and the rest per therapy would need size-indexed
    # flows, so the model refuses them (see _check_variable_costs)
    var_cost = np.array([c.sizes[0].variable_cost_per_therapy for c in d.candidates])
    # flow columns: route × arrival day with patients × wait
    route_center = np.array([r.center for r in rs], dtype=np.int64)
    route_site = np.array([r.site for r in rs], dtype=np.int64)
    lead = np.array([r.lead_days for r in rs], dtype=np.int64)
    slack = np.array([r.slack_days for r in rs], dtype=np.int64)
    v2v = np.array([r.v2v_days for r in rs], dtype=np.int64)
    ship = np.array([r.shipping_cost for r in rs])
    xr_list, xt_list, xw_list = [], [], []
    for ri in range(len(rs)):
        days = np.flatnonzero(arrivals[route_center[ri]] > 0)
        waits = np.arange(slack[ri] + 1)
        xr_list.append(np.full(days.size * waits.size, ri, dtype=np.int64))
        xt_list.append(np.repeat(days, waits.size))
        xw_list.append(np.tile(waits, days.size))
    x_route = np.concatenate(xr_list) if xr_list else np.zeros(0, np.int64)
    x_day = np.concatenate(xt_list) if xt_list else np.zeros(0, np.int64)
    x_wait = np.concatenate(xw_list) if xw_list else np.zeros(0, np.int64)
    x_start = x_day + lead[x_route] + x_wait
    x_site = route_site[x_route]
    x_center = route_center[x_route]
    n_x = x_route.size
    # unserved columns (diagnosis only)
    if allow_unserved:
        uc, ut = np.nonzero(arrivals > 0)
    else:
        uc = ut = np.zeros(0, np.int64)
    n_u = uc.size
    x0, u0 = n_open, n_open + n_x
    n_cols = n_open + n_x + n_u
    x_cols = x0 + np.arange(n_x)

    x_money = ship[x_route] + var_cost[x_site]
    x_days = (v2v[x_route] + x_wait).astype(float)
    cost = np.zeros(n_cols)
    offset = 0.0
    if allow_unserved:
        cost[u0:] = 1.0
    elif objective == "cost":
        cost[:n_open] = fixed
        cost[x0:u0] = x_money
        offset = (d.costs.materials_per_therapy + d.costs.qc_per_therapy) * total
    else:
        cost[x0:u0] = x_days
    upper = np.ones(n_cols)
    upper[x0:u0] = arrivals[x_center, x_day]
    upper[u0:] = arrivals[uc, ut]
    integrality = np.zeros(n_cols, dtype=np.int32)
    if not allow_unserved:
        integrality[:n_open] = 1
        if d.integer_flows:
            integrality[x0:u0] = 1
    else:
        integrality[:n_open] = 1

    m = _Rows()
    # demand rows, one per center-day with patients
    dc, dt = np.nonzero(arrivals > 0)
    demand_row = np.full((n_c, horizon), -1, dtype=np.int64)
    first = m.block(arrivals[dc, dt], arrivals[dc, dt])
    demand_row[dc, dt] = first + np.arange(dc.size)
    m.add(demand_row[x_center, x_day], x_cols, 1.0)
    if n_u:
        m.add(demand_row[uc, ut], u0 + np.arange(n_u), 1.0)
    # capacity rows: site j, day d in 0..last start at j
    last_start = np.full(n_j, -1, dtype=np.int64)
    if n_x:
        np.maximum.at(last_start, x_site, x_start)
    cap_first = np.zeros(n_j, dtype=np.int64)
    cycles = np.array([d.cycle_days(c) for c in d.candidates], dtype=np.int64)
    for j in range(n_j):
        n_days = int(last_start[j]) + 1
        cap_first[j] = m.block(np.full(n_days, -_INF), np.zeros(n_days))
        if n_days == 0:
            continue
        here = np.flatnonzero(x_site == j)
        for delta in range(int(cycles[j])):
            day = x_start[here] + delta
            ok = day < n_days
            m.add(cap_first[j] + day[ok], x_cols[here[ok]], b)
        sizes = np.flatnonzero(open_site == j)
        rr = np.repeat(cap_first[j] + np.arange(n_days), sizes.size)
        cc = np.tile(sizes, n_days)
        m.add(rr, cc, -lines[cc])
    # linking rows (c, j, t): Σ x ≤ a[c,t] Σ_k y[j,k]
    key = (x_center * n_j + x_site) * horizon + x_day
    uniq, inverse = np.unique(key, return_inverse=True)
    if uniq.size:
        first = m.block(np.full(uniq.size, -_INF), np.zeros(uniq.size))
        m.add(first + inverse, x_cols, 1.0)
        lc = uniq // (n_j * horizon)
        lj = (uniq // horizon) % n_j
        lt = uniq % horizon
        for j in range(n_j):
            rows_j = np.flatnonzero(lj == j)
            sizes = np.flatnonzero(open_site == j)
            if rows_j.size == 0 or sizes.size == 0:
                continue
            rr = np.repeat(first + rows_j, sizes.size)
            cc = np.tile(sizes, rows_j.size)
            m.add(rr, cc, -np.repeat(arrivals[lc[rows_j], lt[rows_j]], sizes.size))
    # one size per site
    must = np.array([1.0 if c.must_open else 0.0 for c in d.candidates])
    first = m.block(must, np.ones(n_j))
    m.add(first + open_site, np.arange(n_open), 1.0)
    if max_sites and d.limits.max_sites is not None:
        first = m.block(np.array([-_INF]), np.array([float(d.limits.max_sites)]))
        m.add(np.full(n_open, first), np.arange(n_open), 1.0)
    if objective == "time" and budget and d.limits.budget_per_therapy is not None:
        money = (
            d.limits.budget_per_therapy - d.costs.materials_per_therapy - d.costs.qc_per_therapy
        ) * total
        first = m.block(np.array([-_INF]), np.array([money]))
        m.add(np.full(n_open, first), np.arange(n_open), fixed)
        m.add(np.full(n_x, first), x_cols, x_money)
    col_start, row_index, value = m.csc(n_cols)
    return _Model(
        n_open,
        open_site,
        open_size,
        x_route,
        x_day,
        x_wait,
        x_start,
        n_u,
        uc,
        ut,
        cost,
        upper,
        integrality,
        np.concatenate(m.lower),
        np.concatenate(m.upper),
        col_start,
        row_index,
        value,
        offset,
        np.zeros(n_cols),
    )


def _run(model: _Model, time_limit: float, mip_gap: float, threads: int | None = None) -> Any:
    options: dict[str, Any] = {"time_limit": max(time_limit, 1e-3), "mip_rel_gap": float(mip_gap)}
    if threads is not None:
        options["threads"] = threads
    h = new_highs(**options)
    passed = h.passModel(
        model.n_cols,
        model.n_rows,
        int(model.value.size),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        model.offset,
        model.cost,
        model.lower,
        model.upper,
        model.row_lower,
        model.row_upper,
        model.col_start,
        model.row_index,
        model.value,
        model.integrality,
    )
    if passed == highspy.HighsStatus.kError:
        raise RuntimeError("internal error: HiGHS refused the design model")
    h.run()
    return h


ENUMERATION_LIMIT = 250_000
"""Most size combinations searched by enumeration; beyond, the whole MILP goes to HiGHS."""


def _combinations(d: DesignInput) -> np.ndarray | None:
    """Every size choice (−1: closed) per candidate, or None when there are too many."""
    options = [([] if c.must_open else [-1]) + list(range(len(c.sizes))) for c in d.candidates]
    count = math.prod(len(o) for o in options)
    if count > ENUMERATION_LIMIT:
        return None
    grids = np.meshgrid(*[np.array(o, dtype=np.int16) for o in options], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)
    if d.limits.max_sites is not None:
        combos = combos[(combos >= 0).sum(axis=1) <= d.limits.max_sites]
    return combos


def _pooled_lines(
    d: DesignInput, rs: list[Route], arrivals: np.ndarray, sites: set[int] | None = None
) -> float:
    """Lines the centers need at least: candidates ``sites`` (default all) pooled into one.

    Each center may use every delay any of its routes to those sites has, and the
    window is the shortest cycle of those sites; every real design is a feasible
    point of this LP (sum its sites' window loads), so its optimum bounds the lines
    of those sites from below.
    """
    use = sites if sites is not None else set(range(len(d.candidates)))
    if not use:
        return 0.0
    cycle = min(d.cycle_days(d.candidates[j]) for j in use)
    delays = sorted({(r.center, r.lead_days) for r in rs if r.site in use})
    if not delays:
        return 0.0
    dc = np.array([c for c, _ in delays], dtype=np.int64)
    dl = np.array([lag for _, lag in delays], dtype=np.int64)
    cols_d, cols_t = [], []
    for i in range(dc.size):
        days = np.flatnonzero(arrivals[dc[i]] > 0)
        cols_d.append(np.full(days.size, i))
        cols_t.append(days)
    if not any(x.size for x in cols_d):
        return 0.0
    xd = np.concatenate(cols_d)
    xt = np.concatenate(cols_t)
    xc, start = dc[xd], xt + dl[xd]
    n_x = xd.size
    n_days = int(start.max()) + 1
    m = _Rows()
    served = np.zeros(arrivals.shape[0], dtype=bool)
    served[dc] = True
    rc, rt = np.nonzero((arrivals > 0) & served[:, None])
    row = np.full(arrivals.shape, -1, dtype=np.int64)
    first = m.block(arrivals[rc, rt], arrivals[rc, rt])
    row[rc, rt] = first + np.arange(rc.size)
    m.add(row[xc, xt], np.arange(n_x), 1.0)
    first = m.block(np.full(n_days, -_INF), np.zeros(n_days))
    for delta in range(cycle):
        day = start + delta
        ok = day < n_days
        m.add(first + day[ok], np.arange(n_x)[ok], d.batches_per_patient)
    m.add(first + np.arange(n_days), np.full(n_days, n_x), -1.0)
    n_cols = n_x + 1
    starts, index, value = m.csc(n_cols)
    cost = np.zeros(n_cols)
    cost[-1] = 1.0
    h = new_highs(solver="simplex")
    h.passModel(
        n_cols,
        m.count,
        int(value.size),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        cost,
        np.zeros(n_cols),
        np.full(n_cols, _INF),
        np.concatenate(m.lower),
        np.concatenate(m.upper),
        starts,
        index,
        value,
        np.zeros(n_cols, dtype=np.int32),
    )
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
        return 0.0  # no bound: the combination is checked by its allocation LP instead
    return float(h.getInfo().objective_function_value)


SITE_GROUPS_LIMIT = 128
"""Most groups of sites whose pooled lines are checked before enumeration."""


def _site_groups(
    d: DesignInput, rs: list[Route], arrivals: np.ndarray
) -> list[tuple[set[int], set[int]]]:
    """(sites T, centers that may only use sites of T) for unions T of centers' site sets.

    Hall's condition for capacity: the centers whose every route leads into T must
    fit into T's lines. All of T's unions are tried up to ``SITE_GROUPS_LIMIT``
    (kymriah-2020: a few dozen; one for a network where every center may use
    every site).
    """
    reach: dict[int, frozenset[int]] = {}
    for r in rs:
        if arrivals[r.center].sum() > 0:
            reach[r.center] = reach.get(r.center, frozenset()) | {r.site}
    groups: set[frozenset[int]] = set(reach.values())
    frontier = set(groups)
    while frontier and len(groups) < SITE_GROUPS_LIMIT:
        new = {a | b for a in frontier for b in reach.values()} - groups
        groups |= new
        frontier = new
    out = []
    for t in sorted(groups, key=lambda g: (len(g), sorted(g)))[:SITE_GROUPS_LIMIT]:
        centers = {c for c, sites in reach.items() if sites <= t}
        out.append((set(t), centers))
    return out


@dataclass
class _Search:
    col: np.ndarray | None
    status: str
    solver_status: str
    objective: float | None
    bound: float | None
    evaluated: int


def _enumerate(
    d: DesignInput,
    rs: list[Route],
    arrivals: np.ndarray,
    kind: str,
    model: _Model,
    combos: np.ndarray,
    seconds: float,
    mip_gap: float,
) -> _Search:
    """Best design over every size combination, each combination's allocation an LP.

    Combinations are taken in order of a lower bound (fixed cost plus each patient
    served by its cheapest open site, capacity ignored; for the time objective each
    patient's fastest open route), after dropping those that cannot hold the pooled
    lines (``_pooled_lines``), leave a center with no site, or (time objective) cannot
    meet the budget even at that bound. Each is evaluated exactly: its allocation LP
    with the sizes fixed and, when integer flows are asked for and the LP optimum is
    fractional, the allocation MIP. The search stops when the next bound is no better
    than the best design found, which is then proven optimal; at the time limit the
    bound is the least bound of the combinations not yet evaluated.
    """
    clock = time.perf_counter()
    n_j = len(d.candidates)
    total_c = arrivals.sum(axis=1)
    col_of = {
        (int(j), int(k)): i
        for i, (j, k) in enumerate(zip(model.open_site, model.open_size, strict=True))
    }
    fixed_of = np.zeros((n_j, max(len(c.sizes) for c in d.candidates) + 1))
    lines_of = np.zeros_like(fixed_of)
    for j, cand in enumerate(d.candidates):
        for k, size in enumerate(cand.sizes):
            fixed_of[j, k] = size.fixed_cost(d.horizon_days)
            lines_of[j, k] = size.lines
    is_open = combos >= 0
    idx = np.where(is_open, combos, fixed_of.shape[1] - 1)  # last column: zeros (closed)
    fixed = fixed_of[np.arange(n_j), idx].sum(axis=1)
    lines = lines_of[np.arange(n_j), idx].sum(axis=1)
    keep = np.ones(len(combos), dtype=bool)
    per_site = lines_of[np.arange(n_j), idx]
    for sites, centers in _site_groups(d, rs, arrivals):
        need = _pooled_lines(d, [r for r in rs if r.center in centers], arrivals, sites)
        mask = np.zeros(n_j, dtype=bool)
        mask[list(sites)] = True
        keep &= per_site[:, mask].sum(axis=1) >= need - 1e-6
    del lines
    money = np.full((len(d.centers), n_j), np.inf)
    days = np.full((len(d.centers), n_j), np.inf)
    var = np.array([c.sizes[0].variable_cost_per_therapy for c in d.candidates])
    for r in rs:
        money[r.center, r.site] = min(money[r.center, r.site], r.shipping_cost + var[r.site])
        days[r.center, r.site] = min(days[r.center, r.site], r.v2v_days)
    cheapest = np.zeros(len(combos))
    fastest = np.zeros(len(combos))
    for ci in range(len(d.centers)):
        if total_c[ci] <= 0:
            continue
        best_money = np.where(is_open, money[ci], np.inf).min(axis=1)
        keep &= np.isfinite(best_money)
        cheapest += total_c[ci] * np.where(np.isfinite(best_money), best_money, 0.0)
        best_days = np.where(is_open, days[ci], np.inf).min(axis=1)
        fastest += total_c[ci] * np.where(np.isfinite(best_days), best_days, 0.0)
    if kind == "cost":
        lower = fixed + cheapest + model.offset
    else:
        lower = fastest
        assert d.limits.budget_per_therapy is not None
        allowed = (
            d.limits.budget_per_therapy - d.costs.materials_per_therapy - d.costs.qc_per_therapy
        ) * arrivals.sum()
        keep &= fixed + cheapest <= allowed + 1e-6
    order = np.flatnonzero(keep)
    order = order[np.argsort(lower[order], kind="stable")]
    if order.size == 0:
        return _Search(None, "infeasible", "no size combination can hold the demand", None, None, 0)
    x_site = np.array([r.site for r in rs], dtype=np.int64)[model.x_route]
    best: np.ndarray | None = None
    best_value = np.inf
    unresolved = np.inf  # least bound of combinations evaluated only partly
    evaluated = 0
    stopped_at: int | None = None
    for pos, i in enumerate(order):
        if lower[i] >= best_value - _tolerance(best_value, mip_gap):
            break
        if time.perf_counter() - clock > seconds:
            stopped_at = pos
            break
        values = np.zeros(model.n_open)
        for jj in np.flatnonzero(is_open[i]):
            values[col_of[(int(jj), int(combos[i, jj]))]] = 1.0
        sub = _Allocation(model, values, is_open[i][x_site])
        lp = sub.highs(
            integer=False,
            seconds=max(seconds - (time.perf_counter() - clock), 1e-3),
            mip_gap=mip_gap,
        )
        evaluated += 1
        if lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            continue
        value = float(lp.getInfo().objective_function_value)
        if value >= best_value - _tolerance(best_value, mip_gap):
            continue
        flows = np.asarray(lp.getSolution().col_value)
        if d.integer_flows and np.abs(flows - np.round(flows)).max(initial=0.0) > 1e-6:
            # one combination may not take all the time left: others may be better
            left = seconds - (time.perf_counter() - clock)
            mip = sub.highs(
                integer=True, seconds=max(min(left, max(2.0, left / 4)), 1e-3), mip_gap=mip_gap
            )
            info = mip.getInfo()
            if int(info.primal_solution_status) == 2:
                v = float(info.objective_function_value)
                if mip.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    unresolved = min(unresolved, max(value, float(info.mip_dual_bound)))
                if v < best_value:
                    best_value = v
                    best = sub.full(np.asarray(mip.getSolution().col_value))
            elif mip.getModelStatus() != highspy.HighsModelStatus.kInfeasible:
                unresolved = min(unresolved, value)
            continue
        best_value, best = value, sub.full(flows)
    if stopped_at is not None:
        bound = min(float(lower[order[stopped_at]]), unresolved, best_value)
        status = "feasible" if best is not None else "no-solution"
        return _Search(
            best,
            status,
            "Time limit reached",
            None if best is None else best_value,
            bound,
            evaluated,
        )
    if best is None:
        if np.isfinite(unresolved):
            return _Search(None, "no-solution", "Time limit reached", None, unresolved, evaluated)
        return _Search(None, "infeasible", "Infeasible", None, None, evaluated)
    nxt = next(
        (
            float(lower[i])
            for i in order
            if lower[i] >= best_value - _tolerance(best_value, mip_gap)
        ),
        best_value,
    )
    bound = min(nxt, unresolved, best_value)
    gap = (best_value - bound) / max(abs(best_value), 1e-9)
    status = "optimal" if gap <= mip_gap + 1e-12 else "feasible"
    return _Search(
        best,
        status,
        "Optimal" if status == "optimal" else "Time limit reached",
        best_value,
        bound,
        evaluated,
    )


def _tolerance(value: float, mip_gap: float) -> float:
    return mip_gap * max(abs(value), 1.0) if math.isfinite(value) else 0.0


class _Allocation:
    """The allocation problem of one size combination: flows of its open sites only.

    The size columns are fixed, so they leave the model: their coefficients move
    into the row bounds (a capacity row's right-hand side becomes the lines) and
    their cost into the objective's constant. A model this small is presolved and
    solved from scratch in milliseconds.
    """

    def __init__(self, model: _Model, open_values: np.ndarray, keep_x: np.ndarray) -> None:
        self.model = model
        n_open = model.n_open
        self.cols = n_open + np.flatnonzero(keep_x)
        starts, index, value = model.col_start, model.row_index, model.value
        shift = np.zeros(model.n_rows)
        for c in np.flatnonzero(open_values):
            a, b = starts[c], starts[c + 1]
            shift[index[a:b]] += value[a:b] * open_values[c]
        self.row_lower = model.row_lower - shift
        self.row_upper = model.row_upper - shift
        self.offset = model.offset + float(model.cost[:n_open] @ open_values)
        lengths = (starts[self.cols + 1] - starts[self.cols]).astype(np.int64)
        begin = np.repeat(
            starts[self.cols].astype(np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            lengths,
        )
        take = begin + np.arange(int(lengths.sum()))
        self.index = index[take]
        self.value = value[take]
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        self.open_values = open_values

    def highs(self, *, integer: bool, seconds: float, mip_gap: float) -> Any:
        m = self.model
        n = int(self.cols.size)
        integrality = m.integrality[self.cols] if integer else np.zeros(n, dtype=np.int32)
        h = new_highs(time_limit=seconds, mip_rel_gap=float(mip_gap))
        h.passModel(
            n,
            m.n_rows,
            int(self.value.size),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            self.offset,
            m.cost[self.cols],
            m.lower[self.cols],
            m.upper[self.cols],
            self.row_lower,
            self.row_upper,
            self.starts,
            self.index,
            self.value,
            integrality,
        )
        h.run()
        return h

    def full(self, col: np.ndarray) -> np.ndarray:
        """A column vector of the whole model from one of this allocation."""
        out = np.zeros(self.model.n_cols)
        out[: self.model.n_open] = self.open_values
        out[self.cols] = col
        return out


# -- public entry point -------------------------------------------------------------------


def solve_design(
    design: DesignInput,
    *,
    objective: str | None = None,
    time_limit: float = 60.0,
    mip_gap: float = 1e-4,
    threads: int | None = None,
    method: str = "auto",
) -> DesignResult:
    """Choose sites, sizes and the allocation of ``design``; see the module docstring.

    ``objective``: ``cost`` or ``time`` (default: the file's). ``mip_gap``: the
    relative gap at which HiGHS stops and calls the design optimal (1e-4: within
    0.01 %). The result's ``gap`` is the true remaining gap either way.
    ``method``: ``enumeration`` (every size combination in bound order, each
    allocation an LP; exact), ``mip`` (the whole MILP to HiGHS), or ``auto``:
    enumeration when there are at most ``ENUMERATION_LIMIT`` combinations.
    """
    if method not in ("auto", "enumeration", "mip"):
        raise ValueError(f"method must be auto, enumeration or mip (got {method!r})")
    clock = time.perf_counter()
    d = check_design(design, design.name)
    kind = objective or d.objective
    if kind not in ("cost", "time"):
        raise ValueError(f"objective must be cost or time (got {kind!r})")
    if kind == "time" and d.limits.budget_per_therapy is None:
        raise ValueError("the time objective needs limits.budget_per_therapy")
    _check_variable_costs(d)
    arrivals = np.array([d.daily_arrivals(c) for c in d.centers])
    result = DesignResult(
        name=d.name,
        objective_kind=kind,
        status="infeasible",
        solver_status="not run",
        patients=float(arrivals.sum()),
        horizon_days=d.horizon_days,
        currency=d.currency,
    )
    rs, excluded = routes(d, kind)
    result.excluded = excluded
    unreachable = [
        (ci, c)
        for ci, c in enumerate(d.centers)
        if arrivals[ci].sum() > 0 and not any(r.center == ci for r in rs)
    ]
    if unreachable:
        for ci, c in unreachable:
            why = [f"{e.site}: {e.reason}" for e in excluded if e.center == c.id]
            result.explanation.append(
                f"center {c.id} (market {c.market}, {arrivals[ci].sum():g} patients) cannot be "
                f"served within the {d.v2v_cap_days}-day vein-to-vein cap by any candidate: "
                + "; ".join(why)
            )
            result.unserved[c.id] = float(arrivals[ci].sum())
        result.seconds = time.perf_counter() - clock
        return result
    model = _build(d, rs, arrivals, kind)
    result.variables = model.n_cols
    result.integer_variables = int(model.integrality.sum())
    result.constraints = model.n_rows
    result.build_seconds = time.perf_counter() - clock
    left = time_limit - result.build_seconds
    combos = _combinations(d) if method in ("auto", "enumeration") else None
    if method == "enumeration" and combos is None:
        raise ValueError(f"more than {ENUMERATION_LIMIT:,} size combinations to enumerate")
    if combos is not None:
        result.method = "enumeration"
        found = _enumerate(d, rs, arrivals, kind, model, combos, left, mip_gap)
        result.status, result.solver_status = found.status, found.solver_status
        result.evaluated = found.evaluated
        col = found.col
        obj_value, bound = found.objective, found.bound
    else:
        result.method = "mip"
        h = _run(model, left, mip_gap, threads)
        status = h.getModelStatus()
        info = h.getInfo()
        result.solver_status = h.modelStatusToString(status)
        has_solution = int(info.primal_solution_status) == 2
        col = np.asarray(h.getSolution().col_value) if has_solution else None
        obj_value = float(info.objective_function_value) if has_solution else None
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
        if status == highspy.HighsModelStatus.kOptimal and has_solution:
            result.status = "optimal"
        elif has_solution:
            result.status = "feasible"
        elif status == highspy.HighsModelStatus.kInfeasible:
            result.status = "infeasible"
        else:
            result.status = "no-solution"
    if result.status == "no-solution":
        result.explanation.append(
            f"the solver stopped ({result.solver_status}) before it found a design; "
            "give it more time (--time-limit)"
        )
    if col is not None and obj_value is not None:
        _read_solution(d, rs, arrivals, model, col, result)
        result.objective = obj_value
        result.bound = bound
        if bound is not None:
            result.gap = max(0.0, obj_value - bound) / max(abs(obj_value), 1e-9)
    elif result.status == "infeasible":
        _explain(d, rs, arrivals, kind, result, left - (time.perf_counter() - clock))
    result.seconds = time.perf_counter() - clock
    return result


def _check_variable_costs(d: DesignInput) -> None:
    for i, c in enumerate(d.candidates):
        costs = {s.variable_cost_per_therapy for s in c.sizes}
        if len(costs) > 1:
            raise ValueError(
                f"candidates[{i}].sizes: sizes of one site must share variable_cost_per_therapy "
                "(the model keeps one per site)"
            )


def _read_solution(
    d: DesignInput,
    rs: list[Route],
    arrivals: np.ndarray,
    model: _Model,
    col: np.ndarray,
    result: DesignResult,
) -> None:
    y = col[: model.n_open] > 0.5
    x = col[model.n_open : model.n_open + model.x_route.size]
    x = np.where(np.abs(x) < 1e-7, 0.0, x)
    horizon = d.horizon_days
    x_site = np.array([rs[r].site for r in model.x_route], dtype=np.int64)
    total = float(arrivals.sum())
    last = int(model.x_start.max()) + 1 if model.x_start.size else 1
    fixed_total = 0.0
    var_total = 0.0
    for idx in np.flatnonzero(y):
        j, k = int(model.open_site[idx]), int(model.open_size[idx])
        cand = d.candidates[j]
        size = cand.sizes[k]
        here = x_site == j
        starts = np.bincount(model.x_start[here], weights=x[here], minlength=last)
        cycle = d.cycle_days(cand)
        window = np.convolve(starts, np.ones(cycle))[:last] * d.batches_per_patient
        busy_days = np.flatnonzero(starts > 1e-9)
        if busy_days.size:
            span = busy_days[-1] - busy_days[0] + cycle
            util = float(starts.sum() * d.batches_per_patient * cycle / (size.lines * span))
        else:
            util = 0.0
        fixed = size.fixed_cost(horizon)
        fixed_total += fixed
        var_total += float(x[here].sum()) * size.variable_cost_per_therapy
        result.sites.append(
            SiteChoice(
                site=cand.id,
                name=cand.name or cand.id,
                lines=size.lines,
                size_label=size.label or f"{size.lines} lines",
                must_open=cand.must_open,
                fixed_cost=round(fixed, 2),
                patients=round(float(x[here].sum()), 6),
                starts_daily=np.round(starts, 6).tolist(),
                busy_lines_daily=np.round(window, 6).tolist(),
                utilization=round(min(util, 1.0), 4),
                peak_window_share=round(float(window.max() / size.lines), 4) if last else 0.0,
            )
        )
    out_cost = 0.0
    back_cost = 0.0
    flows: dict[tuple[int, int, str, str], float] = {}
    hist: dict[int, float] = {}
    v2v_sum = 0.0
    v2v_max = 0.0
    for i in np.flatnonzero(x > 1e-9):
        r = rs[int(model.x_route[i])]
        n = float(x[i])
        key = (r.center, r.site, r.out_mode, r.back_mode)
        flows[key] = flows.get(key, 0.0) + n
        days = r.v2v_days + int(model.x_wait[i])
        hist[days] = hist.get(days, 0.0) + n
        v2v_sum += n * days
        v2v_max = max(v2v_max, days)
    per_mode = _mode_costs(d, rs)
    for (c, j, mo, mb), n in flows.items():
        out_cost += n * per_mode[(c, j, mo)]
        back_cost += n * per_mode[(c, j, mb)]
    result.flows = [
        {
            "center": d.centers[c].id,
            "site": d.candidates[j].id,
            "out_mode": mo,
            "back_mode": mb,
            "patients": round(n, 6),
        }
        for (c, j, mo, mb), n in sorted(flows.items())
    ]
    result.v2v_histogram = {k: round(v, 6) for k, v in sorted(hist.items())}
    result.mean_v2v_days = v2v_sum / total if total else None
    result.max_v2v_days = v2v_max if flows else None
    materials = d.costs.materials_per_therapy * total
    qc = d.costs.qc_per_therapy * total
    result.cost = {
        "facility": round(fixed_total, 2),
        "variable": round(var_total, 2),
        "transport_out": round(out_cost, 2),
        "transport_back": round(back_cost, 2),
        "materials": round(materials, 2),
        "qc": round(qc, 2),
    }
    result.cost["total"] = round(sum(result.cost.values()), 2)
    result.cost_per_therapy = {
        k: round(v / total, 2) if total else 0.0 for k, v in result.cost.items()
    }


def _mode_costs(d: DesignInput, rs: list[Route]) -> dict[tuple[int, int, str], float]:
    """Cost of one shipment per (center, site, mode), as the routes were built."""
    out: dict[tuple[int, int, str], float] = {}
    for c, j in {(r.center, r.site) for r in rs}:
        for mode, fig in _lane(d, d.centers[c], d.candidates[j]).items():
            if fig is not None:
                out[(c, j, mode)] = fig[1]
    return out


def _explain(
    d: DesignInput,
    rs: list[Route],
    arrivals: np.ndarray,
    kind: str,
    result: DesignResult,
    seconds: float,
) -> None:
    """Why no design exists: patients that cannot be served, by center, and what binds."""
    seconds = max(seconds, 5.0)
    if kind == "time":
        cheapest = solve_design(d, objective="cost", time_limit=seconds)
        if cheapest.solved and d.limits.budget_per_therapy is not None:
            per = cheapest.cost_per_therapy.get("total", 0.0)
            if per > d.limits.budget_per_therapy + 1e-6:
                bound_per = (cheapest.bound or 0.0) / max(result.patients, 1.0)
                result.explanation.append(
                    f"budget: the cheapest design found costs {per:,.0f} {d.currency} per therapy "
                    f"(no design below {bound_per:,.0f}), above the budget of "
                    f"{d.limits.budget_per_therapy:,.0f} per therapy"
                )
                return
    short = _unserved(d, rs, arrivals, seconds, max_sites=True)
    if short is None:
        result.explanation.append("the solver proved the design infeasible (no diagnosis found)")
        return
    for ci, n in enumerate(short):
        if n > 1e-6:
            result.unserved[d.centers[ci].id] = round(float(n), 6)
    total = float(short.sum())
    if total <= 1e-6:
        result.explanation.append("infeasible only in whole patients (the flows' integrality)")
        return
    limited = d.limits.max_sites is not None
    relaxed = _unserved(d, rs, arrivals, seconds, max_sites=False) if limited else None
    because = "capacity shortfall"
    if limited and relaxed is not None and relaxed.sum() < total - 1e-6:
        because = f"the limit of {d.limits.max_sites} sites"
    result.explanation.append(
        f"{because}: at least {total:g} of {result.patients:g} patients cannot be served "
        f"within the {d.v2v_cap_days}-day cap with the largest sizes of the candidates "
        "each center may use"
    )
    for cid, n in result.unserved.items():
        options = sorted({d.candidates[r.site].id for r in rs if d.centers[r.center].id == cid})
        result.explanation.append(
            f"center {cid}: {n:g} patients unserved (may use: {', '.join(options)})"
        )


def _unserved(
    d: DesignInput, rs: list[Route], arrivals: np.ndarray, seconds: float, *, max_sites: bool
) -> np.ndarray | None:
    """Fewest patients left unserved per center (continuous flows), or None if not solved."""
    model = _build(d, rs, arrivals, "cost", allow_unserved=True, budget=False, max_sites=max_sites)
    h = _run(model, seconds, 1e-6)
    if int(h.getInfo().primal_solution_status) != 2:
        return None
    col = np.asarray(h.getSolution().col_value)
    u = col[model.n_cols - model.n_unserved :]
    per_center = np.zeros(len(d.centers))
    np.add.at(per_center, model.unserved_center, u)
    return per_center
