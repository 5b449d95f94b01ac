"""The network design written per patient, in the style of the i-SHIPMENT paper.

The yardstick for ``cartnet.design.solve`` (which aggregates patients into daily
flows): one binary per patient, site, day and mode, as Triantafyllou et al.
(Sci Rep 2022) write their model, built here from the design file alone (lane
prices, routes and capacity rows are derived again, not borrowed from solve.py)
and solved by HiGHS as one MILP:

    open[j,k] ∈ {0,1}       site j opens with size k
    out[p,j,o,s] ∈ {0,1}    patient p goes to j by mode o and starts manufacturing on day s
    back[p,j,b,u] ∈ {0,1}   its product leaves j by mode b on day u
    min  Σ F_jk·open + Σ U_out·out + Σ (U_back + V_j)·back + (materials + QC)·N
    s.t. Σ out[p,·] = 1, Σ back[p,·] = 1                          each patient
         Σ_o out[p,j,o,s] = Σ_b back[p,j,b,s+M_j+Q_j]             each p, j, s
         Σ_{p,o, s∈(d−C_j, d]} β·out[p,j,o,s] ≤ Σ_k lines_k·open[j,k]  each j, day d
         Σ_{o,s} out[p,j,o,s] ≤ Σ_k open[j,k]                     each p, j
         Σ_k open[j,k] ≤ 1 (= 1 must_open), Σ open ≤ max_sites
         columns only where A + L_o ≤ s − t and u + L_b − t ≤ cap (t: arrival day)

With ``wait=False`` the start day is the arrival of the material (``s = t + A +
L_o``), the authors' rigid timing; cartnet lets material wait for a line, so
with ``wait=True`` (default) both models solve the same problem and must agree
on the optimum. Only the cost objective with whole-patient arrivals is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from cartnet.design.model import DesignInput, km_between


@dataclass
class PerPatientResult:
    status: str
    objective: float | None
    sites: dict[str, int]
    """Open site → lines."""
    binaries: int
    seconds: float


def _prices(d: DesignInput, ci: int, ji: int) -> dict[str, tuple[int, float, float]]:
    """Per available mode: transit days, outbound price, return price."""
    c, j = d.centers[ci], d.candidates[ji]
    km = km_between(c.lat, c.lon, j.lat, j.lon)
    found = {}
    for m in d.modes:
        price = m.cost_per_shipment + m.cost_per_km * km
        found[m.id] = (m.transit_days, price, price)
    for lane in d.lanes:
        if lane.center != c.id or lane.site != j.id:
            continue
        if not lane.available:
            found.pop(lane.mode, None)
            continue
        days, out, back = found[lane.mode]
        if lane.cost_per_shipment is not None:
            out = back = lane.cost_per_shipment
        out = out if lane.cost_out is None else lane.cost_out
        back = back if lane.cost_back is None else lane.cost_back
        found[lane.mode] = (days if lane.transit_days is None else lane.transit_days, out, back)
    return found


def solve_per_patient(
    d: DesignInput, *, wait: bool = True, time_limit: float = 600.0, threads: int | None = None
) -> PerPatientResult:
    """Build and solve the per-patient MILP of ``d`` (cost objective)."""
    if d.objective != "cost":
        raise ValueError("the per-patient yardstick minimises cost only")
    started = time.perf_counter()
    a = d.durations.apheresis_days
    patients: list[tuple[int, int]] = []  # (center, arrival day)
    for ci, c in enumerate(d.centers):
        counts = d.daily_arrivals(c)
        if not np.allclose(counts, np.round(counts)):
            raise ValueError(f"center {c.id}: arrivals must be whole patients")
        for t in np.flatnonzero(counts):
            patients += [(ci, int(t))] * round(float(counts[t]))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 1e-6)
    if threads:
        h.setOptionValue("threads", threads)
    inf = highspy.kHighsInf
    n = 0
    cost: list[float] = []

    def column(c: float) -> int:
        nonlocal n
        cost.append(c)
        n += 1
        return n - 1

    open_cols: dict[int, list[tuple[int, int]]] = {}  # site → (col, lines)
    for ji, cand in enumerate(d.candidates):
        open_cols[ji] = [(column(s.fixed_cost(d.horizon_days)), s.lines) for s in cand.sizes]
    rows: list[tuple[float, float, list[int], list[float]]] = []
    starts: dict[tuple[int, int], list[int]] = {}  # (site, start day) → out columns
    for ci, t in patients:
        outs_p: list[int] = []
        backs_p: list[int] = []
        for ji, cand in enumerate(d.candidates):
            if cand.markets is not None and d.centers[ci].market not in cand.markets:
                continue
            modes = _prices(d, ci, ji)
            if not modes:
                continue
            mq = d.manufacturing_days(cand) + d.qc_days(cand)
            var = cand.sizes[0].variable_cost_per_therapy
            fastest_back = min(v[0] for v in modes.values())
            by_start: dict[int, list[int]] = {}
            for lo, price_out, _ in modes.values():
                first = t + a + lo
                last = t + d.v2v_cap_days - mq - fastest_back if wait else first
                for s in range(first, last + 1):
                    if s + mq + fastest_back - t > d.v2v_cap_days:
                        continue
                    col = column(price_out)
                    by_start.setdefault(s, []).append(col)
                    starts.setdefault((ji, s), []).append(col)
            site_outs = [col for cols in by_start.values() for col in cols]
            for s, out_cols in by_start.items():
                u = s + mq
                back_cols = [
                    column(price_back + var)
                    for lb, _, price_back in modes.values()
                    if u + lb - t <= d.v2v_cap_days
                ]
                backs_p += back_cols
                rows.append(
                    (
                        0.0,
                        0.0,
                        out_cols + back_cols,
                        [1.0] * len(out_cols) + [-1.0] * len(back_cols),
                    )
                )
            if site_outs:
                outs_p += site_outs
                sizes = [col for col, _ in open_cols[ji]]
                rows.append(
                    (-inf, 0.0, site_outs + sizes, [1.0] * len(site_outs) + [-1.0] * len(sizes))
                )
        if not outs_p:
            return PerPatientResult("infeasible", None, {}, n, time.perf_counter() - started)
        rows.append((1.0, 1.0, outs_p, [1.0] * len(outs_p)))
        rows.append((1.0, 1.0, backs_p, [1.0] * len(backs_p)))
    for ji, cand in enumerate(d.candidates):
        window = d.cycle_days(cand)
        days = sorted({s for (j, s) in starts if j == ji})
        size_cols = [col for col, _ in open_cols[ji]]
        size_lines = [-float(lines) for _, lines in open_cols[ji]]
        for day in days:
            cols = [c for s in range(day - window + 1, day + 1) for c in starts.get((ji, s), [])]
            rows.append(
                (-inf, 0.0, cols + size_cols, [d.batches_per_patient] * len(cols) + size_lines)
            )
        low = 1.0 if cand.must_open else 0.0
        rows.append((low, 1.0, size_cols, [1.0] * len(size_cols)))
    all_open = [col for cols in open_cols.values() for col, _ in cols]
    if d.limits.max_sites is not None:
        rows.append((-inf, float(d.limits.max_sites), all_open, [1.0] * len(all_open)))

    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array(cost))
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
    )
    starts_at = np.cumsum([0] + [len(r[2]) for r in rows])
    h.addRows(
        len(rows),
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        int(starts_at[-1]),
        starts_at[:-1].astype(np.int32),
        np.array([c for r in rows for c in r[2]], dtype=np.int32),
        np.array([v for r in rows for v in r[3]]),
    )
    h.run()
    status = h.getModelStatus()
    seconds = time.perf_counter() - started
    if status == highspy.HighsModelStatus.kInfeasible:
        return PerPatientResult("infeasible", None, {}, n, seconds)
    info = h.getInfo()
    if info.primal_solution_status != 2:  # no feasible solution
        return PerPatientResult("no-solution", None, {}, n, seconds)
    x = np.array(h.getSolution().col_value)
    offset = (d.costs.materials_per_therapy + d.costs.qc_per_therapy) * len(patients)
    sites = {
        d.candidates[ji].id: lines
        for ji, cols in open_cols.items()
        for col, lines in cols
        if x[col] > 0.5
    }
    label = "optimal" if status == highspy.HighsModelStatus.kOptimal else "feasible"
    return PerPatientResult(label, float(info.objective_function_value) + offset, sites, n, seconds)
