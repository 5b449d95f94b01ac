"""Scenarios: named overlays on a base network.

A planner asks "what if": the EMA approves two more sites, a site gets four more
lines, European demand grows 30 % a year. A scenario is a list of changes applied
in order to the base network; the result is a new, fully validated network.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cartnet.network.entities import (
    Approval,
    Identifier,
    Noted,
    Regulator,
    Scope,
    Site,
)


class ScenarioError(ValueError):
    """A change that cannot be applied to the base network; ``path`` locates it in the file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ApprovalMatch(_Change):
    site: Identifier
    product: Identifier
    regulator: Regulator
    scope: Scope
    trial: str | None = None

    def matches(self, approval: dict[str, Any]) -> bool:
        return (
            approval["product"] == self.product
            and approval["regulator"] == self.regulator.value
            and approval["scope"] == self.scope.value
            and approval.get("trial") == self.trial
        )


class AddApproval(_Change):
    op: Literal["add_approval"]
    site: Identifier
    approval: Approval


class RemoveApproval(_ApprovalMatch):
    op: Literal["remove_approval"]


class SetApprovalDates(_ApprovalMatch):
    op: Literal["set_approval_dates"]
    effective: date | None = None
    end: date | None = None


class SetLines(_Change):
    op: Literal["set_lines"]
    site: Identifier
    lines: Annotated[int, Field(ge=0)]


class _DemandFilter(_Change):
    market: Identifier | None = None
    center: Identifier | None = None
    product: Identifier | None = None
    scope: Scope | None = None

    def selects(self, center: dict[str, Any], demand: dict[str, Any]) -> bool:
        return (
            (self.market is None or center["market"] == self.market)
            and (self.center is None or center["id"] == self.center)
            and (self.product is None or demand["product"] == self.product)
            and (self.scope is None or demand["scope"] == self.scope.value)
        )


class ScaleDemand(_DemandFilter):
    op: Literal["scale_demand"]
    factor: Annotated[float, Field(ge=0)]


class GrowDemand(_DemandFilter):
    op: Literal["grow_demand"]
    per_year: Annotated[float, Field(gt=-1)]


class AddSite(_Change):
    op: Literal["add_site"]
    site: Site


class RemoveSite(_Change):
    op: Literal["remove_site"]
    site: Identifier


class SetReferenceDate(_Change):
    op: Literal["set_reference_date"]
    reference_date: date


Change = Annotated[
    AddApproval
    | RemoveApproval
    | SetApprovalDates
    | SetLines
    | ScaleDemand
    | GrowDemand
    | AddSite
    | RemoveSite
    | SetReferenceDate,
    Field(discriminator="op"),
]


class Scenario(Noted):
    id: Identifier
    description: str = ""
    changes: list[Change] = []

    def apply_to(self, data: dict[str, Any], *, index: int | None = None) -> dict[str, Any]:
        """A network's dumped ``data`` with this scenario's changes applied (``data`` is
        left as it was); :meth:`cartnet.network.model.Network.applying` validates the
        result anew. ``index`` locates the scenario in its file for the errors."""
        changed = copy.deepcopy(data)
        where = f"scenarios[{index}]" if index is not None else f"scenario {self.id!r}"
        for i, change in enumerate(self.changes):
            _apply_change(changed, change, f"{where}.changes[{i}]")
        changed["scenarios"] = []
        changed["applied_scenario"] = self.id
        return changed


def _site(data: dict[str, Any], site_id: str, path: str) -> dict[str, Any]:
    for site in data["sites"]:
        if site["id"] == site_id:
            return site  # type: ignore[no-any-return]
    raise ScenarioError(f"{path}.site", f"unknown site {site_id!r}")


def _apply_change(data: dict[str, Any], change: _Change, path: str) -> None:
    """Mutate the dumped network ``data`` by one change."""
    if isinstance(change, AddApproval):
        site = _site(data, change.site, path)
        new = change.approval.model_dump(mode="json")
        if any(
            Approval.model_validate(a).key() == change.approval.key() for a in site["approvals"]
        ):
            raise ScenarioError(path, f"site {change.site!r} already has this approval")
        site["approvals"].append(new)
    elif isinstance(change, RemoveApproval | SetApprovalDates):
        site = _site(data, change.site, path)
        hits = [a for a in site["approvals"] if change.matches(a)]
        if not hits:
            raise ScenarioError(
                path,
                f"site {change.site!r} has no {change.regulator.value} {change.scope.value} "
                f"approval for {change.product!r}",
            )
        if isinstance(change, RemoveApproval):
            site["approvals"] = [a for a in site["approvals"] if not change.matches(a)]
        else:
            for a in hits:
                if change.effective is not None:
                    a["effective"] = change.effective.isoformat()
                if change.end is not None:
                    a["end"] = change.end.isoformat()
    elif isinstance(change, SetLines):
        _site(data, change.site, path)["lines"] = change.lines
    elif isinstance(change, ScaleDemand | GrowDemand):
        touched = 0
        for center in data["treatment_centers"]:
            for demand in center["demand"]:
                if change.selects(center, demand):
                    touched += 1
                    if isinstance(change, ScaleDemand):
                        demand["patients_per_year"] *= change.factor
                    else:
                        demand["growth_per_year"] = change.per_year
        if touched == 0:
            raise ScenarioError(path, "selects no demand (check market, center, product, scope)")
    elif isinstance(change, AddSite):
        if any(s["id"] == change.site.id for s in data["sites"]):
            raise ScenarioError(f"{path}.site.id", f"site {change.site.id!r} already exists")
        data["sites"].append(change.site.model_dump(mode="json", by_alias=True))
    elif isinstance(change, RemoveSite):
        _site(data, change.site, path)
        data["sites"] = [s for s in data["sites"] if s["id"] != change.site]
        data["lanes"] = [
            lane
            for lane in data["lanes"]
            if change.site not in (lane["origin"], lane["destination"])
        ]
    elif isinstance(change, SetReferenceDate):
        data["reference_date"] = change.reference_date.isoformat()
