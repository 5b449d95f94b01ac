"""The assignment model over a pool of candidate chains, as HiGHS rows and columns.

Binary ``x_k`` per candidate chain ``k``, ``u_o`` per order ``o`` (left out)::

    Σ_{k of o} x_k + u_o = 1                                  each order
    Σ_{k starting at site s on day d} x_k ≤ free slots(s, d)
    Σ_{k releasing at s on day r} x_k ≤ free QC(s, r)           where QC is finite
    Σ_{k of non-holders in q's window} x_k
      − Σ_{k of holders before it} x_k ≤ F_q − R_q               each quota q
    collections at center j on day t ≤ free apheresis(j, t)
    Σ_o u_o ≤ U                                                 level 2 only

A quota ``q`` still holds ``R_q`` slots; ``F_q`` are the free slots of its window
not yet released. Others may book there while the free slots exceed what the
quota still holds (``CapacityCalendar.held_for_others``), counting bookings in the
order a plan is booked: holders first. Cryopreserved material may be collected on
any day from the earliest apheresis to the chain's latest day: each order of a
center whose apheresis capacity can bind gets a small flow backward through its
days into that center's day rows. Rows that can never bind are left out (a
site-day, QC day or quota with room for every order that could use it), and a
center's apheresis rows are in the model only once a plan has needed them
(``active``): both leave a relaxation, so its bounds stay valid.

The costs are the search's (``search.py``): each level of the objective prices
chains and left-out orders its own way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from cartnet.highs import new_highs
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.optimizer.apheresis import (
    capacity_of,
    collection_days,
    matching,
    never_binds,
)
from cartnet.schedule.optimizer.chains import Chains, Job

_INF = highspy.kHighsInf


@dataclass(frozen=True)
class Costs:
    """One level's objective: a cost per pool chain and per order left out."""

    chain: np.ndarray
    unassigned: np.ndarray
    count_only: bool = False
    """Level 1: the value is the number of orders left out; ``chain`` costs are a small
    tie-break whose total over any plan stays below ``noise``."""
    noise: float = 0.0


@dataclass
class Layout:
    """The apheresis part of the model for the centers whose rows are in it."""

    row_lower: np.ndarray
    row_upper: np.ndarray
    chain_row: np.ndarray
    """Per pool chain: its node row (cryopreserved) or center-day row (fresh), or -1."""
    starts: np.ndarray
    index: np.ndarray
    value: np.ndarray
    """Flow columns (collect, store) in CSC form."""
    flows: dict[int, tuple[int, int, np.ndarray, np.ndarray]]
    """Job → (first day, its first store column, collection days, their columns)."""

    @property
    def n_cols(self) -> int:
        return int(self.starts.size - 1)


