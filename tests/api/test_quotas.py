"""``/api/v1/quotas`` over HTTP: planners keep quotas, bookings and offers honour them,
bad input names its field, other roles are refused."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.api.conftest import Api

OTHER_CENTER = "mgh-boston"


def quota_body(site: str, first: date, last: date, slots: int, **extra: Any) -> dict[str, Any]:
    return {
        "site": site,
        "holder_kind": "center",
        "holder": OTHER_CENTER,
        "slots": slots,
        "period_start": first.isoformat(),
        "period_end": last.isoformat(),
        "release_days": 0,
        "reason_code": "capacity_change",
        **extra,
    }


def test_a_quota_for_another_center_keeps_its_slots_from_this_order(api: Api) -> None:
    """All of a week's starts held for another center: booking one is a 409 quota-held
    naming the quota, the offers skip the week and list the quota as holding it."""
    order = api.enroll()
    first = api.get("coordinator", f"/orders/{order['id']}/offers").json()["offers"][0]
    site, start = first["site"], date.fromisoformat(first["start"])
    last = start + timedelta(days=6)
    week = api.get("planner", f"/capacity/{site}", params={"from": start.isoformat(), "days": 7})
    slots = sum(d["capacity"] for d in week.json()["days"])

    made = api.post("planner", "/quotas", quota_body(site, start, last, slots))
    assert made.status_code == 201, made.text
    quota = made.json()
    assert (quota["held"], quota["used"], quota["unused"]) == (slots, 0, slots)

    refused = api.post(
        "coordinator", f"/orders/{order['id']}/booking", {"site": site, "start": start.isoformat()}
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "quota-held"
    assert (
        f"center {OTHER_CENTER}" in problem["detail"] and f"{start} to {last}" in problem["detail"]
    )

    offers = api.get("coordinator", f"/orders/{order['id']}/offers").json()
    at_site = [o for o in offers["offers"] if o["site"] == site]
    assert all(not start.isoformat() <= o["start"] <= last.isoformat() for o in at_site)
    assert [(h["site"], h["holder"], h["unused"]) for h in offers["held"]] == [
        (site, OTHER_CENTER, slots)
    ]

    gone = api.client.request(
        "DELETE",
        f"/api/v1/quotas/{quota['id']}",
        json={"reason_code": "other", "reason_text": "the other center cancelled"},
        headers=api.headers("planner"),
    )
    assert gone.status_code == 200, gone.text
    assert gone.json()["retired_by"] is not None
    booked = api.post(
        "coordinator", f"/orders/{order['id']}/booking", {"site": site, "start": start.isoformat()}
    )
    assert booked.status_code == 200, booked.text
    listed = api.get("planner", "/quotas", params={"retired": "true"}).json()["items"]
    assert [q["id"] for q in listed] == [quota["id"]]
    assert api.get("planner", "/quotas").json()["items"] == []


def test_change_a_quota_and_read_it_back(api: Api) -> None:
    today = date.today()
    made = api.post(
        "planner", "/quotas", quota_body("morris-plains", today, today + timedelta(days=30), 4)
    ).json()
    changed = api.client.patch(
        f"/api/v1/quotas/{made['id']}",
        json={"share": 0.25, "reason_code": "capacity_change"},
        headers=api.headers("planner"),
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["slots"], changed.json()["share"]) == (None, 0.25)
    again = api.get("planner", f"/quotas/{made['id']}").json()
    assert again == changed.json()
    assert api.get("planner", "/quotas/quo_nothing").status_code == 404


def test_bad_quotas_are_refused_naming_the_field(api: Api) -> None:
    today = date.today()
    good = quota_body("morris-plains", today, today + timedelta(days=6), 2)
    for body, field in [
        ({**good, "slots": -1}, "body.slots"),
        ({**good, "share": 2}, "body.share"),
        ({**good, "holder_kind": "country"}, "body.holder_kind"),
        ({k: v for k, v in good.items() if k != "reason_code"}, "body.reason_code"),
        ({**good, "holder": "nobody"}, "holder"),
        ({**good, "site": "atlantis"}, "site"),
        ({**good, "slots": 100_000}, "slots"),
        ({**good, "period_end": (today - timedelta(days=1)).isoformat()}, "period_end"),
    ]:
        answer = api.post("planner", "/quotas", body)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["field"] == field, answer.json()
    assert api.get("planner", "/quotas", params={"retired": "true"}).json()["items"] == []


def test_only_planners_keep_quotas(api: Api) -> None:
    today = date.today()
    body = quota_body("morris-plains", today, today + timedelta(days=6), 2)
    for user in ("coordinator", "operator", "qa", "logistics", "admin"):
        assert api.post(user, "/quotas", body).status_code == 403, user
        assert api.get(user, "/quotas").status_code == 403, user
    assert api.get(None, "/quotas").status_code == 401
