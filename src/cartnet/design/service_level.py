"""Service levels as design constraints, met by simulation-optimization.

The design model fills a site's rolling window up to its lines and sees no
variability, so its optimum can queue patients for weeks in the twin. A target
such as ``p90_ttt<=30`` (90th percentile of time to treatment at most 30 days) is
met by a loop: solve the design, run the twin on common random numbers (the same
seed, so the same patients, every iteration), and where the twin misses the
target lower the utilization cap of the sites serving the markets that miss it
(``Candidate.utilization_cap``: the share of lines the plan may fill) and give
the congested ones their next larger size at least (safety lines: the twin's
booking policy, not the model's allocation, decides where patients go), then
re-solve. It stops when the upper end of the twin's 95 % interval meets every
target, or when the iteration or time budget ends: then the result says plainly
that the target is not met.

The first caps come from queueing theory (Allen-Cunneen's G/G/c approximation of
Erlang C, Allen 1990 / Cunneen & Whitt): each site of the unconstrained design is
a c-line queue with Poisson arrivals and one batch per line for the site's cycle
days; its cap is the largest load at which the approximate wait still fits the
days the target leaves after the site's fastest route.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cartnet.design.model import DesignInput
from cartnet.design.solve import DesignResult, routes, solve_design
from cartnet.design.twin_check import TwinCheck, twin_check
from cartnet.twin.settings import TwinSettings

FIGURES = {
    "p90_ttt": ("all.ttt.p90", "time to treatment, p90 (d)"),
    "mean_ttt": ("all.ttt.mean", "time to treatment, mean (d)"),
    "p90_v2v": ("all.v2v.p90", "vein-to-vein, p90 (d)"),
    "mean_v2v": ("all.v2v.mean", "vein-to-vein, mean (d)"),
    "mean_slot_wait": ("all.slot_wait.mean", "waiting for a slot, mean (d)"),
    "p90_slot_wait": ("all.slot_wait.p90", "waiting for a slot, p90 (d)"),
    "lost_share": ("all.lost_share", "share lost while waiting"),
    "lost_per_year": ("all.lost_per_year", "lost while waiting per year"),
}
"""Target names and the twin figure each bounds (all: lower is better)."""

_TARGET = re.compile(r"^\s*([a-z0-9_]+)\s*<=\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")

MIN_CAP = 0.3
"""Lowest utilization cap the loop sets: below it the target is called not met."""

STEP = 0.9
"""Factor a missing site's cap is multiplied by per iteration."""

STALL = 3
"""Iterations without progress after which the loop gives up."""


@dataclass(frozen=True)
class Target:
    """One service level: the twin figure ``key`` at most ``limit``."""

    name: str
    key: str
    limit: float
    text: str

    def met(self, estimate: dict[str, Any] | None) -> bool:
        """Met when the upper end of the 95 % interval is at or below the limit."""
        if not estimate or estimate.get("mean") is None:
            return False
        high = estimate.get("ci_high")
        return bool((estimate["mean"] if high is None else high) <= self.limit + 1e-9)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.text, "key": self.key, "limit": self.limit}


def parse_targets(text: str) -> list[Target]:
    """Targets from ``"p90_ttt<=30, lost_share<=5%"``; ``ValueError`` names the bad part."""
    found: list[Target] = []
    parts = text.split(",")
    if not text.strip():
        raise ValueError("--service-level: empty; give e.g. p90_ttt<=30")
    for part in parts:
        hit = _TARGET.match(part)
        if hit is None:
            raise ValueError(
                f"--service-level: {part.strip()!r} is not FIGURE<=NUMBER (e.g. p90_ttt<=30; "
                f"figures: {', '.join(FIGURES)})"
            )
        name, number, percent = hit.groups()
        if name not in FIGURES:
            raise ValueError(
                f"--service-level: unknown figure {name!r} in {part.strip()!r} "
                f"(figures: {', '.join(FIGURES)})"
            )
        limit = float(number)
        if percent:
            if name != "lost_share":
                raise ValueError(f"--service-level: {name} takes no % (only lost_share does)")
            limit /= 100
        if name == "lost_share" and limit > 1:
            raise ValueError(f"--service-level: lost_share {limit:g} is above 1 (write 5% or 0.05)")
        if any(t.name == name for t in found):
            raise ValueError(f"--service-level: {name} is given twice")
        found.append(Target(name, FIGURES[name][0], limit, part.strip()))
    return found


# -- queueing seed ---------------------------------------------------------------------


