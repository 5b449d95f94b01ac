"""Backlog files: the orders waiting for a slot chain on a given day.

A backlog is a JSON document, ``{"as_of": "2020-09-01", "orders": [...]}``; each
order names its treatment center, product, scope (and trial, for clinical
patients), the earliest day its patient can undergo apheresis, and optionally the
day of enrolment (time to treatment counts from it), an urgency ``weight`` and a
starting material that overrides the product's. The shape is checked by pydantic
(unknown keys are errors); ``load_backlog`` then checks every order against the
network (centers, products, trials, dates, duplicate ids) and reports every
problem at once, each with its file and field path::

    backlog.json: orders[3].center: unknown treatment center 'x'

The format is documented in ``docs/reference/backlog.md``; an example is
``docs/examples/backlog.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cartnet.fielderrors import field_message, field_path
from cartnet.network.entities import Scope, StartingMaterial
from cartnet.network.model import Network
from cartnet.schedule.offers import OfferRequest

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
"""Order ids are the coordinator's reference (no patient data); no leading or trailing blanks."""


class Order(BaseModel):
    """One patient's order waiting for a slot chain (no patient identity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: OrderId
    center: str
    product: str
    scope: Scope = Scope.COMMERCIAL
    trial: str | None = None
    earliest_apheresis: date
    enrolled: date | None = None
    """Day of enrolment; time to treatment counts from it. Default: ``earliest_apheresis``."""
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    """Urgency: a day of this patient's time to treatment counts ``weight`` days."""
    material: StartingMaterial | None = None
    """Overrides the product's starting material."""

    @property
    def enrolled_on(self) -> date:
        return self.enrolled or self.earliest_apheresis

    def request(self) -> OfferRequest:
        """The order as the offer planner asks for it."""
        return OfferRequest(
            center=self.center,
            product=self.product,
            earliest_apheresis=self.earliest_apheresis,
            scope=self.scope,
            trial=self.trial,
            enrolled=self.enrolled_on,
            material=self.material,
        )


class Backlog(BaseModel):
    """The orders waiting on ``as_of``; an empty list is a valid (empty) backlog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: date
    orders: list[Order] = []

    def problems(self, network: Network) -> list[tuple[str, str]]:
        """Every (field path, message) that makes this backlog unusable on ``network``."""
        return list(_reference_problems(self, network))


@dataclass(frozen=True)
class BacklogProblem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.path}: {self.message}"
            if self.path
            else f"{self.file}: {self.message}"
        )


class BacklogError(ValueError):
    """A backlog that cannot be planned, with every problem found in it."""

    def __init__(self, problems: list[BacklogProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_backlog(path: str | Path, network: Network) -> Backlog:
    """Read a backlog file and check it against ``network``; raise ``BacklogError`` if bad."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BacklogError([BacklogProblem(name, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BacklogError([BacklogProblem(name, "", f"cannot read: {e}")]) from None
    return parse_backlog(text, network, name)


