"""Solving the model, with a proof: column generation over every chain, then branch and bound.

Every candidate chain of every order (every start day of the planner's horizon)
is in the pool; the LP holds a few per order and a chain joins when its reduced
cost under the LP duals is negative, until none is. Pricing runs over the whole
pool, so the LP is then optimal over every chain of the problem and its value,
lowered by the (tolerance-sized) negative reduced costs left out, is a valid lower
bound. An integral LP optimum is optimal as it is (with only order, site-day and
Σ u ≤ U rows the matrix is a network matrix: ``transportation-lp``). A fractional
one goes to HiGHS's MIP with the incumbent as start; every chain whose reduced
cost is small enough that it could still improve on the MIP's plan is then added
and the MIP solved again, so that no chain left out can beat the result: any
plan using a chain ``k`` left out costs at least ``LP bound + rc_k``. The bound
reported is ``max(LP bound, min(MIP bound, LP bound + least reduced cost left
out))``. Apheresis rows are added lazily (``Problem.activate``): a plan is checked
exactly against every center's capacity, and the level is solved again with the
rows of the centers it overfills.

Lexicographic objective (default): level 1 minimises the number of orders left
out (an order left out costs 1; each chain costs its level-2 cost scaled so that
no plan's chains total more than 1/2, a tie-break that keeps the LP from
degenerate pivots; the count is an integer, so its bound is ⌈LP bound − 1/2⌉),
level 2 adds the row Σ u ≤ U with U the level-1 plan's count and
minimises weighted time to treatment + cost_weight × lane cost, starting from the
level-1 plan. ``optimal`` only when both levels are proven; otherwise
``feasible`` with the bounds found.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from cartnet.schedule.optimizer.formulation import Costs, Problem
from cartnet.schedule.optimizer.result import MIP, NOTHING, TRANSPORTATION_LP, PlanStatus, gap

INITIAL_CHAINS = 4
"""Chains per order in the first LP (its cheapest); column generation adds the rest."""
PRICED_PER_ROUND = 8
"""At most this many chains join per order and pricing round (the most negative)."""
COMPLETION_LIMIT = 200_000
"""Most chains added to a MIP so that no chain left out could improve on its plan."""
PRICING_TOLERANCE = 1e-7


@dataclass
class Solved:
    status: PlanStatus
    method: str
    objective: float | None
    """Level 2 (lexicographic) or the penalty objective."""
    bound: float | None
    gap: float | None
    chosen: dict[int, int]
    """Job index → its chain in the pool."""
    seconds: float
    message: str
    assigned_bound: int | None = None
    """Lexicographic: at most this many jobs can be assigned by any plan."""


@dataclass
class _Level:
    chosen: dict[int, int]
    value: float
    bound: float
    proven: bool
    method: str
    notes: list[str] = field(default_factory=list)


class Search:
    """Column and row generation over one problem, level after level, against a deadline."""

    def __init__(self, problem: Problem, deadline: float, mip_gap: float) -> None:
        self.p = problem
        self.deadline = deadline
        self.mip_gap = mip_gap
        self.in_model = self._initial_columns()
        self.notes: list[str] = []
        self.name = ""

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def _initial_columns(self) -> np.ndarray:
        p = self.p.pool
        cost = self.p.cost
        order = np.argsort(p.job * (2.0 * np.abs(cost).max() + 1.0) + cost)
        rank = np.arange(p.size) - self.p.bounds[p.job[order]]
        in_model = np.zeros(p.size, dtype=bool)
        in_model[order[rank < INITIAL_CHAINS]] = True
        for k in self.p.start_at.values():
            in_model[k] = True
        return in_model

    def trivial_bound(self, costs: Costs) -> float:
        """Each order at its cheapest, capacity ignored; with Σ u ≤ U and free left-out
        orders, at least n − U orders pay their cheapest chain."""
        p = self.p
        if p.most_unassigned is None or costs.unassigned.any():
            return p.trivial_bound(costs)
        cheapest = np.full(p.n_jobs, np.inf)
        if p.pool.size:
            np.minimum.at(cheapest, p.pool.job, costs.chain)
        must = p.n_jobs - int(p.most_unassigned)
        return float(np.sort(cheapest)[:must].sum()) if must > 0 else 0.0

    # -- one level

    def level(self, costs: Costs, start: dict[int, int], name: str = "") -> _Level:
        """The best plan for ``costs`` and a proven lower bound; ``start`` is a plan that
        fits every row (the incumbent if the time runs out)."""
        p = self.p
        self.name = name
        bound = self.trivial_bound(costs)
        while True:
            lp = self._lp(costs)
            if lp is None:
                return self.stopped(costs, start, bound, "time limit reached in the LP")
            lb, x, rc = lp
            bound = max(bound, lb)
            if p.integral(x):
                chosen, proven, level_bound = p.chosen_of(x), True, lb
                method = TRANSPORTATION_LP if p.transportation else MIP
                note = (
                    "the LP optimum is integral (network matrix)" if p.transportation
                    else "the LP relaxation's optimum is integral (no branching)"
                )  # fmt: skip
            else:
                mip = self._mip(costs, rc, lb, start)
                if mip is None:
                    return self.stopped(costs, start, bound, "time limit reached in the MIP")
                chosen, proven, level_bound, note = mip
                method = MIP
            violated = p.violated(chosen)
            if violated and self.left() > 0:
                p.activate(violated)
                self.notes.append(f"{name}apheresis rows added for {len(violated)} centers")
                continue
            if violated:
                chosen, proven = p.repair(chosen, violated), False
                note += "; time limit: orders dropped to fit apheresis"
            return self._result(costs, chosen, max(bound, level_bound), proven, method, note)

    def _result(
        self, costs: Costs, chosen: dict[int, int], bound: float, proven: bool, method: str,
        note: str,
    ) -> _Level:  # fmt: skip
        if costs.count_only:
            # Σ u ≥ (Σ u + tie-break) − noise for every plan, and Σ u is an integer
            value = float(self.p.n_jobs - len(chosen))
            bound = min(float(math.ceil(bound - costs.noise - 1e-6)), value)
            closed = value - bound <= 1e-9
        else:
            value = self.p.objective_of(chosen, costs)
            bound = min(bound, value)
            closed = gap(value, bound) <= self.mip_gap or value - bound <= 1e-9
        self.notes.append(self.name + note)
        return _Level(chosen, value, bound, proven and closed, method)

    def stopped(self, costs: Costs, start: dict[int, int], bound: float, why: str) -> _Level:
        return self._result(costs, start, bound, False, MIP, why + "; the plan is the start plan")

    def _lp(self, costs: Costs) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Column generation to the LP optimum over every pool chain: (lower bound, x per
        chain, reduced costs per chain); None if the time ran out."""
        p, in_model = self.p, self.in_model
        ks = np.flatnonzero(in_model)
        h = p.highs(ks, costs, False, self.left(), self.mip_gap)
        blocks = [(0, ks)]
        n_fixed = ks.size + p.n_jobs + p.layout.n_cols
        while True:
            if self.left() <= 0:
                return None
            h.setOptionValue("time_limit", max(self.left(), 1e-3))
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            sol = h.getSolution()
            rc = p.reduced_costs(np.asarray(sol.row_dual), costs)
            rc_out = np.where(in_model, np.inf, rc)
            enter = np.flatnonzero(rc_out < -PRICING_TOLERANCE)
            if not enter.size:
                break
            # the most negative few per order
            order = enter[np.lexsort((rc_out[enter], p.pool.job[enter]))]
            jobs = p.pool.job[order]
            rank = np.arange(order.size) - np.searchsorted(jobs, jobs)
            new = np.sort(order[rank < PRICED_PER_ROUND])
            starts, index, value = p.chain_csc(new)
            h.addCols(
                int(new.size), costs.chain[new], np.zeros(new.size), np.ones(new.size),
                int(index.size), starts[:-1].astype(np.int32), index.astype(np.int32), value,
            )  # fmt: skip
            blocks.append((n_fixed, new))
            n_fixed += new.size
            in_model[new] = True
        col = np.asarray(sol.col_value)
        x = np.zeros(p.pool.size)
        for at, ids in blocks:
            x[ids] = col[at : at + ids.size]
        # a chain left out with a slightly negative reduced cost could lower the LP by as much
        slack = float(np.minimum(rc_out[~in_model], 0.0).sum())
        return float(h.getInfo().objective_function_value) + slack, x, rc

    def _mip(
        self, costs: Costs, rc: np.ndarray, lb: float, start: dict[int, int]
    ) -> tuple[dict[int, int], bool, float, str] | None:
        """Branch and bound on the chains in the model; then, if chains left out could still
        improve on the plan (LP bound + reduced cost below it), once more with them."""
        p, in_model = self.p, self.in_model
        incumbent: dict[int, int] | None = start
        best: tuple[dict[int, int], bool, float, str] | None = None
        for _ in range(2):
            if self.left() <= 0:
                break
            ks = np.flatnonzero(in_model)
            h = p.highs(ks, costs, True, self.left(), self.mip_gap)
            if incumbent is not None:
                vector = p.start_vector(ks, incumbent)
                if vector is not None:
                    sol = highspy.HighsSolution()
                    sol.col_value = vector.tolist()
                    h.setSolution(sol)
            h.run()
            info = h.getInfo()
            if int(info.primal_solution_status) != 2:  # no feasible solution
                break
            col = np.asarray(h.getSolution().col_value)
            x = np.zeros(p.pool.size)
            x[ks] = col[: ks.size]
            chosen = p.chosen_of(x)
            upper = p.objective_of(chosen, costs)
            out = ~in_model
            least = float(rc[out].min()) if out.any() else np.inf
            mip_bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else lb
            bound = max(lb, min(mip_bound, lb + least))
            proven = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
            best = (chosen, proven, bound, "MIP: " + h.modelStatusToString(h.getModelStatus()))
            incumbent = chosen
            # level 1 improves only with one order more: to at most (U − 1) + noise
            left_out = p.n_jobs - len(chosen)
            better = left_out - 1 + costs.noise + 1e-6 if costs.count_only else upper - 1e-9
            could_improve = out & (lb + rc < better)
            if not proven or not could_improve.any():
                break
            if could_improve.sum() > COMPLETION_LIMIT:
                best = (chosen, False, bound, best[3] + "; too many chains to prove")
                break
            in_model |= could_improve
        return best


