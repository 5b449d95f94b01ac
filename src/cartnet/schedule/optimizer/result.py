"""What a backlog plan says: a chain per order or why it has none, its status and its proof.

The objective has two levels by default (lexicographic): first the number of
patients assigned (maximised), then Σ weight × time to treatment + cost_weight ×
lane cost over the assigned orders (minimised among the plans that assign that
many). With an ``unassigned_penalty`` it is one level instead: the second sum plus
weight × penalty for each order left out. ``docs/reference/backlog.md`` documents
both, with their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import numpy as np

from cartnet.schedule.backlog import Backlog
from cartnet.schedule.offers import Exclusion, dated_fields

TRANSPORTATION_LP = "transportation-lp"
MIP = "mip"
GREEDY = "greedy"
NOTHING = "none"
"""``method`` of a plan with nothing to solve (empty backlog, or no order has a candidate)."""

LEXICOGRAPHIC = "lexicographic"
PENALTY = "penalty"


class PlanStatus(StrEnum):
    OPTIMAL = "optimal"
    """Proven optimal over every slot chain of the problem (every start day the offer
    planner may offer, at every eligible site): level 1 exactly, level 2 within ``mip_gap``."""
    FEASIBLE = "feasible"
    """A plan that fits, not proven optimal (time limit, or the greedy heuristic); ``bound``
    and ``assigned_bound`` say how far from optimal it can be."""


class Why(StrEnum):
    """Why an order is left unassigned."""

    NO_CANDIDATE = "no-candidate"
    OUTSIDE_CALENDAR = "outside-calendar"
    CAPACITY = "capacity-taken"
    PENALTY = "penalty-cheaper"
    NOT_SOLVED = "not-solved"


@dataclass(frozen=True)
class Assignment:
    """One order's slot chain in a plan."""

    order: str
    site: str
    site_name: str
    apheresis: date
    start: date
    release: date
    delivery: date
    infusion: date
    time_to_treatment_days: int
    lane_cost: float
    weight: float

    def as_dict(self) -> dict[str, object]:
        return dated_fields(self)


@dataclass(frozen=True)
class Unassigned:
    """An order the plan leaves without a chain, and why."""

    order: str
    reason: Why
    message: str
    excluded: tuple[Exclusion, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "order": self.order,
            "reason": self.reason.value,
            "message": self.message,
            "excluded": [e.as_dict() for e in self.excluded],
        }


@dataclass
class BacklogPlan:
    """The outcome of ``optimize`` or ``greedy``: a chain per order, or why it has none.

    ``objective_kind`` is ``lexicographic`` (default) or ``penalty``. Level 1 is
    ``len(assignments)``, patients assigned; ``assigned_bound`` is a proven upper
    bound on what any plan assigns (lexicographic only). ``objective`` is level 2:
    Σ weight × time to treatment (days) + cost_weight × lane cost over the assigned
    orders, plus Σ weight × unassigned_penalty over the others in penalty mode.
    ``bound`` is a proven lower bound on ``objective`` over every plan that assigns
    as many patients (penalty mode: over every plan), and ``gap`` = (objective −
    bound) / objective.
    """

    status: PlanStatus
    method: str
    objective: float | None
    bound: float | None
    gap: float | None
    assignments: list[Assignment]
    unassigned: list[Unassigned]
    objective_kind: str = LEXICOGRAPHIC
    assigned_bound: int | None = None
    solve_seconds: float = 0.0
    build_seconds: float = 0.0
    variables: int = 0
    constraints: int = 0
    candidates: int = 0
    message: str = ""
    bookings: list[int] = field(default_factory=list)
    """Ids of the calendar bookings made when the plan was applied (``apply=True``)."""

    @property
    def assigned(self) -> int:
        return len(self.assignments)

    @property
    def time_to_treatment(self) -> np.ndarray:
        return np.array([a.time_to_treatment_days for a in self.assignments], dtype=float)

    @property
    def mean_time_to_treatment(self) -> float | None:
        t = self.time_to_treatment
        return float(t.mean()) if t.size else None

    @property
    def p90_time_to_treatment(self) -> float | None:
        t = self.time_to_treatment
        return float(np.percentile(t, 90)) if t.size else None

    def assignment(self, order: str) -> Assignment | None:
        return next((a for a in self.assignments if a.order == order), None)

    def levels(self) -> list[dict[str, object]]:
        """The objective's levels, in order, each with its value and proven bound."""
        second: dict[str, object] = {
            "name": "weighted time to treatment"
            + (" + penalty" if self.objective_kind == PENALTY else ""),
            "sense": "minimize",
            "value": self.objective,
            "bound": self.bound,
            "gap": self.gap,
        }
        if self.objective_kind == PENALTY:
            return [second]
        first: dict[str, object] = {
            "name": "patients assigned",
            "sense": "maximize",
            "value": self.assigned,
            "bound": self.assigned_bound,
        }
        return [first, second]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "method": self.method,
            "objective_kind": self.objective_kind,
            "levels": self.levels(),
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "assigned": self.assigned,
            "assigned_bound": self.assigned_bound,
            "solve_seconds": round(self.solve_seconds, 4),
            "build_seconds": round(self.build_seconds, 4),
            "variables": self.variables,
            "constraints": self.constraints,
            "candidates": self.candidates,
            "message": self.message,
            "mean_time_to_treatment_days": self.mean_time_to_treatment,
            "p90_time_to_treatment_days": self.p90_time_to_treatment,
            "assignments": [a.as_dict() for a in self.assignments],
            "unassigned": [u.as_dict() for u in self.unassigned],
        }


def gap(objective: float, bound: float) -> float:
    """Relative gap of a minimisation: (objective − bound) / |objective|, at least 0."""
    return max(0.0, (objective - bound) / max(abs(objective), 1e-9))


def objective_of(
    backlog: Backlog,
    assignments: list[Assignment],
    unassigned: list[Unassigned],
    cost_weight: float,
    penalty: float | None,
) -> float:
    """Level 2 of a plan: weighted days and lane cost of its chains (+ penalties)."""
    weight = {o.id: o.weight for o in backlog.orders}
    total = sum(
        a.weight * a.time_to_treatment_days + cost_weight * a.lane_cost for a in assignments
    )
    return float(total + sum(weight[u.order] * (penalty or 0.0) for u in unassigned))


def plan_objective(
    backlog: Backlog,
    plan: BacklogPlan,
    cost_weight: float = 0.0001,
    unassigned_penalty: float | None = None,
) -> float:
    """The objective (level 2) of ``plan`` recomputed from its assignments."""
    return objective_of(backlog, plan.assignments, plan.unassigned, cost_weight, unassigned_penalty)