def parse_backlog(text: str, network: Network, name: str = "<backlog>") -> Backlog:
    """Parse backlog JSON text; ``name`` is the file name used in messages."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise BacklogError(
            [
                BacklogProblem(
                    name, "", f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
                )
            ]
        ) from None
    except _DuplicateKeyError as e:
        raise BacklogError([BacklogProblem(name, "", str(e))]) from None
    return backlog_from_data(data, network, name)


def backlog_from_data(data: Any, network: Network, name: str = "<backlog>") -> Backlog:
    """Validate already-parsed JSON data (a dict) as a backlog of ``network``."""
    if not isinstance(data, dict):
        raise BacklogError(
            [BacklogProblem(name, "", 'a backlog is a JSON object {"as_of": ..., "orders": [...]}')]
        )
    try:
        backlog = Backlog.model_validate(data)
    except ValidationError as e:
        raise BacklogError([_from_pydantic(name, err) for err in e.errors()]) from None
    problems = backlog.problems(network)
    if problems:
        raise BacklogError([BacklogProblem(name, p, m) for p, m in problems])
    return backlog


def check_backlog(backlog: Backlog, network: Network, name: str = "<backlog>") -> None:
    """Raise ``BacklogError`` if a backlog built in code does not fit ``network``."""
    problems = backlog.problems(network)
    if problems:
        raise BacklogError([BacklogProblem(name, p, m) for p, m in problems])


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _from_pydantic(name: str, err: Any) -> BacklogProblem:
    return BacklogProblem(name, field_path(err["loc"]), field_message(err))


def _reference_problems(backlog: Backlog, network: Network) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    centers = {c.id: c for c in network.treatment_centers}
    products = {p.id: p for p in network.products}
    counts = Counter(o.id for o in backlog.orders)
    first_seen: dict[str, int] = {}
    for i, o in enumerate(backlog.orders):
        at = f"orders[{i}]"
        if counts[o.id] > 1:
            if o.id in first_seen:
                found.append(
                    (f"{at}.id", f"duplicate order id {o.id!r} (also orders[{first_seen[o.id]}])")
                )
            else:
                first_seen[o.id] = i
        center = centers.get(o.center)
        product = products.get(o.product)
        if center is None:
            found.append((f"{at}.center", f"unknown treatment center {o.center!r}"))
        if product is None:
            found.append((f"{at}.product", f"unknown product {o.product!r}"))
        if center is not None and product is not None and o.product not in center.products:
            found.append(
                (
                    f"{at}.product",
                    f"treatment center {o.center!r} is not qualified for {o.product!r}",
                )
            )
        if o.scope is Scope.CLINICAL and not o.trial:
            found.append((f"{at}.trial", "a clinical order needs the id of its trial"))
        if o.scope is Scope.COMMERCIAL and o.trial:
            found.append((f"{at}.trial", "a commercial order has no trial; use scope: clinical"))
        if o.earliest_apheresis < backlog.as_of:
            found.append(
                (
                    f"{at}.earliest_apheresis",
                    f"date in the past: {o.earliest_apheresis} is before as_of {backlog.as_of}",
                )
            )
        if o.enrolled is not None:
            if o.enrolled > backlog.as_of:
                found.append(
                    (f"{at}.enrolled", f"enrolled {o.enrolled} is after as_of {backlog.as_of}")
                )
            if o.enrolled > o.earliest_apheresis:
                found.append(
                    (
                        f"{at}.enrolled",
                        f"enrolled {o.enrolled} is after earliest_apheresis {o.earliest_apheresis}",
                    )
                )
        material = o.material or (product.starting_material if product is not None else None)
        if (
            product is not None
            and material is StartingMaterial.FRESH
            and product.stability_hours is None
        ):
            found.append(
                (
                    f"{at}.material",
                    f"fresh material needs a stability window, and product {o.product!r} has none",
                )
            )
    return found


def sample_backlog(
    network: Network,
    orders: int,
    as_of: date,
    *,
    seed: int = 0,
    window_days: int = 60,
    prefix: str = "o",
    urgent_share: float = 0.25,
) -> Backlog:
    """A backlog drawn from the network's demand: who is waiting, as a planner would see it.

    Centers, products and scopes in proportion to their patients a year; earliest
    apheresis uniform over the next ``window_days``; enrolled up to two weeks ago;
    ``urgent_share`` of the orders weigh 2 (urgent), the rest 1.
    """
    rng = np.random.default_rng(seed)
    lines = [(c, d) for c in network.treatment_centers for d in c.demand if d.patients_per_year > 0]
    if not lines:
        return Backlog(as_of=as_of, orders=[])
    rate = np.array([d.patients_per_year for _, d in lines])
    picks = rng.choice(len(lines), size=orders, p=rate / rate.sum())
    sampled = []
    for k, pick in enumerate(picks.tolist()):
        center, demand = lines[pick]
        sampled.append(
            Order(
                id=f"{prefix}{k:05d}",
                center=center.id,
                product=demand.product,
                scope=demand.scope,
                trial=demand.trial,
                earliest_apheresis=as_of + timedelta(days=int(rng.integers(1, window_days + 1))),
                enrolled=as_of - timedelta(days=int(rng.integers(0, 14))),
                weight=2.0 if rng.random() < urgent_share else 1.0,
            )
        )
    return Backlog(as_of=as_of, orders=sampled)
