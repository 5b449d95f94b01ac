"""The control tower's pages: who may open them, what they show, closing an exception."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Route
from tests.api.conftest import PASSWORD, make_users, settings_for
from tests.web.conftest import Portal
from tests.web.test_quality_pages import wrong_scan
from tests.web.test_queues import advance, ship

from cartnet.api import create_app
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.service import accounts, quality, tower, tower_load
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import NewUser, OrderView
from cartnet.service.slots import SlotKind
from cartnet.store.tables import AuditEntryRow
from cartnet.web import tower as tower_pages

TOWER_PATHS = sorted(
    r.path
    for r in tower_pages.router.routes
    if isinstance(r, Route) and r.path.startswith("/tower")
)
NO_TOWER = ("coordinator", "other_coordinator", "operator", "other_operator", "admin", "qa")


@pytest.fixture
def qa_portal(migrated_url: str) -> Iterator[Portal]:
    """The portal with ``tower_qa_read`` set: QA may read the tower."""
    ctx = ServiceContext.open(settings_for(migrated_url, tower_qa_read=True), migrate=False)
    make_users(ctx)
    result = Portal(ctx, create_app(ctx))
    yield result
    for client in result.clients.values():
        client.close()
    ctx.close()


def later(portal: Portal, days: float) -> None:
    """Move the service's clock ``days`` ahead (for the readers of the tower)."""
    real = portal.ctx.clock
    portal.ctx.clock = lambda: real() + timedelta(days=days)


def mismatch(portal: Portal) -> OrderView:
    """An order in transit to the site whose receipt scanned another order's bag."""
    order = advance(portal, portal.booked(), OrderState.SHIPPED_TO_SITE)
    wrong_scan(portal, order, portal.booked())
    return order


def test_planner_and_logistics_open_every_tower_page(portal: Portal) -> None:
    booked = portal.booked()
    assert set(TOWER_PATHS) >= {
        "/tower",
        "/tower/risks",
        "/tower/exceptions",
        "/tower/capacity",
        "/tower/world.svg",
    }
    for user in ("planner", "logistics"):
        client = portal.as_user(user)
        for path in TOWER_PATHS:
            answer = client.get(path)
            assert answer.status_code == 200, (user, path, answer.text[:300])
        home = client.get("/tower").text
        assert "Control tower" in home and 'href="/tower"' in home  # nav link
        # the order is a dot on the map, linked to its page, at its center (booked)
        assert re.search(rf'<a href="/orders/{booked.id}"><circle class="order o-waiting', home)
        assert '<image href="/tower/world.svg"' in home
        assert "Morris Plains" in home  # a site of the network
    world = portal.as_user("planner").get("/tower/world.svg")
    assert world.headers["content-type"].startswith("image/svg+xml")
    assert world.text.startswith("<svg") and world.text.count("M") > 100


def test_the_planner_lands_on_the_tower(portal: Portal) -> None:
    client = portal.as_user("planner")
    answer = client.get("/", follow_redirects=False)
    assert answer.headers["location"] == "/tower"


@pytest.mark.parametrize("user", NO_TOWER)
def test_other_roles_get_403_on_every_tower_url(portal: Portal, user: str) -> None:
    """Coordinators, operators, admins and (by default) QA: refused, no bell."""
    client = portal.as_user(user)
    for path in TOWER_PATHS:
        answer = client.get(path)
        assert answer.status_code == 403, (user, path)
        assert "control tower" in answer.text
    for query in ("?kind=oos", "?page=2&risk=waiting_for_slot"):
        assert client.get("/tower/exceptions" + query).status_code == 403
    bell = client.get("/bell")
    assert bell.status_code == 200 and bell.text.strip() == '<span id="bell"></span>'
    assert 'href="/tower"' not in client.get("/orders").text