class Problem:
    """The assignment problem over a pool of chains; solved by column and row generation."""

    def __init__(
        self,
        calendar: CapacityCalendar,
        jobs: list[Job],
        pool: Chains,
        cost_weight: float,
        today: int,
        start_at: dict[int, int],
    ) -> None:
        self.cal = calendar
        self.jobs = jobs
        self.today = today
        self.n_jobs = n = len(jobs)
        self.weight = np.array([j.order.weight for j in jobs], dtype=float)
        self.pool, self.start_at = self._quota_filter(pool, start_at)
        p = self.pool
        self.bounds = p.bounds(n)
        self.cost = self.weight[p.job] * p.ttt + cost_weight * p.cost if p.size else np.zeros(0)
        """Level 2 cost of each chain: weighted time to treatment + cost_weight × lane cost."""
        self.most_unassigned: float | None = None
        """Right-hand side of the row Σ u_o ≤ U (level 2 of the lexicographic objective)."""
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.n_rows = 0
        self.side = Counter[str]()
        table: list[np.ndarray] = []
        coef: list[np.ndarray] = []
        orders = self._rows(np.ones(n), np.ones(n))
        table.append(orders[p.job])
        coef.append(np.ones(p.size, dtype=np.int8))
        for family, rows in (("site-day", self._site_day_rows()), ("qc-day", self._qc_rows())):
            if rows is not None:
                table.append(rows)
                coef.append(np.ones(p.size, dtype=np.int8))
                self.side[family] = int(np.unique(rows[rows >= 0]).size)
        for rows, signs in self._quota_rows():
            table.append(rows)
            coef.append(signs)
        self.table = np.stack(table, axis=1) if p.size else np.zeros((0, 1), dtype=np.int64)
        self.coef = np.stack(coef, axis=1) if p.size else np.zeros((0, 1), dtype=np.int8)
        self.fixed_rows = self.n_rows
        self.maybe_binding = self._maybe_binding_centers()
        self.active: set[int] = set()
        self.layout = self._layout()

    # -- rows that never change

    def _rows(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        ids = self.n_rows + np.arange(lower.size)
        self.n_rows += int(lower.size)
        self.lower.append(np.asarray(lower, dtype=float))
        self.upper.append(np.asarray(upper, dtype=float))
        return ids

    def _capacity_rows(
        self, key: np.ndarray, use: np.ndarray, free: np.ndarray
    ) -> np.ndarray | None:
        """Per chain, its ``≤ free`` row, for keys that more orders could use than have room.

        An order has at most one chain per key (one per site and start day, or per site
        and release day), so the chains on a key count distinct orders.
        """
        if not use.any():
            return None
        uniq, inverse, counts = np.unique(key[use], return_inverse=True, return_counts=True)
        room = free[uniq]
        binding = counts > room
        if not binding.any():
            return None
        ids = np.full(uniq.size, -1, dtype=np.int64)
        ids[binding] = self._rows(np.full(int(binding.sum()), -_INF), room[binding].astype(float))
        rows = np.full(use.size, -1, dtype=np.int64)
        rows[use] = ids[inverse]
        return rows

    def _site_day_rows(self) -> np.ndarray | None:
        p, cal = self.pool, self.cal
        free = (cal.slots - cal.booked).astype(np.int64).ravel()
        return self._capacity_rows(p.site * cal.days + p.start, np.ones(p.size, dtype=bool), free)

    def _qc_rows(self) -> np.ndarray | None:
        p, cal = self.pool, self.cal
        finite = np.array([s.qc_capacity_per_day is not None for s in cal.network.sites])
        use = finite[p.site] & (p.release < cal.days)
        free = (cal.qc - cal.qc_booked).astype(np.int64).ravel()
        key = p.site * cal.days + np.minimum(p.release, cal.days - 1)
        return self._capacity_rows(key, use, free)

    def _quota_windows(self) -> list[tuple[int, int, int, int, int, np.ndarray]]:
        """Per quota still holding slots: (site, first, open_from, last, room, holder mask);
        ``room`` = free slots of the unreleased window − slots the quota still holds."""
        cal = self.cal
        found = []
        for qs in cal._quotas:  # the quotas' use lives only in the calendar's quota states
            q = qs.quota
            remaining = qs.slots - qs.used
            open_from = max(qs.first, self.today + q.release_days_ahead + 1)
            if remaining <= 0 or open_from > qs.last:
                continue
            i = cal.site_index[q.site]
            free = int(
                (cal.slots[i, open_from : qs.last + 1] - cal.booked[i, open_from : qs.last + 1])
                .clip(min=0)
                .sum()
            )
            holds = np.array([j.party.holds(q) for j in self.jobs], dtype=bool)
            found.append((i, qs.first, open_from, qs.last, free - remaining, holds))
        return found

    def _quota_filter(
        self, pool: Chains, start_at: dict[int, int]
    ) -> tuple[Chains, dict[int, int]]:
        """Drop chains of non-holders inside a window whose quota leaves no room at all.

        The calendar lets such a chain through only once the holder's own early
        bookings shrink the protection, or when its party holds another quota
        there; the model counts on neither.
        """
        if not pool.size or not self.cal.quotas:
            return pool, start_at
        keep = np.ones(pool.size, dtype=bool)
        for i, _, open_from, last, room, holds in self._quota_windows():
            if room >= 1:
                continue
            inside = (pool.site == i) & (pool.start >= open_from) & (pool.start <= last)
            keep &= ~(inside & ~holds[pool.job])
        if keep.all():
            return pool, start_at
        new = np.cumsum(keep) - 1
        return pool.select(keep), {j: int(new[k]) for j, k in start_at.items() if keep[k]}

    def _quota_rows(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Table columns (row per chain, -1 if none; coefficient) of the quota rows."""
        p = self.pool
        entries: list[tuple[np.ndarray, int, int]] = []
        for i, first, open_from, last, room, holds in self._quota_windows():
            at = p.site == i
            others = at & (p.start >= open_from) & (p.start <= last) & ~holds[p.job]
            if np.unique(p.job[others]).size <= room:
                continue
            early = at & (p.start >= first) & (p.start < open_from) & holds[p.job]
            [row] = self._rows(np.array([-_INF]), np.array([float(room)]))
            entries.append((np.flatnonzero(others), int(row), 1))
            entries.append((np.flatnonzero(early), int(row), -1))
            self.side["quota"] += 1
        if not entries:
            return []
        chain = np.concatenate([e[0] for e in entries])
        row = np.concatenate([np.full(e[0].size, e[1]) for e in entries])
        sign = np.concatenate([np.full(e[0].size, e[2]) for e in entries])
        order = np.argsort(chain, kind="stable")
        chain, row, sign = chain[order], row[order], sign[order]
        slot = np.arange(chain.size) - np.searchsorted(chain, chain)
        columns = []
        for s in range(int(slot.max()) + 1 if slot.size else 0):
            on = slot == s
            rows = np.full(p.size, -1, dtype=np.int64)
            signs = np.zeros(p.size, dtype=np.int8)
            rows[chain[on]] = row[on]
            signs[chain[on]] = sign[on]
            columns.append((rows, signs))
        return columns

    # -- apheresis rows, for the centers where they are needed

    def _maybe_binding_centers(self) -> set[int]:
        p = self.pool
        cap = self.cal.apheresis - self.cal.apheresis_booked
        by_center: dict[int, list[Job]] = defaultdict(list)
        for j in self.jobs:
            if self.bounds[j.index + 1] > self.bounds[j.index]:
                by_center[j.center].append(j)
        found = set()
        for center, jobs in by_center.items():
            latest = [
                p.latest_apheresis[self.bounds[j.index] : self.bounds[j.index + 1]] for j in jobs
            ]
            if not never_binds(jobs, latest, cap[center]):
                found.add(center)
        return found

    def _layout(self) -> Layout:
        """Center-day rows and flows for the centers in ``self.active``."""
        p, cal = self.pool, self.cal
        self.n_rows = self.fixed_rows
        cap = (cal.apheresis - cal.apheresis_booked).astype(np.int64)
        chain_row = np.full(p.size, -1, dtype=np.int64)
        cols: list[tuple[np.ndarray, np.ndarray]] = []  # per flow column: rows, values
        flows: dict[int, tuple[int, int, np.ndarray, np.ndarray]] = {}
        n_cols = 0
        lower: list[float] = []
        upper: list[float] = []
        center_row: dict[tuple[int, int], int] = {}

        def new_row(lo: float, hi: float) -> int:
            lower.append(lo)
            upper.append(hi)
            return self.fixed_rows + len(lower) - 1

        def day_row(center: int, t: int) -> int:
            r = center_row.get((center, t))
            if r is None:
                r = center_row[(center, t)] = new_row(-_INF, float(cap[center, t]))
            return r

        for job in self.jobs:
            if job.center not in self.active:
                continue
            lo_k, hi_k = int(self.bounds[job.index]), int(self.bounds[job.index + 1])
            if hi_k == lo_k:
                continue
            latest = p.latest_apheresis[lo_k:hi_k]
            if job.fresh:
                chain_row[lo_k:hi_k] = [day_row(job.center, int(t)) for t in latest]
                continue
            lo, hi = job.first_a, int(latest.max())
            nodes = np.array([new_row(0.0, 0.0) for _ in range(hi - lo + 1)])
            chain_row[lo_k:hi_k] = nodes[latest - lo]
            first_store = n_cols
            for t in range(lo + 1, hi + 1):  # store: material of day t collected on day t-1
                cols.append((np.array([nodes[t - lo], nodes[t - lo - 1]]), np.array([-1.0, 1.0])))
                n_cols += 1
            days = np.flatnonzero(cap[job.center, lo : hi + 1] > 0) + lo
            collect = np.arange(n_cols, n_cols + days.size)
            for t in days.tolist():
                cols.append(
                    (np.array([nodes[t - lo], day_row(job.center, t)]), np.array([-1.0, 1.0]))
                )
                n_cols += 1
            flows[job.index] = (lo, first_store, days, collect)
        self.n_rows = self.fixed_rows + len(lower)
        sizes = np.array([c[0].size for c in cols], dtype=np.int64)
        return Layout(
            row_lower=np.array(lower, dtype=float),
            row_upper=np.array(upper, dtype=float),
            chain_row=chain_row,
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            index=np.concatenate([c[0] for c in cols]).astype(np.int64)
            if cols
            else np.zeros(0, dtype=np.int64),
            value=np.concatenate([c[1] for c in cols]) if cols else np.zeros(0),
            flows=flows,
        )

    # -- columns for HiGHS

    def chain_csc(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.concatenate([self.table[ks], self.layout.chain_row[ks, None]], axis=1)
        vals = np.concatenate([self.coef[ks], np.ones((ks.size, 1), dtype=np.int8)], axis=1)
        on = rows >= 0
        starts = np.concatenate([[0], np.cumsum(on.sum(axis=1))])
        return starts, rows[on], vals[on].astype(float)

    def highs(
        self, ks: np.ndarray, costs: Costs, integer: bool, seconds: float, mip_gap: float
    ) -> Any:
        """A HiGHS model with chain columns ``ks``, then the unassigned and flow columns (and
        the row Σ u ≤ U when ``most_unassigned`` is set)."""
        n = self.n_jobs
        lay = self.layout
        c_start, c_index, c_value = self.chain_csc(ks)
        limit = self.most_unassigned is not None
        u_rows = np.arange(n)
        u_index = np.stack([u_rows, np.full(n, self.n_rows)], axis=1).ravel() if limit else u_rows
        per_u = 2 if limit else 1
        starts = np.concatenate(
            [
                c_start[:-1],
                c_index.size + per_u * np.arange(n),
                c_index.size + per_u * n + lay.starts,
            ]
        )
        index = np.concatenate([c_index, u_index, lay.index]).astype(np.int32)
        value = np.concatenate([c_value, np.ones(per_u * n), lay.value])
        n_cols = ks.size + n + lay.n_cols
        cost = np.concatenate([costs.chain[ks], costs.unassigned, np.zeros(lay.n_cols)])
        integrality = np.zeros(n_cols, dtype=np.int32)
        if integer:
            integrality[: ks.size] = 1
        row_lower = np.concatenate([*self.lower, lay.row_lower, [-_INF] if limit else []])
        row_upper = np.concatenate(
            [*self.upper, lay.row_upper, [float(self.most_unassigned or 0)] if limit else []]
        )
        options: dict[str, Any] = {"time_limit": max(seconds, 1e-3)}
        if integer:
            options["mip_rel_gap"] = 0.0 if costs.count_only else float(mip_gap)
            if costs.count_only:  # within 1/4 of the optimum: the count is proven
                options["mip_abs_gap"] = 0.25
        else:
            options["solver"] = "simplex"
        h = new_highs(**options)
        passed = h.passModel(
            n_cols, row_lower.size, int(index.size), int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize), 0.0, cost, np.zeros(n_cols), np.ones(n_cols),
            row_lower, row_upper, starts.astype(np.int32), index, value, integrality,
        )  # fmt: skip
        if passed == highspy.HighsStatus.kError:
            raise RuntimeError("internal error: HiGHS refused the model")
        return h

    def reduced_costs(self, dual: np.ndarray, costs: Costs) -> np.ndarray:
        """Reduced cost of every pool chain under row duals ``dual`` (in the model or not)."""
        y = np.append(dual, 0.0)  # row -1 (no row) has dual 0
        used = (self.coef * y[self.table]).sum(axis=1) + y[self.layout.chain_row]
        return np.asarray(costs.chain - used)

    def objective_of(self, chosen: dict[int, int], costs: Costs) -> float:
        ks = np.fromiter(chosen.values(), dtype=np.int64, count=len(chosen))
        left = np.ones(self.n_jobs, dtype=bool)
        left[np.fromiter(chosen.keys(), dtype=np.int64, count=len(chosen))] = False
        return float(costs.chain[ks].sum() + costs.unassigned[left].sum())

    def trivial_bound(self, costs: Costs) -> float:
        """Σ over orders of its cheapest option, capacity ignored: a lower bound on any plan."""
        best = costs.unassigned.copy()
        if self.pool.size:
            np.minimum.at(best, self.pool.job, costs.chain)
        return float(best.sum())

    @property
    def transportation(self) -> bool:
        """Only order rows and site-day rows (and Σ u ≤ U): a network flow, its LP integral."""
        return not self.active and not self.side["qc-day"] and not self.side["quota"]

    def activate(self, centers: set[int]) -> None:
        """Put the apheresis rows of ``centers`` into the model."""
        self.active |= centers
        self.layout = self._layout()

    def start_chosen(self) -> dict[int, int]:
        """The warm start (greedy) plan: job → its chain in the pool."""
        return dict(self.start_at)

    def start_vector(self, ks: np.ndarray, chosen: dict[int, int]) -> np.ndarray | None:
        """Column values of a plan (chains in ``ks``), with its flows; None if it cannot be
        written in this model."""
        lay = self.layout
        v = np.zeros(ks.size + self.n_jobs + lay.n_cols)
        where = {int(k): i for i, k in enumerate(ks.tolist())}
        collect = self.collection_plan(chosen)
        if collect is None:
            return None
        for job in self.jobs:
            k = chosen.get(job.index)
            if k is None:
                v[ks.size + job.index] = 1.0
                continue
            if k not in where:
                return None
            v[where[k]] = 1.0
            flow = lay.flows.get(job.index)
            if flow is None:
                continue
            lo, first_store, days, cols = flow
            a, latest = collect[job.index], int(self.pool.latest_apheresis[k])
            at = np.flatnonzero(days == a)
            if not lo <= a <= latest or not at.size:
                return None
            base = ks.size + self.n_jobs
            v[base + cols[at[0]]] = 1.0
            for t in range(a + 1, latest + 1):
                v[base + first_store + (t - lo - 1)] = 1.0
        return v

    def collection_plan(self, chosen: dict[int, int]) -> dict[int, int] | None:
        """Apheresis days for a plan, each as late as the center's capacity allows."""
        return collection_days(self.cal, self.jobs, self.pool, chosen)

    def integral(self, x: np.ndarray) -> bool:
        return bool(np.all(np.minimum(np.abs(x), np.abs(1 - x)) < 1e-6))

    def chosen_of(self, x: np.ndarray) -> dict[int, int]:
        ks = np.flatnonzero(x > 0.5)
        return {int(self.pool.job[k]): int(k) for k in ks}

    def violated(self, chosen: dict[int, int]) -> set[int]:
        """Centers (whose rows are not in the model) that cannot collect the plan's orders."""
        cap = self.cal.apheresis - self.cal.apheresis_booked
        windows: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for j, k in chosen.items():
            job = self.jobs[j]
            if job.center in self.maybe_binding and job.center not in self.active:
                latest = int(self.pool.latest_apheresis[k])
                windows[job.center].append((latest if job.fresh else job.first_a, latest))
        return {
            center
            for center, w in windows.items()
            if matching(sorted(w), capacity_of(cap[center])) is None
        }

    def repair(self, chosen: dict[int, int], centers: set[int]) -> dict[int, int]:
        """Drop the orders a center cannot collect (earliest deadline first keeps the rest)."""
        cap = self.cal.apheresis - self.cal.apheresis_booked
        kept = dict(chosen)
        for center in centers:
            group = [(j, k) for j, k in chosen.items() if self.jobs[j].center == center]
            windows = []
            for j, k in group:
                latest = int(self.pool.latest_apheresis[k])
                windows.append((latest if self.jobs[j].fresh else self.jobs[j].first_a, latest))
            order = sorted(range(len(group)), key=lambda i: windows[i])
            days = matching([windows[i] for i in order], capacity_of(cap[center]), drop=True)
            assert days is not None
            for pos, i in enumerate(order):
                if days[pos] is None:
                    del kept[group[i][0]]
        return kept

    @property
    def n_cols(self) -> int:
        return int(self.pool.size + self.n_jobs + self.layout.n_cols)

    @property
    def n_constraints(self) -> int:
        return int(self.n_rows + (self.most_unassigned is not None))