def erlang_c(lines: int, load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``load`` (Erlangs).

    >>> round(erlang_c(1, 0.5), 6)  # M/M/1: the utilization
    0.5
    """
    if load >= lines:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, lines):
        term *= load / k
        total += term
    last = term * load / lines * lines / (lines - load)
    return last / (total + last)


def wait_quantile(lines: int, rho: float, service_days: float, q: float, cs2: float) -> float:
    """Allen-Cunneen ``q``-quantile (or mean, q=None-like 0) of the wait, in days.

    With Poisson arrivals (ca² = 1) and service variability ``cs2``, the wait of
    Erlang C scaled by (1 + cs²)/2: P(W > t) ≈ C·exp(−(c·μ − λ)·t / k). ``q`` = 0
    gives the mean wait k·C / (c·μ − λ).
    """
    if rho >= 1:
        return math.inf
    mu = 1.0 / service_days
    lam = rho * lines * mu
    c_prob = erlang_c(lines, lam / mu)
    k = (1.0 + cs2) / 2.0
    rate = (lines * mu - lam) / k
    if q <= 0:
        return c_prob / rate
    tail = 1.0 - q
    return 0.0 if c_prob <= tail else math.log(c_prob / tail) / rate


def seed_caps(
    design: DesignInput, result: DesignResult, targets: list[Target], infusion_days: float
) -> dict[str, float]:
    """Per candidate, the highest load whose approximate wait fits the targets' days.

    A chosen site is taken with its chosen lines, another with its smallest size,
    so a site the model turns to next has headroom too.
    """
    rs, _ = routes(design)
    fastest: dict[str, int] = {}
    for r in rs:
        sid = design.candidates[r.site].id
        fastest[sid] = min(fastest.get(sid, 1 << 30), r.v2v_days)
    caps: dict[str, float] = {}
    chosen = {s.site: s.lines for s in result.sites}
    for cand in design.candidates:
        lines = chosen.get(cand.id, min(z.lines for z in cand.sizes))
        cap = 1.0
        for t in targets:
            if t.name in ("p90_ttt", "mean_ttt", "p90_slot_wait", "mean_slot_wait"):
                if cand.id not in fastest:
                    continue
                path = 0.0 if "slot_wait" in t.name else fastest[cand.id] + infusion_days
                budget = t.limit - path
                q = 0.9 if t.name.startswith("p90") else 0.0
            else:
                continue
            cap = min(cap, _largest_load(lines, design.cycle_days(cand), q, budget))
        if cap < 1.0:
            caps[cand.id] = round(max(MIN_CAP, cap), 3)
    return caps


def _largest_load(lines: int, service_days: float, q: float, budget: float) -> float:
    """Largest ρ in steps of 0.01 whose wait quantile is within ``budget`` days."""
    if budget <= 0:
        return MIN_CAP
    best = MIN_CAP
    for i in range(int(MIN_CAP * 100), 100):
        rho = i / 100
        if wait_quantile(lines, rho, service_days, q, 0.0) <= budget:
            best = rho
    return best


# -- the loop ----------------------------------------------------------------------------


@dataclass
class Iteration:
    number: int
    caps: dict[str, float]
    safety_lines: dict[str, int]
    """Fewest lines a site may get (its smaller sizes are ruled out)."""
    lines: dict[str, int]
    status: str
    cost_per_therapy: float | None
    figures: dict[str, dict[str, Any]]
    met: bool
    seconds: float
    tightened: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def caps_text(self) -> str:
        """``leipzig 76% ≥12``: each site's cap and safety lines, or ``none``."""
        parts = []
        for k in sorted(set(self.caps) | set(self.safety_lines)):
            cap = f" {100 * self.caps[k]:.0f}%" if k in self.caps else ""
            floor = f" ≥{self.safety_lines[k]}" if k in self.safety_lines else ""
            parts.append(f"{k}{cap}{floor}")
        return ", ".join(parts) or "none"


@dataclass
class ServiceLevelResult:
    targets: list[Target]
    iterations: list[Iteration]
    met: bool
    reason: str
    design: DesignInput
    result: DesignResult
    check: TwinCheck | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "targets": [t.as_dict() for t in self.targets],
            "met": self.met,
            "reason": self.reason,
            "chosen_iteration": self.chosen,
            "iterations": [i.as_dict() for i in self.iterations],
        }

    @property
    def chosen(self) -> int | None:
        """The iteration whose design is returned."""
        return self.iterations[-1].number if self.iterations else None


