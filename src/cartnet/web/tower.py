"""The control tower: the network at a glance, what is at risk, what went wrong, the load.

For planners and logistics (QA read-only when ``tower_qa_read`` is set; everyone else
gets 403 on every page here, as :func:`cartnet.service.tower.require_tower` answers).
The front page draws the network on a world map (:mod:`cartnet.web.tower_map`) with
each site's load and each open order where it is, then the open orders by stage with
their ages, and what needs the viewer's action. The at-risk list and the exception
queue are filtered, paged and counted; an exception QA may close carries the same close
form as QA's own queue (reason code and text, audited by
:func:`cartnet.service.quality.close_exception`) and comes back here. The capacity page
is a heat map of sites × weeks. ``GET /bell`` is the header's bell as a fragment, for
htmx to refresh.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cartnet.ledger.roles import Role
from cartnet.service import tower, tower_load
from cartnet.service.errors import Invalid
from cartnet.service.slots import SlotKind
from cartnet.service.tower import Trouble
from cartnet.service.tower_risks import Risk
from cartnet.web.bell import bell_for
from cartnet.web.page import TEMPLATES, Anonymous, Page, user_page
from cartnet.web.quality import _reasons
from cartnet.web.tower_map import LEGEND, network_map, world_svg

router = APIRouter()
PAGE_SIZE = 25
ACTORS = (Role.PLANNER, Role.LOGISTICS, Role.QA)
"""Roles an exception or a risk can wait for."""


def tower_page(request: Request) -> Page:
    """A tower page: planners, logistics and (if the settings allow) QA; others 403."""
    page = user_page(request)
    tower.require_tower(page.ctx, page.principal)
    return page


TowerUser = Annotated[Page, Depends(tower_page)]
SiteFilter = Query(None, max_length=64)
Choice = Query(None, max_length=64)
E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], value: str | None, field: str) -> E | None:
    """A filter's value as its enum; empty means no filter, anything else is refused."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in kind)
        raise Invalid(f"{value!r} is not one of {allowed}", field=field) from None


def _site(page: Page, site: str | None) -> str | None:
    """The site filter, if it names a site of the network (else no filter)."""
    return site if site in {s.id for s in page.ctx.network.sites} else None


def _pages(
    path: str, filters: dict[str, str | None], number: int, shown: int, total: int
) -> str | None:
    """The next page's link, keeping the filters; ``None`` on the last page."""
    if (number - 1) * PAGE_SIZE + shown >= total:
        return None
    kept = [(k, v) for k, v in filters.items() if v]
    return path + "?" + urlencode([*kept, ("page", str(number + 1))])


def _sites(page: Page) -> list[tuple[str, str]]:
    return [(s.id, s.name) for s in page.ctx.network.sites]


def _actors() -> list[tuple[str, str]]:
    return [(r.value, r.value.replace("_", " ")) for r in ACTORS]


@router.get("/tower")
async def tower_home(page: TowerUser) -> Response:
    """The network on the map, orders by stage, what needs the viewer, counts of trouble."""
    ctx, who = page.ctx, page.principal
    seen = await page.call(tower.overview, ctx, who)
    load = await page.call(tower_load.network_load, ctx, who)
    risky = {r.order.id for r in seen.at_risk}
    picture = network_map(ctx.network, seen.orders, load, risky, seen.now)
    by_risk = {r: sum(any(n.risk is r for n in a.notes) for a in seen.at_risk) for r in Risk}
    by_kind = {k: sum(e.kind is k for e in seen.exceptions) for k in Trouble}
    return page.render(
        "tower/home.html",
        seen=seen,
        picture=picture,
        legend=LEGEND,
        by_risk=by_risk,
        by_kind=by_kind,
        first_risks=seen.at_risk[:5],
        weeks=len(load.weeks),
    )


@router.get("/tower/world.svg")
async def world(page: TowerUser) -> Response:
    """The map's country outlines: the same for everyone, so the browser may keep it."""
    return Response(
        world_svg(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.get("/tower/risks")
async def risks(
    page: TowerUser,
    risk_name: str | None = Query(None, max_length=64, alias="risk"),
    site: str | None = SiteFilter,
    actor_name: str | None = Query(None, max_length=64, alias="actor"),
    page_no: int = Query(1, ge=1, le=10_000, alias="page"),
) -> Response:
    """Open orders at risk, longest first, filtered by reason, site and who must act."""
    chosen = _site(page, site)
    risk = _choice(Risk, risk_name, "risk")
    actor = _choice(Role, actor_name, "actor")
    items, total = await page.call(
        tower.at_risk,
        page.ctx,
        page.principal,
        risk=risk,
        site=chosen,
        actor=actor,
        offset=(page_no - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    filters = {
        "risk": risk.value if risk else None,
        "site": chosen,
        "actor": actor.value if actor else None,
    }
    return page.render(
        "tower/risks.html",
        items=items,
        total=total,
        next_url=_pages("/tower/risks", filters, page_no, len(items), total),
        risks=[(r.value, r.value.replace("_", " ")) for r in Risk],
        sites=_sites(page),
        actors=_actors(),
        form={k: v or "" for k, v in filters.items()},
        first_page=page_no == 1,
    )


@router.get("/tower/exceptions")
async def exceptions(
    request: Request,
    page: TowerUser,
    kind_name: str | None = Query(None, max_length=64, alias="kind"),
    site: str | None = SiteFilter,
    actor_name: str | None = Query(None, max_length=64, alias="actor"),
    page_no: int = Query(1, ge=1, le=10_000, alias="page"),
) -> Response:
    """The network's open exceptions, oldest first: who must act, since when; QA closes."""
    chosen = _site(page, site)
    kind = _choice(Trouble, kind_name, "kind")
    actor = _choice(Role, actor_name, "actor")
    items, total = await page.call(
        tower.network_exceptions,
        page.ctx,
        page.principal,
        kind=kind,
        site=chosen,
        actor=actor,
        offset=(page_no - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    filters = {
        "kind": kind.value if kind else None,
        "site": chosen,
        "actor": actor.value if actor else None,
    }
    return page.render(
        "tower/exceptions.html",
        items=items,
        total=total,
        next_url=_pages("/tower/exceptions", filters, page_no, len(items), total),
        kinds=[(k.value, k.value.replace("_", " ")) for k in Trouble],
        sites=_sites(page),
        actors=_actors(),
        reasons=_reasons(),
        back=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        form={k: v or "" for k, v in filters.items()},
        first_page=page_no == 1,
    )


@router.get("/tower/capacity")
async def capacity(page: TowerUser) -> Response:
    """Sites × weeks: manufacturing starts booked against capacity; QC, apheresis if limited."""
    load = await page.call(tower_load.network_load, page.ctx, page.principal)
    return page.render(
        "tower/capacity.html",
        load=load,
        sections=[
            ("Manufacturing starts", "site", load.of(SlotKind.MANUFACTURING)),
            ("QC releases (sites with limited QC)", "site", load.of(SlotKind.QC)),
            ("Apheresis (centers with bookings)", "center", load.of(SlotKind.APHERESIS)),
        ],
        levels=tower_load.HEAT_LEVELS,
    )


@router.get("/bell")
async def bell(page: Anonymous) -> Response:
    """The header's bell alone, for htmx to swap in; empty for a role without one."""
    user = None if page.session is None else page.session.principal
    found = await page.call(bell_for, page.ctx, user)
    html = TEMPLATES.get_template("_bell.html").render(bell=found)
    return HTMLResponse(html)
