"""The planner's quota page: add a quota from the form, see its use, retire it with a
reason; bad input by the field; the offers page and the tower show held slots."""

from __future__ import annotations

import re
from datetime import date, timedelta

from tests.web.conftest import Portal

from cartnet.service import quotas


def add(portal: Portal, **fields: str) -> object:
    today = date.today()
    form = {
        "site": "morris-plains",
        "holder_kind": "center",
        "holder": "mgh-boston",
        "slots": "3",
        "period_start": (today + timedelta(days=1)).isoformat(),
        "period_end": (today + timedelta(days=200)).isoformat(),
        "release_days": "0",
        "reason_code": "capacity_change",
        **fields,
    }
    return portal.post("planner", "/planner/quotas", form)


def test_the_planner_adds_sees_and_retires_a_quota(portal: Portal) -> None:
    planner = portal.as_user("planner")
    assert 'href="/planner/quotas"' in planner.get("/planner").text
    empty = planner.get("/planner/quotas")
    assert empty.status_code == 200 and "No quotas" in empty.text

    added = add(portal)
    assert added.status_code == 303, added.text  # type: ignore[attr-defined]
    page = planner.get("/planner/quotas").text
    assert "mgh-boston" in page and "0 days ahead" in page
    (quota,) = quotas.list_quotas(portal.ctx, portal.principal("planner")).items
    assert f'action="/planner/quotas/{quota.id}/retire"' in page

    refused = portal.post("planner", f"/planner/quotas/{quota.id}/retire", {})
    assert refused.status_code == 422 and "not retired" in refused.text
    retired = portal.post(
        "planner",
        f"/planner/quotas/{quota.id}/retire",
        {"reason_code": "other", "reason_text": "the trial moved"},
    )
    assert retired.status_code == 303, retired.text
    assert quotas.list_quotas(portal.ctx, portal.principal("planner")).items == []
    assert "retired" in planner.get("/planner/quotas?retired=true").text


def test_bad_quota_input_is_shown_by_its_field(portal: Portal) -> None:
    answer = add(portal, holder="nobody", slots="2")
    assert answer.status_code == 422  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert re.search(r'<p class="error" id="e-holder">no center &#39;nobody&#39;', text), text
    assert 'value="nobody"' in text  # what was typed stays in the form
    answer = add(portal, slots="-1")
    assert 'id="e-slots"' in answer.text  # type: ignore[attr-defined]
    assert quotas.list_quotas(portal.ctx, portal.principal("planner")).items == []


def test_other_roles_cannot_open_the_quota_page(portal: Portal) -> None:
    for user in ("coordinator", "qa", "logistics"):
        assert portal.as_user(user).get("/planner/quotas").status_code == 403, user


def test_offers_and_the_tower_show_held_slots(portal: Portal) -> None:
    """A quota for another center is listed on the coordinator's offers page with whom
    it holds slots for; the tower's heat map counts the held starts at the site."""
    order = portal.enrolled()
    add(portal)
    offers = portal.as_user("coordinator").get(f"/orders/{order.id}/offers").text
    assert "Slots held by quotas for others" in offers and "mgh-boston" in offers
    tower = portal.as_user("planner").get("/tower/capacity")
    assert tower.status_code == 200, tower.text
    assert "Held by quotas" in tower.text and "for center mgh-boston" in tower.text