def with_caps(
    design: DesignInput, caps: dict[str, float], safety: dict[str, int] | None = None
) -> DesignInput:
    """The design with these utilization caps and safety lines (others unchanged)."""
    safety = safety or {}
    cands = []
    for c in design.candidates:
        update: dict[str, Any] = {}
        if c.id in caps:
            update["utilization_cap"] = caps[c.id]
        if c.id in safety:
            keep = [z for z in c.sizes if z.lines >= safety[c.id]]
            update["sizes"] = keep or [max(c.sizes, key=lambda z: z.lines)]
        cands.append(c.model_copy(update=update) if update else c)
    return design.model_copy(update={"candidates": cands})


def meet_service_level(
    design: DesignInput,
    targets: list[Target],
    *,
    replications: int = 10,
    seed: int = 2020,
    settings: TwinSettings | None = None,
    max_iterations: int = 8,
    seconds: float | None = None,
    time_limit: float = 60.0,
    objective: str | None = None,
    progress: Callable[[Iteration], None] | None = None,
) -> ServiceLevelResult:
    """Solve, check in the twin, tighten where it misses, until the targets hold.

    Iteration 0 is the design without caps; iteration 1 has the queueing seed; later
    ones tighten the congested sites of the markets that miss (``_tighten``).
    """
    if replications < 2:
        raise ValueError(
            f"a service level needs at least 2 replications for its interval (got {replications})"
        )
    clock = time.perf_counter()
    caps: dict[str, float] = {}
    safety: dict[str, int] = {}
    frozen: set[str] = set()
    iterations: list[Iteration] = []
    last: tuple[DesignInput, DesignResult, TwinCheck] | None = None
    reason = ""
    for number in range(max_iterations):
        started = time.perf_counter()
        current = with_caps(design, caps, safety)
        result = solve_design(current, objective=objective, time_limit=time_limit)
        if not result.solved:
            # the last tightening asked for more than the sizes offer: undo it, keep the
            # sites already at their largest size where they were (all the tightened
            # ones if none is), and tighten the others
            if not iterations or last is None:
                reason = f"the model has no design ({result.status})"
                break
            tried = iterations[-1].tightened
            full = [sid for sid in tried if _at_largest(last[0], last[1], sid)]
            frozen |= set(full or tried)
            note = f"tightening {', '.join(tried)} left no design ({result.status})"
            iterations[-1].notes.append(note)
            caps, safety = dict(iterations[-1].caps), dict(iterations[-1].safety_lines)
            retry_caps, retry_lines = _tighten(last[0], last[1], last[2], targets, caps, frozen)
            if not retry_caps or (seconds is not None and time.perf_counter() - clock > seconds):
                reason = f"not met: {note}, and no other site can be tightened"
                break
            iterations[-1].tightened = sorted(retry_caps)
            caps, safety = {**caps, **retry_caps}, {**safety, **retry_lines}
            continue
        check = twin_check(
            current, result, replications=replications, seed=seed, settings=settings,
            baseline=False,
        )  # fmt: skip
        kpis = check.document["variants"][-1]["kpis"]
        figures = {t.text: kpis.get(t.key) or {} for t in targets}
        met = all(t.met(kpis.get(t.key)) for t in targets)
        it = Iteration(
            number,
            dict(caps),
            dict(safety),
            {s.site: s.lines for s in result.sites},
            result.status,
            result.cost_per_therapy.get("total"),
            figures,
            met,
            round(time.perf_counter() - started, 2),
        )
        iterations.append(it)
        last = (current, result, check)
        if met:
            reason = f"met at iteration {number}: the twin's 95 % interval is within every target"
            if progress:
                progress(it)
            break
        if _stalled(iterations, targets):
            reason = (
                f"not met: no progress over the last {STALL} iterations (the targets' means "
                "moved less than their 95 % half-widths): tightening the congested sites no "
                "longer helps"
            )
            if progress:
                progress(it)
            break
        more_lines: dict[str, int] = {}
        if number == 0:
            more_caps = seed_caps(current, result, targets, check_infusion(check))
        else:
            more_caps, more_lines = _tighten(current, result, check, targets, caps, frozen)
        it.tightened = sorted(
            {k for k, v in more_caps.items() if v < caps.get(k, 1.0) - 1e-9}
            | {k for k, v in more_lines.items() if v > safety.get(k, 0)}
        )
        if progress:
            progress(it)
        if not it.tightened:
            reason = (
                f"not met: no site serving a missing market can be tightened further "
                f"after iteration {number}"
            )
            break
        caps, safety = {**caps, **more_caps}, {**safety, **more_lines}
        if seconds is not None and time.perf_counter() - clock > seconds:
            reason = f"not met: the time budget of {seconds:g} s ended after iteration {number}"
            break
    else:
        reason = f"not met: the budget of {max_iterations} iterations ended"
    if last is None:
        raise ValueError(reason or "no design to check")
    met = bool(iterations) and iterations[-1].met
    return ServiceLevelResult(targets, iterations, met, reason, last[0], last[1], last[2])


