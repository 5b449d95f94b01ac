"""The planner's workspace: a comparison from the form to its result page, bad input by
the field, cancelling, and nobody else's way in."""

from __future__ import annotations

import re

from tests.web.conftest import Portal

from cartnet.service import jobs
from cartnet.service.job_runner import JobRunner
from cartnet.service.jobs import JobState

QUICK = {"replications": "2", "seed": "11", "horizon_days": "60", "warmup_days": "10"}
COMPARE = {**QUICK, "scenarios": ["before-ema-2020", "after-ema-2020"], "policies": ["earliest"]}


def job_id(answer: object) -> str:
    location = answer.headers["location"]  # type: ignore[attr-defined]
    found = re.fullmatch(r"/planner/jobs/(job_\w+)", location)
    assert found is not None, location
    return found.group(1)


def test_a_comparison_from_the_form_to_its_result(portal: Portal) -> None:
    planner = portal.as_user("planner")
    home = planner.get("/planner")
    assert home.status_code == 200
    assert 'value="after-ema-2020"' in home.text and "No jobs yet." in home.text
    assert "remove approval" in home.text or "add approval" in home.text  # what scenarios change

    started = portal.post("planner", "/planner/compare", COMPARE)
    assert started.status_code == 303, started.text
    job = job_id(started)
    waiting = planner.get(f"/planner/jobs/{job}")
    assert "queued" in waiting.text and 'hx-trigger="every 1s"' in waiting.text
    assert 'http-equiv="refresh"' in waiting.text  # without JavaScript the page reloads

    assert JobRunner(portal.ctx, workers=1).run_next()
    polled = planner.get(f"/planner/jobs/{job}/progress", headers={"HX-Request": "true"})
    assert polled.headers.get("HX-Redirect") == f"/planner/jobs/{job}"  # ended: reload
    done = planner.get(f"/planner/jobs/{job}")
    assert f'href="/planner/jobs/{job}/result"' in done.text and "every 1s" not in done.text
    assert '<progress id="job-bar" max="4" value="4">' in done.text

    result = planner.get(f"/planner/jobs/{job}/result")
    assert result.status_code == 200, result.text
    text = result.text
    assert "after-ema-2020/earliest compared with before-ema-2020/earliest" in text
    assert "time to treatment" in text and "Time to treatment, mean (days)" in text
    for name in ("ttt", "utilization", "backlog", "lost", "flows"):
        assert f'src="/planner/jobs/{job}/figures/{name}.png"' in text
        png = planner.get(f"/planner/jobs/{job}/figures/{name}.png")
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    document = planner.get(f"/planner/jobs/{job}/result.json").json()
    assert document == jobs.job_result(portal.ctx, portal.principal("planner"), job)
    standalone = planner.get(f"/planner/jobs/{job}/report.html")
    assert "attachment" in standalone.headers["content-disposition"]
    assert standalone.text.startswith("<!DOCTYPE html>") and "Headline" in standalone.text
    assert planner.get(f"/planner/jobs/{job}/figures/secret.png").status_code == 404
    assert job in planner.get("/planner").text  # listed in the workspace


def test_bad_parameters_are_shown_by_the_field_and_queue_nothing(portal: Portal) -> None:
    one = portal.post("planner", "/planner/compare", {**COMPARE, "scenarios": ["after-ema-2020"]})
    assert one.status_code == 422
    assert 'id="e-scenarios"' in one.text and "at least two variants" in one.text
    many = portal.post("planner", "/planner/compare", {**COMPARE, "replications": "0"})
    assert many.status_code == 422 and 'id="e-replications"' in many.text
    assert 'value="0"' in many.text  # the form keeps what was typed
    bogus = portal.post("planner", "/planner/compare", {**COMPARE, "policies": ["fastest"]})
    assert bogus.status_code == 422 and "unknown policy" in bogus.text
    assert jobs.list_jobs(portal.ctx, portal.principal("planner")) == []


def test_a_job_can_be_cancelled_from_its_page(portal: Portal) -> None:
    job = job_id(portal.post("planner", "/planner/compare", COMPARE))
    cancelled = portal.post("planner", f"/planner/jobs/{job}/cancel")
    assert cancelled.status_code == 303
    page = portal.as_user("planner").get(f"/planner/jobs/{job}")
    assert "cancelled" in page.text and "Cancel the job" not in page.text
    state = jobs.get_job(portal.ctx, portal.principal("planner"), job).state
    assert state is JobState.CANCELLED
    assert portal.as_user("planner").get(f"/planner/jobs/{job}/result").status_code == 409


def test_only_planners_reach_the_workspace(portal: Portal) -> None:
    job = job_id(portal.post("planner", "/planner/compare", COMPARE))
    for user in ("coordinator", "operator", "qa", "logistics", "admin"):
        client = portal.as_user(user)
        for path in ("/planner", f"/planner/jobs/{job}", f"/planner/jobs/{job}/result.json"):
            assert client.get(path).status_code == 403, (user, path)
        assert portal.post(user, "/planner/compare", COMPARE).status_code == 403
    assert 'href="/planner"' in portal.as_user("planner").get("/orders").text
    assert 'href="/planner"' not in portal.as_user("qa").get("/qa").text
