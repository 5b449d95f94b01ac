"""The planner's workspace: start a scenario comparison, follow a job, read its answer.

Every planning computation runs as a background job (:mod:`cartnet.service.jobs`): a
form queues it, the job page shows its progress (htmx polls a fragment; without
JavaScript the page refreshes itself), the JSON of any finished job downloads here.
A comparison's result page shows the same headline, KPI tables and figures as
``cartnet compare --report``, drawn from the job's run document, with the standalone
report to download. The network's scenarios are listed side by side with what each
changes. Optimizations of the open orders and network designs have their own forms
and result pages (:mod:`cartnet.web.planner_optimize`, :mod:`cartnet.web.planner_design`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.roles import Role
from cartnet.report.twin_report import FIGURES
from cartnet.report.twin_summary import FLAG_NOTE, RunContext, headlines, kpi_tables
from cartnet.schedule.policies import policy_names
from cartnet.service import jobs
from cartnet.service.errors import NotFound, ServiceError
from cartnet.service.job_files import comparison_files, variant_networks
from cartnet.service.jobs import (
    CompareJob,
    DesignJob,
    JobKind,
    JobState,
    JobView,
    OptimizeJob,
    base_network,
)
from cartnet.web.events import status_of
from cartnet.web.page import FORM_ERROR, Page, field_errors, form_values, role_page

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
JobId = Path(max_length=64, pattern=IDENTIFIER)
AS_IT_IS = "-"
"""The form's value for the network without a scenario."""


RESULT_PAGES = {
    JobKind.COMPARE: "result",
    JobKind.OPTIMIZE: "plan",
    JobKind.DESIGN: "design",
}
"""The result page of each kind of job, under ``/planner/jobs/{id}/``."""


def _defaults() -> dict[str, Any]:
    fields = CompareJob.model_fields
    design = DesignJob.model_fields
    return {
        "replications": str(fields["replications"].default),
        "seed": str(fields["seed"].default),
        "horizon_days": f"{fields['horizon_days'].default:g}",
        "warmup_days": f"{fields['warmup_days'].default:g}",
        "scenarios": [],
        "policies": ["earliest"],
        "optimize_time_limit": f"{OptimizeJob.model_fields['time_limit'].default:g}",
        "design_instance": design["instance"].default,
        "design_scale": f"{design['scale'].default:g}",
        "design_objective": "",
        "design_time_limit": f"{design['time_limit'].default:g}",
        "design_simulate": str(design["simulate"].default),
        "design_seed": str(design["seed"].default),
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


async def workspace_page(
    page: Page, form: dict[str, Any], errors: dict[str, str], status: int
) -> Response:
    """The workspace with ``form`` values (over the defaults) and ``errors`` by field."""
    form = {**_defaults(), **form}
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
        max_time_limit=jobs.MAX_TIME_LIMIT,
        max_design_replications=jobs.MAX_DESIGN_REPLICATIONS,
    )


@router.get("/planner")
async def workspace(page: Planner) -> Response:
    """Start a comparison; the planner's jobs; the network's scenarios side by side."""
    return await workspace_page(page, {}, {}, 200)


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
        return await workspace_page(page, shown, field_errors(err), status_of(err))
    return queued_page(page, queued)


def queued_page(page: Page, queued: JobView) -> Response:
    """Wake this server's runner for the new job and go to its page."""
    runner = getattr(page.request.app.state, "jobs", None)
    if runner is not None:
        runner.wake()
    return page.redirect(f"/planner/jobs/{queued.id}")


@router.get("/planner/jobs/{job_id}")
async def job_page(page: Planner, job_id: str = JobId) -> Response:
    """The job's progress; it moves on by itself until the job ends."""
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    return page.render(
        "planner/job.html", job=job, JobState=JobState, result_page=RESULT_PAGES[job.kind]
    )


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


async def job_document(page: Page, job_id: str, kind: JobKind) -> tuple[JobView, dict[str, Any]]:
    """A finished job of the planner's of this kind and its result (404 for another kind)."""
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    if job.kind is not kind:
        raise NotFound(f"job {job_id} is a {job.kind.value} job, not a {kind.value} job")
    document = await page.call(jobs.job_result, page.ctx, page.principal, job_id)
    return job, document


async def _result(page: Page, job_id: str) -> tuple[JobView, dict[str, Any]]:
    return await job_document(page, job_id, JobKind.COMPARE)


@router.get("/planner/jobs/{job_id}/result")
async def result(page: Planner, job_id: str = JobId) -> Response:
    """The comparison's headline, key figures and figures, as the report shows them."""
    job = await page.call(jobs.get_job, page.ctx, page.principal, job_id)
    if job.kind is not JobKind.COMPARE:
        return page.redirect(f"/planner/jobs/{job_id}/{RESULT_PAGES[job.kind]}")
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
        flag_note=FLAG_NOTE,
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
    """The result document of any finished job, as the command line writes it."""
    document = await page.call(jobs.job_result, page.ctx, page.principal, job_id)
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


async def start_job(
    page: Page, prefix: str, model: type[BaseModel], submit: Callable[..., JobView]
) -> Response:
    """Queue the job of one workspace form (fields ``<prefix><parameter>``), or show the
    workspace again with the form's errors by field."""
    values = form_values(await page.form())
    given = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    try:
        job = model.model_validate(given)
        queued = await page.call(submit, page.ctx, page.principal, job)
    except (ValidationError, ServiceError) as err:
        errors = {k if k == FORM_ERROR else prefix + k: v for k, v in field_errors(err).items()}
        return await workspace_page(page, values, errors, status_of(err))
    return queued_page(page, queued)
