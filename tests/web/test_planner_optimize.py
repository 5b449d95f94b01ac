"""Optimizing the open orders from the workspace and applying moves, signed; a network
design from the form; the network file view; and nobody but planners in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select, text, update
from starlette.routing import Route
from tests.api.conftest import PASSWORD
from tests.web.conftest import Portal
from tests.web.test_planner import job_id

from cartnet.ledger.reasons import ReasonCode
from cartnet.network.catalog import network_source
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.optimizer import optimize
from cartnet.service import jobs, orders
from cartnet.service import replan as replan_module
from cartnet.service.design_job import report_path
from cartnet.service.job_runner import JobRunner
from cartnet.service.jobs import JobState
from cartnet.service.replan import open_backlog
from cartnet.service.schemas import BookChain, OrderView, Reschedule
from cartnet.service.verification import verify_database
from cartnet.store.tables import AuditEntryRow, PlanApplicationRow, SignatureRow
from cartnet.web.portal import page_routers


def booked_late(portal: Portal) -> tuple[OrderView, int]:
    """An order booked on its slowest offer, and the days its best offer would gain."""
    order = portal.enrolled()
    who = portal.principal("coordinator")
    offers = orders.offers(portal.ctx, who, order.id, k=10, per_site=10).offers
    best = min(offers, key=lambda o: o.infusion)
    worst = max(offers, key=lambda o: (o.infusion, o.site))
    assert worst.infusion > best.infusion, "the test needs offers that differ"
    booked = orders.book(portal.ctx, who, order.id, BookChain(site=worst.site, start=worst.start))
    return booked, (worst.infusion - best.infusion).days


def optimized(portal: Portal) -> str:
    started = portal.post("planner", "/planner/optimize", {"optimize_time_limit": "20"})
    assert started.status_code == 303, started.text
    job = job_id(started)
    assert JobRunner(portal.ctx, workers=1).run_next()
    state = jobs.get_job(portal.ctx, portal.principal("planner"), job)
    assert state.state is JobState.DONE, state.error
    return job


def test_the_plan_moves_a_late_booking_to_its_best_chain(portal: Portal) -> None:
    order, gain = booked_late(portal)
    job = optimized(portal)
    planner = portal.as_user("planner")
    done = planner.get(f"/planner/jobs/{job}")
    assert f'href="/planner/jobs/{job}/plan"' in done.text and "3 of 3 steps" in done.text
    assert planner.get(f"/planner/jobs/{job}/result", follow_redirects=False).status_code == 303
    page = planner.get(f"/planner/jobs/{job}/plan")
    assert page.status_code == 200, page.text
    assert '<strong id="plan-status">optimal</strong>' in page.text
    document = planner.get(f"/planner/jobs/{job}/result.json").json()
    assert document["schema"] == "cartnet.replan/1" and document["orders"] == 1
    (move,) = document["moves"]
    # one open order and its own capacity given back: the plan is its best offer
    assert move["order"] == order.id and move["days_gained"] == gain > 0
    assert order.plan is not None
    assert (move["from"]["site"], move["from"]["start"]) == (
        order.plan.site,
        order.plan.start.isoformat(),
    )
    row = re.search(rf'<tr id="move-{order.id}" class="move-pending">(.*?)</tr>', page.text, re.S)
    assert row is not None and f">{gain}<" in row.group(1)
    assert f'name="moves" value="{order.id}"' in page.text
    assert 'name="signature_password"' in page.text and "approval" in page.text


def test_applying_a_move_is_a_signed_reschedule_in_the_trail(portal: Portal) -> None:
    order, _ = booked_late(portal)
    job = optimized(portal)
    (move,) = jobs.job_result(portal.ctx, portal.principal("planner"), job)["moves"]
    applied = portal.post(
        "planner",
        f"/planner/jobs/{job}/apply",
        {"moves": [order.id], "signature_password": PASSWORD},
    )
    assert applied.status_code == 200, applied.text
    assert "Applied: 1 of 1 move(s)" in applied.text and "approval" in applied.text
    assert f'<tr id="move-{order.id}" class="move-applied">' in applied.text
    now = orders.get_order(portal.ctx, portal.principal("coordinator"), order.id)
    assert now.plan is not None
    assert (now.plan.site, now.plan.start.isoformat()) == (move["to"]["site"], move["to"]["start"])
    with portal.ctx.reading() as session:
        (application,) = session.scalars(select(PlanApplicationRow)).all()
        signature = session.scalars(
            select(SignatureRow).where(SignatureRow.record_id == application.id)
        ).one()
        entry = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.entity_type == "order", AuditEntryRow.entity_id == order.id)
            .order_by(AuditEntryRow.sequence.desc())
        ).first()
        report = verify_database(session, portal.ctx.signing_key)
    assert signature.record_type == "plan_application" and signature.meaning == "approval"
    assert signature.record_hash == application.record_hash
    assert json.loads(application.moves)[0]["order"] == order.id
    assert entry is not None and entry.reason_code == ReasonCode.NETWORK_OPTIMIZATION.value
    assert entry.reason_text is not None and application.id in entry.reason_text
    assert report.problems == ()
    again = portal.post(
        "planner",
        f"/planner/jobs/{job}/apply",
        {"moves": [order.id], "signature_password": PASSWORD},
    )
    assert again.status_code == 422 and "applied already" in again.text
    # an application edited in the database no longer matches its trail or signature
    with portal.ctx.transaction() as session:
        session.execute(update(PlanApplicationRow).values(record_hash="0" * 64))
    with portal.ctx.reading() as session:
        problems = verify_database(session, portal.ctx.signing_key).problems
    assert any("plan application" in p and "record_hash" in p for p in problems)
    assert any("does not bind the record it names" in p for p in problems)


def test_a_wrong_password_applies_nothing(portal: Portal) -> None:
    order, _ = booked_late(portal)
    job = optimized(portal)
    refused = portal.post(
        "planner",
        f"/planner/jobs/{job}/apply",
        {"moves": [order.id], "signature_password": "not the password"},
    )
    assert refused.status_code == 401
    assert 'id="e-signature_password"' in refused.text and "wrong password" in refused.text
    none = portal.post("planner", f"/planner/jobs/{job}/apply", {"signature_password": PASSWORD})
    assert none.status_code == 422 and "select at least one move" in none.text
    after = orders.get_order(portal.ctx, portal.principal("coordinator"), order.id)
    assert after.plan == order.plan
    with portal.ctx.reading() as session:
        assert session.scalars(select(PlanApplicationRow)).all() == []
        assert session.scalars(select(SignatureRow)).all() == []


def test_a_stale_move_is_refused_and_the_others_still_go(portal: Portal) -> None:
    first, _ = booked_late(portal)
    second, _ = booked_late(portal)
    job = optimized(portal)
    moves = {
        m["order"]: m
        for m in jobs.job_result(portal.ctx, portal.principal("planner"), job)["moves"]
    }
    assert set(moves) == {first.id, second.id}
    # the coordinator moves the first order meanwhile, to a chain of their own choice
    who = portal.principal("coordinator")
    assert first.plan is not None
    taken = {(first.plan.site, first.plan.start.isoformat())}
    taken.add((moves[first.id]["to"]["site"], moves[first.id]["to"]["start"]))
    offers = orders.offers(portal.ctx, who, first.id, k=10, per_site=10).offers
    other = next(o for o in offers if (o.site, o.start.isoformat()) not in taken)
    orders.reschedule(
        portal.ctx,
        who,
        first.id,
        Reschedule(site=other.site, start=other.start, reason_code=ReasonCode.PATIENT_REQUEST),
    )
    page = portal.as_user("planner").get(f"/planner/jobs/{job}/plan")
    assert f'<tr id="move-{first.id}" class="move-changed">' in page.text
    answer = portal.post(
        "planner",
        f"/planner/jobs/{job}/apply",
        {"moves": [first.id, second.id], "signature_password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    assert "Applied: 1 of 2 move(s)" in answer.text
    assert "the booking changed since the plan was made" in answer.text
    kept = orders.get_order(portal.ctx, who, first.id).plan
    moved = orders.get_order(portal.ctx, who, second.id).plan
    assert kept is not None and (kept.site, kept.start) == (other.site, other.start)
    target = moves[second.id]["to"]
    assert moved is not None and (moved.site, moved.start.isoformat()) == (
        target["site"],
        target["start"],
    )


def test_optimization_and_design_forms_refuse_bad_values_by_field(portal: Portal) -> None:
    zero = portal.post("planner", "/planner/optimize", {"optimize_time_limit": "0"})
    assert zero.status_code == 422 and 'id="e-optimize_time_limit"' in zero.text
    assert 'value="0"' in zero.text
    scale = portal.post("planner", "/planner/design", {"design_scale": "-1"})
    assert scale.status_code == 422 and 'id="e-design_scale"' in scale.text
    kind = portal.post("planner", "/planner/design", {"design_instance": "mars"})
    assert kind.status_code == 422 and 'id="e-design_instance"' in kind.text
    assert jobs.list_jobs(portal.ctx, portal.principal("planner")) == []


def test_a_design_from_the_form_to_its_result(portal: Portal) -> None:
    started = portal.post(
        "planner",
        "/planner/design",
        {
            "design_instance": "ishipment",
            "design_scale": "100",
            "design_objective": "cost",
            "design_time_limit": "20",
            "design_simulate": "0",
            "design_seed": "1",
        },
    )
    assert started.status_code == 303, started.text
    job = job_id(started)
    assert JobRunner(portal.ctx, workers=1).run_next()
    planner = portal.as_user("planner")
    document = planner.get(f"/planner/jobs/{job}/result.json").json()
    assert document["schema"] == "cartnet.design-result/1"
    assert document["instance"] == "ishipment-100" and document["objective_kind"] == "cost"
    page = planner.get(f"/planner/jobs/{job}/design")
    assert page.status_code == 200, page.text
    assert f'<strong id="design-status">{document["status"]}</strong>' in page.text
    for site in document["sites"]:
        assert site["name"] in page.text
    report = planner.get(f"/planner/jobs/{job}/design-report.html")
    assert "attachment" in report.headers["content-disposition"]
    assert report.text.startswith("<!DOCTYPE html>") and "Solver verdict" in report.text
    report_path(job).unlink()
    gone = planner.get(f"/planner/jobs/{job}/design-report.html")
    assert gone.status_code == 404 and "start the design again" in gone.text
    assert planner.get(f"/planner/jobs/{job}/plan").status_code == 404  # not an optimization


def test_the_network_file_with_line_numbers_and_a_candidate_checked(portal: Portal) -> None:
    planner = portal.as_user("planner")
    served = planner.get("/planner/network")
    assert served.status_code == 200
    name, source = network_source("kymriah-2020")
    lines = source.splitlines()
    assert name in served.text and 'id="s-valid"' in served.text
    assert f'id="s-L{len(lines)}"' in served.text
    # a candidate with an unknown key: named with its line and field path; nothing saved
    where = next(i for i, line in enumerate(lines) if line.startswith("sites:"))
    broken = "\n".join([*lines[: where + 2], "    colour: blue", *lines[where + 2 :]])
    checked = portal.post("planner", "/planner/network/check", {"network_text": broken})
    assert checked.status_code == 422
    assert f'href="#c-L{where + 3}">line {where + 3}</a>' in checked.text
    assert "<code>sites[0].colour</code>" in checked.text
    assert f'<tr id="c-L{where + 3}" class="bad">' in checked.text
    uploaded = portal.post(
        "planner",
        "/planner/network/check",
        files={"network_file": ("mine.yaml", source.encode(), "text/yaml")},
    )
    assert uploaded.status_code == 200 and "Checked: mine.yaml" in uploaded.text
    assert 'id="c-valid"' in uploaded.text
    bad_yaml = portal.post("planner", "/planner/network/check", {"network_text": "a: [1,"})
    assert bad_yaml.status_code == 422 and 'id="c-problems"' in bad_yaml.text
    empty = portal.post("planner", "/planner/network/check", {"network_text": " "})
    assert empty.status_code == 422 and 'id="e-network_text"' in empty.text
    assert network_source("kymriah-2020")[1] == source  # nothing saved


def test_a_coordinator_reaches_no_planner_or_tower_url(portal: Portal) -> None:
    order, _ = booked_late(portal)
    job = optimized(portal)
    paths = {
        (method, route.path)
        for router in page_routers()
        for route in router.routes
        if isinstance(route, Route) and route.path.startswith(("/planner", "/tower"))
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert ("POST", "/planner/jobs/{job_id}/apply") in paths
    assert ("GET", "/planner/network") in paths and ("POST", "/planner/design") in paths
    values = {
        "job_id": job,
        "name": "ttt",
        "order_id": order.id,
        "site": "stein",
        "quota_id": "quo_0",
    }
    coordinator = portal.as_user("coordinator")
    for method, path in sorted(paths):
        url = path.format(**{k: v for k, v in values.items() if "{" + k in path})
        if method == "GET":
            answer = coordinator.get(url, follow_redirects=False)
        else:
            answer = portal.post(
                "coordinator", url, {"moves": [order.id], "signature_password": PASSWORD}
            )
        assert answer.status_code in (403, 404), (method, url, answer.status_code)
    with portal.ctx.reading() as session:
        assert session.execute(text("SELECT count(*) FROM plan_applications")).scalar() == 0
    assert (
        orders.get_order(portal.ctx, portal.principal("coordinator"), order.id).plan == order.plan
    )


def test_the_plan_is_the_one_the_optimizer_finds_on_a_fresh_calendar(portal: Portal) -> None:
    """Nothing else booked: the job's plan (database usage, own capacity given back, the
    current chains as baseline) proves the objective the optimizer proves for the same
    orders on a calendar built afresh from the network, warm-started by greedy."""
    for _ in range(3):
        booked_late(portal)
    job = optimized(portal)
    ours = jobs.job_result(portal.ctx, portal.principal("planner"), job)["plan"]
    backlog = open_backlog(portal.ctx).backlog
    network = portal.ctx.slots.network
    fresh = CapacityCalendar(network, backlog.as_of, days=400)
    theirs = optimize(network, fresh, backlog, time_limit=20)
    assert ours["status"] == theirs.status == "optimal"
    assert ours["assigned"] == theirs.assigned == 3
    assert ours["objective"] == pytest.approx(theirs.objective, rel=1e-6)


def test_a_running_optimization_stops_at_its_next_step_when_cancelled(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    booked_late(portal)
    who = portal.principal("planner")
    job = jobs.submit_optimize(portal.ctx, who, jobs.OptimizeJob(time_limit=5))
    read = replan_module.current_plan

    def cancelled_meanwhile(*args: Any) -> Any:
        jobs.cancel_job(portal.ctx, who, job.id)  # the planner cancels while it runs
        return read(*args)

    monkeypatch.setattr(replan_module, "current_plan", cancelled_meanwhile)
    assert JobRunner(portal.ctx, workers=1).run_next()
    stopped = jobs.get_job(portal.ctx, who, job.id)
    assert stopped.state is JobState.CANCELLED and stopped.done == 0


def test_with_no_open_orders_the_plan_says_there_is_nothing_to_move(portal: Portal) -> None:
    portal.enrolled()  # enrolled, not booked: not an open order a reschedule can move
    job = optimized(portal)
    document = jobs.job_result(portal.ctx, portal.principal("planner"), job)
    assert document["orders"] == 0 and document["moves"] == []
    page = portal.as_user("planner").get(f"/planner/jobs/{job}/plan")
    assert page.status_code == 200, page.text
    assert "No moves: every open order keeps the chain it is booked on." in page.text
    assert "Apply the selected moves" not in page.text
