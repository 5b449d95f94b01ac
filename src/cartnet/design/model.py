"""The input of a network design: candidate sites, centers with demand, lanes, limits.

A design file is YAML read with a safe loader (duplicate keys refused) and
validated by ``DesignInput``; every problem is reported with the file, the line
and the field path (``candidates[2].sizes[0].lines``), in the wording of
``cartnet.fielderrors``. Cross references (a lane naming an unknown center, two
candidates with one id) are checked after the schema, by ``design_problems``,
with paths too. The format is documented in ``docs/reference/design-file.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cartnet.fielderrors import field_message, field_path
from cartnet.network.entities import Identifier, Latitude, Longitude
from cartnet.yamlfile import (
    FileProblem,
    InputFileError,
    line_of,
    load_mapping,
    node_tree,
    read_text,
)

NonNegative = Annotated[float, Field(ge=0)]
Days = Annotated[int, Field(ge=0, le=365)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Noted(_Strict):
    source: str | None = None
    assumption: str | None = None


class Size(_Noted):
    """One way to build or run a site: its lines and what they cost."""

    lines: Annotated[int, Field(ge=1)]
    fixed_cost_per_year: NonNegative | None = None
    fixed_cost_per_day: NonNegative | None = None
    variable_cost_per_therapy: NonNegative = 0.0
    label: str | None = None

    @model_validator(mode="after")
    def _one_fixed_cost(self) -> Size:
        if self.fixed_cost_per_year is not None and self.fixed_cost_per_day is not None:
            raise ValueError("give fixed_cost_per_year or fixed_cost_per_day, not both")
        return self

    def fixed_cost(self, days: float) -> float:
        """Fixed cost over ``days`` days (a year is 365 days)."""
        if self.fixed_cost_per_day is not None:
            return self.fixed_cost_per_day * days
        return (self.fixed_cost_per_year or 0.0) * days / 365.0


class Candidate(_Noted):
    """A site that may be opened (or, with ``must_open``, an existing one that stays)."""

    id: Identifier
    name: str = ""
    city: str = ""
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    lat: Latitude
    lon: Longitude
    sizes: Annotated[list[Size], Field(min_length=1)]
    must_open: bool = False
    markets: list[Identifier] | None = None
    """Markets the site is (or will be) approved for; None: every market."""
    approved_from: dict[Identifier, Annotated[int, Field(ge=0)]] = {}
    """Day of the horizon from which the site may serve a market (absent: from day 0).

    A patient of that market arriving earlier cannot be routed to the site, as the
    twin refuses a site whose approval is not yet in force."""
    utilization_cap: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Share of the site's lines the plan may fill in any window: headroom for the
    variability the deterministic model does not see (set by ``--service-level``)."""
    manufacturing_days: Annotated[int, Field(ge=1)] | None = None
    qc_days: Days | None = None
    network_site: Identifier | None = None
    """The site of the twin's base network this candidate is (for expansions)."""


class Center(_Noted):
    """A collection and treatment center: where apheresis is taken and the product returns."""

    id: Identifier
    name: str = ""
    city: str = ""
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    lat: Latitude
    lon: Longitude
    market: Identifier = "default"
    patients_per_year: NonNegative | None = None
    patients_per_day: NonNegative | None = None
    arrivals: list[NonNegative] | None = None
    """Patients arriving on each day of the horizon (day 0 first)."""
    arrival_window: tuple[Days, Days] | None = None
    """First and last day (inclusive) of arrivals; default: the whole horizon."""

    @model_validator(mode="after")
    def _one_demand(self) -> Center:
        given_any = [
            k
            for k in ("patients_per_year", "patients_per_day", "arrivals")
            if getattr(self, k) is not None
        ]
        if len(given_any) > 1:
            raise ValueError(
                "give one of patients_per_year, patients_per_day, arrivals "
                f"(got {', '.join(given_any)})"
            )
        if not given_any:
            raise ValueError("give the demand: patients_per_year, patients_per_day or arrivals")
        if self.arrival_window is not None:
            first, last = self.arrival_window
            if last < first:
                raise ValueError(f"arrival_window ends (day {last}) before it starts (day {first})")
            if self.arrivals is not None:
                raise ValueError("arrival_window goes with a rate, not with arrivals")
        return self


class Mode(_Noted):
    """A way to ship material: transit days and cost per shipment (plus per km)."""

    id: Identifier
    transit_days: Days
    cost_per_shipment: NonNegative = 0.0
    cost_per_km: NonNegative = 0.0


