"""Batch optimizer: a whole backlog of orders assigned to slot chains at once, with a proof.

Each order may take one of its candidate slot chains or stay unassigned. The
candidates are *every* chain the offer planner (``offers.py``) may offer: every
start day from the first possible one to ``OfferPlanner.horizon_days`` (180) later,
inside the capacity calendar, at every site that takes the order's material, has
lines, an approval in force on the start day and (fresh material) a lane inside
the stability window, with a free slot open to the order's party (quotas),
apheresis capacity at the center on a day that meets the slot, and QC capacity on
the release day.

The objective is lexicographic by default: first as many patients assigned as
capacity allows, then the least Σ weight × time to treatment + cost_weight × lane
cost (``docs/reference/backlog.md``). ``optimal`` is printed only with a proof over
all those chains (``search.py``); otherwise the status is ``feasible``, with a
proven bound on each level.

Modules, one concept each: ``result`` (plans, statuses, objective levels),
``chains`` (the candidate search), ``apheresis`` (collection days),
``formulation`` (the model's rows and columns), ``search`` (column generation,
branch and bound, the proof), ``explain`` (from solution to plan, reasons),
``planning`` (``optimize`` and ``greedy``).
"""

from cartnet.schedule.optimizer.explain import scratch_copy
from cartnet.schedule.optimizer.planning import greedy, optimize
from cartnet.schedule.optimizer.result import (
    GREEDY,
    LEXICOGRAPHIC,
    MIP,
    NOTHING,
    PENALTY,
    TRANSPORTATION_LP,
    Assignment,
    BacklogPlan,
    PlanStatus,
    Unassigned,
    Why,
    plan_objective,
)

__all__ = [
    "GREEDY",
    "LEXICOGRAPHIC",
    "MIP",
    "NOTHING",
    "PENALTY",
    "TRANSPORTATION_LP",
    "Assignment",
    "BacklogPlan",
    "PlanStatus",
    "Unassigned",
    "Why",
    "greedy",
    "optimize",
    "plan_objective",
    "scratch_copy",
]
