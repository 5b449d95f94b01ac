"""The planner's workspace: start a scenario comparison, follow it, read its answer.

A comparison runs as a background job (:mod:`cartnet.service.jobs`): the form queues
it, the job page shows its progress (htmx polls a fragment; without JavaScript the
page refreshes itself), and the result page shows the same headline, KPI tables and
figures as ``cartnet compare --report``, drawn from the job's run document, with the
JSON and the standalone report to download. The network's scenarios are listed side by
side with what each changes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.roles import Role
from cartnet.report.twin_report import FIGURES
from cartnet.report.twin_summary import RunContext, headlines, kpi_tables
from cartnet.schedule.policies import policy_names
from cartnet.service import jobs
from cartnet.service.errors import NotFound, ServiceError
from cartnet.service.job_files import comparison_files, variant_networks
from cartnet.service.jobs import CompareJob, JobState, JobView, base_network
from cartnet.web.events import status_of
from cartnet.web.page import Page, field_errors, form_values, role_page

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
JobId = Path(max_length=64, pattern=IDENTIFIER)
AS_IT_IS = "-"
"""The form's value for the network without a scenario."""


def _defaults() -> dict[str, Any]:
    fields = CompareJob.model_fields
    return {
        "replications": str(fields["replications"].default),
        "seed": str(fields["seed"].default),
        "horizon_days": f"{fields['horizon_days'].default:g}",
        "warmup_days": f"{fields['warmup_days'].default:g}",
        "scenarios": [],
        "policies": ["earliest"],
    }


FIGURE_CAPTIONS = {
    "ttt": "Time to treatment (enrolment to infusion), share of patients by day",
    "utilization": "Line utilization per site and week",
    "backlog": "Patients waiting for a slot over time",
    "lost": "Patients lost per year, by market",
    "flows": "Where patients are made: flows from centers to sites",
}


def _change(change: Any) -> tuple[str, str]:
    """A scenario change as a reader sees it: what it does, and to what."""
    values = change.model_dump(mode="json", exclude={"op"}, exclude_none=True)
    detail = "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items() if v not in ([], {}))
    return change.op.replace("_", " "), detail


async def _workspace(
    page: Page, form: dict[str, Any], errors: dict[str, str], status: int
) -> Response:
    network = base_network(page.ctx)
    return page.render(
        "planner/workspace.html",
        status=status,
        base=network,
        scenarios=network.scenarios,
        scenario_changes=[(s, [_change(c) for c in s.changes]) for s in network.scenarios],
        policies=policy_names(),
        as_it_is=AS_IT_IS,
        jobs=await page.call(jobs.list_jobs, page.ctx, page.principal),
        form=form,
        errors=errors,
        max_replications=jobs.MAX_REPLICATIONS,
    )


@router.get("/planner")
async def workspace(page: Planner) -> Response:
    """Start a comparison; the planner's jobs; the network's scenarios side by side."""
    return await _workspace(page, _defaults(), {}, 200)


@router.post("/planner/compare")
async def start_compare(page: Planner) -> Response:
    form = await page.form()
    values = form_values(form)
    chosen = {
        "scenarios": [s for s in form.getlist("scenarios") if isinstance(s, str)],
        "policies": [p for p in form.getlist("policies") if isinstance(p, str)],
    }
    try:
        job = CompareJob.model_validate(
            {
                "scenarios": [None if s == AS_IT_IS else s for s in chosen["scenarios"]],
                "policies": chosen["policies"],
                "replications": values.get("replications"),
                "seed": values.get("seed"),
                "horizon_days": values.get("horizon_days"),
                "warmup_days": values.get("warmup_days"),
            }
        )
        queued = await page.call(jobs.submit_compare, page.ctx, page.principal, job)
    except (ValidationError, ServiceError) as err:
        shown = {**values, **chosen}
        return await _workspace(page, shown, field_errors(err), status_of(err))
    runner = getattr(page.request.app.state, "jobs", None)
    if runner is not None:
        runner.wake()
    return page.redirect(f"/planner/jobs/{queued.id}")


@router.get("/planner/jobs/{job_id}")
async def job_page(page: Planner, job_id: str = JobId) -> Response:
    """The job's progress; it moves on by itself until the job ends."""
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    return page.render("planner/job.html", job=job, JobState=JobState)


@router.get("/planner/jobs/{job_id}/progress")
async def job_progress(page: Planner, job_id: str = JobId) -> Response:
    """The progress fragment htmx polls; once the job ends, the page is reloaded."""
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    if job.state.is_final and page.request.headers.get("HX-Request"):
        return page.redirect(f"/planner/jobs/{job_id}")
    return page.render("planner/_progress.html", job=job, JobState=JobState)


@router.post("/planner/jobs/{job_id}/cancel")
async def cancel(page: Planner, job_id: str = JobId) -> Response:
    await page.form()
    await page.call(jobs.cancel_job, page.ctx, page.principal, job_id)
    return page.redirect(f"/planner/jobs/{job_id}")


async def _result(page: Page, job_id: str) -> tuple[JobView, dict[str, Any]]:
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    document = await page.call(jobs.job_result, page.ctx, page.principal, job_id)
    return job, document


@router.get("/planner/jobs/{job_id}/result")
async def result(page: Planner, job_id: str = JobId) -> Response:
    """The comparison's headline, key figures and figures, as the report shows them."""
    job, document = await _result(page, job_id)
    base = base_network(page.ctx)
    run = RunContext(document, variant_networks(base, document))
    await page.call(comparison_files, job.id, document, base)
    return page.render(
        "planner/result.html",
        job=job,
        document=document,
        headlines=headlines(run),
        tables=kpi_tables(run),
        figures=[(name, FIGURE_CAPTIONS.get(name, name)) for name in FIGURES],
    )


@router.get("/planner/jobs/{job_id}/figures/{name}.png")
async def figure(page: Planner, name: str, job_id: str = JobId) -> Response:
    job, document = await _result(page, job_id)
    if name not in FIGURES:
        raise NotFound(f"no figure {name!r}; figures: {', '.join(FIGURES)}")
    folder = await page.call(comparison_files, job.id, document, base_network(page.ctx))
    return FileResponse(folder / f"{name}.png", media_type="image/png")


@router.get("/planner/jobs/{job_id}/result.json")
async def result_json(page: Planner, job_id: str = JobId) -> Response:
    _, document = await _result(page, job_id)
    return Response(
        json.dumps(document, indent=1),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{job_id}.json"'},
    )


@router.get("/planner/jobs/{job_id}/report.html")
async def report(page: Planner, job_id: str = JobId) -> Response:
    job, document = await _result(page, job_id)
    folder = await page.call(comparison_files, job.id, document, base_network(page.ctx))
    return FileResponse(
        folder / "report.html",
        media_type="text/html",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-report.html"'},
    )