def solve(problem: Problem, penalty: float | None, deadline: float, mip_gap: float) -> Solved:
    """The lexicographic plan (``penalty`` None) or the penalty plan, with its proof."""
    clock = time.perf_counter()
    p = problem
    n = p.n_jobs
    if p.pool.size == 0:
        objective = float((p.weight * penalty).sum()) if penalty is not None else 0.0
        return Solved(
            PlanStatus.OPTIMAL, NOTHING, objective, objective, 0.0, {}, 0.0,
            "no order has a candidate chain" if n else "empty backlog",
            None if penalty is not None else 0,
        )  # fmt: skip
    search = Search(p, deadline, mip_gap)
    start = p.start_chosen()
    if penalty is not None:
        one = search.level(Costs(p.cost, p.weight * penalty), start)
        return _solved(search, one, one.proven, None, clock)
    # level 1 counts orders left out; a tie-break of at most 1/2 over any plan (level 2's
    # cost scaled by 1/2 over its largest total) keeps the LP from degenerate pivots
    largest = np.zeros(n)
    np.maximum.at(largest, p.pool.job, p.cost)
    noise = 0.5
    tie_break = p.cost * (noise / max(float(largest.sum()), 1e-9))
    first = search.level(Costs(tie_break, np.ones(n), True, noise), start, "level 1: ")
    assigned_bound = n - round(first.bound)
    p.most_unassigned = n - len(first.chosen)
    second_costs = Costs(p.cost, np.zeros(n))
    if search.left() > 0:
        second = search.level(second_costs, first.chosen, "level 2: ")
    else:
        second = search.stopped(
            second_costs, first.chosen, search.trivial_bound(second_costs), "time limit"
        )
    if not first.proven:
        search.notes.append(
            f"level 1 not proven: any plan assigns at most {assigned_bound}; the bound of "
            "level 2 holds for plans that assign as many as this one"
        )
    return _solved(search, second, first.proven and second.proven, assigned_bound, clock)


def _solved(
    search: Search, level: _Level, proven: bool, assigned_bound: int | None, clock: float
) -> Solved:
    p = search.p
    search.notes.append(f"{int(search.in_model.sum())} of {p.pool.size} candidate chains priced in")
    return Solved(
        PlanStatus.OPTIMAL if proven else PlanStatus.FEASIBLE, level.method, level.value,
        level.bound, gap(level.value, level.bound), level.chosen,
        time.perf_counter() - clock, "; ".join(search.notes), assigned_bound,
    )  # fmt: skip
