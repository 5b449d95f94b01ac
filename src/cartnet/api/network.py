"""``/network``, ``/capacity`` and ``/aggregates``: what planners and sites read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from cartnet.api.deps import IDENTIFIER, Caller, Context
from cartnet.api.problems import READ
from cartnet.service import orders
from cartnet.service.schemas import Aggregates, Day, SiteCapacity

router = APIRouter()


class SiteSummary(BaseModel):
    id: str
    name: str
    operator: str
    city: str
    country: str
    lines: int
    approvals: list[str]


class CenterSummary(BaseModel):
    id: str
    name: str
    market: str
    city: str
    country: str
    products: list[str]


class NetworkSummary(BaseModel):
    name: str
    scenario: str | None
    products: list[str]
    markets: list[str]
    sites: list[SiteSummary]
    centers: list[CenterSummary]


@router.get("/network", response_model=NetworkSummary, responses=READ, tags=["network"])
def network(ctx: Context, caller: Caller) -> NetworkSummary:
    """The network the service runs: sites with their approvals, treatment centers."""
    net = ctx.network
    return NetworkSummary(
        name=net.name,
        scenario=ctx.settings.scenario,
        products=[p.id for p in net.products],
        markets=[m.id for m in net.markets],
        sites=[
            SiteSummary(
                id=s.id,
                name=s.name,
                operator=s.operator.name,
                city=s.city,
                country=s.country,
                lines=s.lines,
                approvals=[
                    f"{a.product} {a.regulator.value} {a.scope.value} from {a.effective}"
                    + (f" to {a.end}" if a.end else "")
                    for a in s.approvals
                ],
            )
            for s in net.sites
        ],
        centers=[
            CenterSummary(
                id=c.id,
                name=c.name,
                market=c.market,
                city=c.city,
                country=c.country,
                products=list(c.products),
            )
            for c in net.treatment_centers
        ],
    )


@router.get("/capacity/{site}", response_model=SiteCapacity, responses=READ, tags=["network"])
def capacity(
    ctx: Context,
    caller: Caller,
    site: Annotated[str, Path(max_length=64, pattern=IDENTIFIER)],
    first: Annotated[Day | None, Query(alias="from")] = None,
    days: Annotated[int, Query(ge=1, le=366)] = 28,
) -> SiteCapacity:
    """Manufacturing starts per day at a site: capacity and booked."""
    return orders.site_capacity(ctx, caller, site, first, days)


@router.get("/aggregates", response_model=Aggregates, responses=READ, tags=["network"])
def aggregates(ctx: Context, caller: Caller) -> Aggregates:
    """Order counts by state, site and market (no identities, no order ids)."""
    return orders.aggregates(ctx, caller)