class LaneMode(_Noted):
    """A lane's own figures for one mode between a center and a site (both directions)."""

    center: Identifier
    site: Identifier
    mode: Identifier
    transit_days: Days | None = None
    cost_per_shipment: NonNegative | None = None
    available: bool = True


class Durations(_Noted):
    apheresis_days: Days = 1
    manufacturing_days: Annotated[int, Field(ge=1, le=365)] = 7
    qc_days: Days = 7
    cycle_days: Annotated[int, Field(ge=1, le=365)] | None = None
    """Rolling capacity window; default: the site's manufacturing days."""


class Costs(_Noted):
    materials_per_therapy: NonNegative = 0.0
    qc_per_therapy: NonNegative = 0.0


class Limits(_Noted):
    max_sites: Annotated[int, Field(ge=1)] | None = None
    budget_per_therapy: NonNegative | None = None
    """Upper bound on the cost per therapy; required by the ``time`` objective."""


class TwinLink(_Noted):
    """How to check the design in the twin against a packaged or file network."""

    network: str
    demand_scale: Annotated[float, Field(gt=0)] = 1.0


class DesignInput(_Noted):
    """A network design problem, as read from a design file."""

    name: Identifier
    description: str = ""
    currency: str = "USD"
    horizon_days: Annotated[int, Field(ge=1, le=730)] = 90
    v2v_cap_days: Annotated[int, Field(ge=1, le=365)]
    durations: Durations = Durations()
    costs: Costs = Costs()
    modes: Annotated[list[Mode], Field(min_length=1)]
    lanes: list[LaneMode] = []
    candidates: Annotated[list[Candidate], Field(min_length=1)]
    centers: Annotated[list[Center], Field(min_length=1)]
    limits: Limits = Limits()
    objective: Literal["cost", "time"] = "cost"
    integer_flows: bool = True
    """Flows in whole patients (daily arrivals are rounded to whole patients)."""
    batches_per_patient: Annotated[float, Field(ge=1)] = 1.0
    """Line starts a patient needs on average (1 / (1 − failure rate) with re-manufacture)."""
    twin: TwinLink | None = None

    def manufacturing_days(self, c: Candidate) -> int:
        return c.manufacturing_days or self.durations.manufacturing_days

    def qc_days(self, c: Candidate) -> int:
        return self.durations.qc_days if c.qc_days is None else c.qc_days

    def cycle_days(self, c: Candidate) -> int:
        return self.durations.cycle_days or self.manufacturing_days(c)

    def first_day(self, c: Candidate, market: str) -> int:
        """First arrival day a patient of ``market`` may be routed to ``c`` (its approval)."""
        return c.approved_from.get(market, 0)

    def daily_arrivals(self, center: Center) -> np.ndarray:
        """Patients arriving on each day 0..horizon−1.

        A rate is spread evenly over the arrival window; with ``integer_flows`` the
        cumulative count is rounded, so days get whole patients and the total is the
        rate × window length, rounded:

        >>> d = DesignInput.model_validate({"name": "x", "v2v_cap_days": 18,
        ...     "horizon_days": 7, "modes": [{"id": "air", "transit_days": 1}],
        ...     "candidates": [{"id": "s", "lat": 0, "lon": 0, "sizes": [{"lines": 1}]}],
        ...     "centers": [{"id": "c", "lat": 0, "lon": 0, "patients_per_day": 0.5}]})
        >>> d.daily_arrivals(d.centers[0]).tolist()
        [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
        """
        h = self.horizon_days
        out = np.zeros(h)
        if center.arrivals is not None:
            n = min(h, len(center.arrivals))
            out[:n] = center.arrivals[:n]
            return out
        first, last = center.arrival_window or (0, h - 1)
        last = min(last, h - 1)
        if first > last:
            return out
        rate = (
            center.patients_per_day
            if center.patients_per_day is not None
            else (center.patients_per_year or 0.0) / 365.0
        )
        days = last - first + 1
        if self.integer_flows:
            cum = np.floor(rate * np.arange(days + 1) + 0.5 + 1e-9)
            out[first : last + 1] = np.diff(cum)
        else:
            out[first : last + 1] = rate
        return out


# -- cross references ---------------------------------------------------------------


DesignProblem = FileProblem
"""One problem of a design file: file, line, field path and message."""


class DesignFileError(InputFileError, ValueError):
    """A design file or input that cannot be used, with every problem found."""