def _stalled(iterations: list[Iteration], targets: list[Target]) -> bool:
    """Whether the last ``STALL`` iterations moved no target by more than its half-width."""
    if len(iterations) < STALL:
        return False
    for t in targets:
        runs = [it.figures.get(t.text) or {} for it in iterations[-STALL:]]
        if any(e.get("mean") is None for e in runs):
            return False
        means = [float(e["mean"]) for e in runs]
        halves = [float(e.get("ci_high") or e["mean"]) - float(e["mean"]) for e in runs]
        if max(means) - min(means) > max(halves):
            return False
    return True


def _at_largest(design: DesignInput, result: DesignResult, site: str) -> bool:
    """Whether ``site`` already has its largest size: a lower cap cannot be met by lines."""
    chosen = {s.site: s.lines for s in result.sites}
    cand = next(c for c in design.candidates if c.id == site)
    return chosen.get(site, 0) >= max(z.lines for z in cand.sizes)


def check_infusion(check: TwinCheck) -> float:
    return float(check.document["settings"].get("infusion_days", 2.0))


def _tighten(
    design: DesignInput,
    result: DesignResult,
    check: TwinCheck,
    targets: list[Target],
    caps: dict[str, float],
    frozen: set[str],
) -> tuple[dict[str, float], dict[str, int]]:
    """New caps and safety lines for the congested sites of the markets missing a target.

    A market misses when its own figure is above the limit less the amount by which
    the network's interval misses it (for ``lost_per_year``, when its lost share is
    above the network's); the worst market misses at least.
    Of the sites approved for such a market, those the twin fills to within 10
    points of their cap are congested (at least the busiest): the cap is multiplied
    by ``STEP`` and, below the largest size, the next larger size becomes the least
    (safety lines), since the twin's booking policy, not the model's allocation,
    decides where patients go. A site in ``frozen`` (its tightening left no design)
    or at ``MIN_CAP`` and its largest size stays.
    """
    kpis = check.document["variants"][-1]["kpis"]
    markets = check.document["markets"]
    missing: set[str] = set()
    for t in targets:
        if t.met(kpis.get(t.key)):
            continue
        key = t.key.split(".", 1)[1]
        overall = kpis.get(t.key) or {}
        # a market misses when it is within the aggregate's miss of the limit: a p90
        # over all markets can miss while each market is just below the limit
        high = overall.get("ci_high") if overall.get("ci_high") is not None else overall.get("mean")
        limit = t.limit - max(0.0, float(high) - t.limit) if high is not None else t.limit
        if t.name == "lost_per_year":
            key = "lost_share"
            limit = (kpis.get("all.lost_share") or {}).get("mean") or 0.0
        values: dict[str, float] = {}
        for m in markets:
            v = (kpis.get(f"{m}.{key}") or {}).get("mean")
            if v is not None:
                values[m] = float(v)
        over = {m for m, v in values.items() if v > limit}
        if not over and values:
            over = {max(values, key=lambda m: values[m])}
        missing |= over
    eligible = {
        c.id for c in design.candidates if c.markets is None or any(m in missing for m in c.markets)
    }
    load = {u["site"]: u["twin"] for u in check.utilization if u["twin"] is not None}
    busy = [sid for sid in eligible if sid in load and sid not in frozen]
    # congested in the twin: filled to within 10 points of the cap the plan allowed
    sites = {sid for sid in busy if load[sid] >= caps.get(sid, 1.0) - 0.1}
    if not sites and busy:
        sites = {max(busy, key=lambda sid: load[sid])}
    chosen = {s.site: s.lines for s in result.sites}
    new_caps: dict[str, float] = {}
    new_lines: dict[str, int] = {}
    for sid in sites:
        new_caps[sid] = round(max(MIN_CAP, caps.get(sid, 1.0) * STEP), 3)
        cand = next(c for c in design.candidates if c.id == sid)
        larger = sorted(z.lines for z in cand.sizes if z.lines > chosen.get(sid, 0))
        if larger:
            new_lines[sid] = larger[0]
    return new_caps, new_lines