def test_an_anonymous_bell_is_empty_and_tower_pages_ask_for_login(portal: Portal) -> None:
    anonymous = TestClient(portal.app)
    assert anonymous.get("/bell").text.strip() == '<span id="bell"></span>'
    answer = anonymous.get("/tower", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/tower"


def test_the_exception_queue_says_who_must_act_and_filters(portal: Portal) -> None:
    order = mismatch(portal)
    client = portal.as_user("planner")
    page = client.get("/tower/exceptions").text
    assert "<strong>1</strong> open exception(s)" in page
    row = page.split(f'href="/orders/{order.id}"')[1].split("</tr>")[0]
    assert "qa · Morris Plains" in row  # who must act: QA at the order's site
    assert "UTC" in row  # since when, with its zone
    assert "Close exception" not in page  # a planner cannot close it
    assert "<strong>1</strong>" in client.get("/tower/exceptions?kind=coi_mismatch").text
    assert "<strong>0</strong>" in client.get("/tower/exceptions?kind=oos").text
    assert "<strong>0</strong>" in client.get("/tower/exceptions?actor=logistics").text
    assert "<strong>1</strong>" in client.get("/tower/exceptions?site=morris-plains").text
    assert "<strong>0</strong>" in client.get("/tower/exceptions?site=leipzig").text
    assert client.get("/tower/exceptions?kind=nonsense").status_code == 422
    assert client.get("/tower/risks?actor=nobody").status_code == 422
    # the overview counts it by kind and the bell of QA (not the planner's) would ring
    home = client.get("/tower").text
    assert 'href="/tower/exceptions?kind=coi_mismatch">1</a>' in home


def test_the_queue_pages(portal: Portal) -> None:
    for _ in range(3):
        mismatch(portal)
    monkey = pytest.MonkeyPatch()
    monkey.setattr(tower_pages, "PAGE_SIZE", 2)
    try:
        client = portal.as_user("logistics")
        first = client.get("/tower/exceptions?kind=coi_mismatch").text
        assert "<strong>3</strong> open exception(s)" in first and "2 shown of 3" in first
        assert 'href="/tower/exceptions?kind=coi_mismatch&amp;page=2"' in first
        second = client.get("/tower/exceptions?kind=coi_mismatch&page=2").text
        assert "1 shown of 3" in second and "(a later page)" in second
        assert 'rel="next"' not in second
    finally:
        monkey.undo()


def test_qa_reads_the_tower_when_allowed_and_closes_with_a_reason(qa_portal: Portal) -> None:
    portal = qa_portal
    order = mismatch(portal)
    qa = portal.as_user("qa")
    for path in TOWER_PATHS:
        assert qa.get(path).status_code == 200, path
    assert 'href="/tower">Control tower</a>' in qa.get("/qa").text
    back = "/tower/exceptions?kind=coi_mismatch"
    page = qa.get(back).text
    assert "read-only view of the whole network" in page
    (exception,) = quality.order_exceptions(portal.ctx, portal.principal("qa"), order.id)
    action = f"/orders/{order.id}/exceptions/{exception.id}/close"
    assert f'action="{action}"' in page  # QA of the order's site closes it here
    # without a reason: refused next to the field, still open
    refused = portal.post("qa", action, {"reason_code": "other", "reason_text": "", "next": back})
    assert refused.status_code == 422
    assert (
        quality.order_exceptions(portal.ctx, portal.principal("qa"), order.id)[0].closed_at is None
    )
    done = portal.post(
        "qa",
        action,
        {"reason_code": "other", "reason_text": "wrong bag caught at the dock", "next": back},
    )
    assert done.status_code == 303 and done.headers["location"] == back
    assert "<strong>0</strong> open exception(s)" in qa.get(back).text
    with portal.ctx.reading() as session:
        entry = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.entity_type == "order_exception")
            .order_by(AuditEntryRow.sequence.desc())
        ).first()
    assert entry is not None and entry.reason_text == "wrong bag caught at the dock"
    # the planner still has no close form, and QA may not close from someone else's site
    assert "Close exception" not in portal.as_user("planner").get("/tower/exceptions").text


def test_qa_of_another_site_reads_but_cannot_close(qa_portal: Portal) -> None:
    portal = qa_portal
    mismatch(portal)
    accounts.create_user(
        portal.ctx,
        accounts.SYSTEM,
        NewUser(
            username="qa_leipzig",
            printed_name="Lena Leipzig",
            password=PASSWORD,
            role=Role.QA,
            site="leipzig",
        ),
    )
    page = portal.as_user("qa_leipzig").get("/tower/exceptions").text
    assert "<strong>1</strong> open exception(s)" in page
    assert "Close exception" not in page


def test_orders_waiting_for_a_slot_and_late_shipments_are_at_risk(portal: Portal) -> None:
    waiting = portal.enrolled()
    moving = advance(portal, portal.booked(), OrderState.APHERESIS_COLLECTED)
    ship(portal, moving.id, "Cryo <Couriers>", "TRK-1")
    moving = advance(portal, moving, OrderState.SHIPPED_TO_SITE)
    calm, total = tower.at_risk(portal.ctx, portal.principal("planner"))
    assert total == 0 and calm == []
    later(portal, 9)  # (sessions start after this: the clock also ends them)
    planner = portal.as_user("planner")
    risks = planner.get("/tower/risks").text
    row = risks.split(f'href="/orders/{waiting.id}"')[1].split("</tr>")[0]
    assert "waiting for slot" in row and "threshold 7 days" in row and "planner" in row
    row = risks.split(f'href="/orders/{moving.id}"')[1].split("</tr>")[0]
    assert "shipment overdue" in row and "Cryo &lt;Couriers&gt;" in row
    assert "late against plan" in row  # its manufacturing start has passed too
    only = planner.get("/tower/risks?risk=waiting_for_slot").text
    assert waiting.id in only and moving.id not in only
    late = planner.get("/tower/exceptions?kind=late_shipment").text
    row = late.split(f'href="/orders/{moving.id}"')[1].split("</tr>")[0]
    assert "logistics · Cryo &lt;Couriers&gt;" in row and "tracking TRK-1" in row
    # the bells: the planner acts on both orders (slot wait, late plan), logistics on one
    assert re.search(r'<span class="count">2</span>', planner.get("/orders").text)
    logistics = portal.as_user("logistics").get("/bell").text
    assert 'hx-trigger="every 30s"' in logistics and '<span class="count">1</span>' in logistics
    home = planner.get("/tower").text
    assert "<strong>2</strong> order(s) need you" in home
    assert 'circle class="order o-transit risk"' in home  # on its lane, ringed


def test_the_heat_map_shows_booked_starts_against_capacity(portal: Portal) -> None:
    booked = portal.booked()
    assert booked.plan is not None
    load = tower_load.network_load(portal.ctx, portal.principal("planner"))
    row = load.site(booked.plan.site)
    assert row is not None and len(row.weeks) == 8
    assert sum(w.booked for w in row.weeks) == 1
    week = next(w for w in row.weeks if w.first <= booked.plan.start < w.first + timedelta(7))
    assert week.booked == 1 and week.capacity > 0
    assert {r.resource for r in load.of(SlotKind.APHERESIS)} == {booked.center}
    page = portal.as_user("logistics").get("/tower/capacity").text
    cells = page.split(f'<th scope="row">{portal.ctx.network.site(booked.plan.site).name}</th>')
    assert f">1/{week.capacity}</td>" in cells[1].split("</tr>")[0]
    assert 'class="num heat-0"' in page
    assert "style=" not in page
    assert "Apheresis (centers with bookings)" in page