def design_problems(d: DesignInput) -> list[tuple[str, str]]:
    """(path, message) of every reference that does not resolve, id used twice, bad limit."""
    found: list[tuple[str, str]] = []
    id_lists: dict[str, list[str]] = {
        "candidates": [x.id for x in d.candidates],
        "centers": [x.id for x in d.centers],
        "modes": [x.id for x in d.modes],
    }
    for kind, ids in id_lists.items():
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                found.append((f"{kind}[{i}].id", f"duplicate id {x!r}"))
            seen.add(x)
    sites = {c.id for c in d.candidates}
    centers = {c.id for c in d.centers}
    modes = {m.id for m in d.modes}
    markets = {c.market for c in d.centers}
    pairs: set[tuple[str, str, str]] = set()
    for i, lane in enumerate(d.lanes):
        for attr, known, kind in (
            ("center", centers, "center"),
            ("site", sites, "candidate site"),
            ("mode", modes, "mode"),
        ):
            if getattr(lane, attr) not in known:
                found.append((f"lanes[{i}].{attr}", f"unknown {kind} {getattr(lane, attr)!r}"))
        key = (lane.center, lane.site, lane.mode)
        if key in pairs:
            found.append((f"lanes[{i}]", "duplicate lane (same center, site and mode)"))
        pairs.add(key)
    for i, cand in enumerate(d.candidates):
        for j, m in enumerate(cand.markets or []):
            if m not in markets:
                found.append((f"candidates[{i}].markets[{j}]", f"no center is in market {m!r}"))
        for m in cand.approved_from:
            if m not in markets:
                found.append(
                    (f"candidates[{i}].approved_from.{m}", f"no center is in market {m!r}")
                )
            elif cand.markets is not None and m not in cand.markets:
                found.append(
                    (f"candidates[{i}].approved_from.{m}", f"market {m!r} is not in the markets")
                )
    for i, c in enumerate(d.centers):
        if c.arrivals is not None and len(c.arrivals) > d.horizon_days:
            found.append(
                (
                    f"centers[{i}].arrivals",
                    f"{len(c.arrivals)} days given, the horizon has {d.horizon_days}",
                )
            )
        if c.arrival_window is not None and c.arrival_window[1] >= d.horizon_days:
            found.append(
                (
                    f"centers[{i}].arrival_window",
                    f"ends on day {c.arrival_window[1]}, after the horizon "
                    f"(days 0-{d.horizon_days - 1})",
                )
            )
        if d.integer_flows and c.arrivals is not None:
            for t, a in enumerate(c.arrivals):
                if abs(a - round(a)) > 1e-9:
                    found.append(
                        (
                            f"centers[{i}].arrivals[{t}]",
                            "not a whole number of patients (set integer_flows: false)",
                        )
                    )
                    break
    must = sum(1 for c in d.candidates if c.must_open)
    if d.limits.max_sites is not None and must > d.limits.max_sites:
        found.append(
            (
                "limits.max_sites",
                f"{must} candidates must stay open, more than max_sites {d.limits.max_sites}",
            )
        )
    if d.objective == "time" and d.limits.budget_per_therapy is None:
        found.append(("limits.budget_per_therapy", "the time objective needs a budget per therapy"))
    return found


def check_design(d: DesignInput, name: str = "<design>") -> DesignInput:
    """``d`` itself, or ``DesignFileError`` listing every cross-reference problem."""
    problems = design_problems(d)
    if problems:
        raise DesignFileError([DesignProblem(name, None, p, m) for p, m in problems])
    return d


# -- files ----------------------------------------------------------------------------


def load_design(path: str | Path) -> DesignInput:
    """Read and validate a design file; ``DesignFileError`` names file, line and field."""
    return parse_design(read_text(path, DesignFileError), str(path))


def parse_design(text: str, name: str = "<design>") -> DesignInput:
    data = load_mapping(text, name, "design file (name, candidates, centers, ...)", DesignFileError)
    try:
        design = DesignInput.model_validate(data)
    except ValidationError as e:
        root = node_tree(text)
        problems = []
        for err in e.errors():
            path = field_path(list(err["loc"]))
            problems.append(DesignProblem(name, line_of(root, path), path, field_message(err)))
        raise DesignFileError(problems) from None
    found = design_problems(design)
    if found:
        root = node_tree(text)
        raise DesignFileError([DesignProblem(name, line_of(root, p), p, m) for p, m in found])
    return design


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    from cartnet.network.geo import great_circle_km

    return great_circle_km(lat1, lon1, lat2, lon2)
