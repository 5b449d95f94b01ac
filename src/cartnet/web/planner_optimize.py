"""Optimizing the open orders from the workspace, and applying the plan's moves, signed.

The form queues an optimization job (:func:`cartnet.service.jobs.submit_optimize`);
its result page shows the plan's status as the optimizer proved it (optimal, or
feasible with its bound and gap), the objective against the current bookings, the
moves (order, from chain, to chain, days gained) with where each order stands now, and
the orders the plan leaves without a chain. The planner selects moves and signs with
their password; each selected move is a reschedule (:mod:`cartnet.service.plan_apply`),
and the answer lists what went and what was refused, and why.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.roles import Role
from cartnet.service import jobs, plan_apply
from cartnet.service.errors import ServiceError
from cartnet.service.jobs import JobKind, OptimizeJob
from cartnet.service.plan_apply import MEANING, PASSWORD_FIELD, Application
from cartnet.web.page import FORM_ERROR, Page, field_errors, role_page
from cartnet.web.planner import job_document, start_job

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
JobId = Path(max_length=64, pattern=IDENTIFIER)
PREFIX = "optimize_"
"""The optimization form's fields are ``optimize_<parameter>``."""


@router.post("/planner/optimize")
async def start_optimize(page: Planner) -> Response:
    """Queue an optimization of the open orders."""
    return await start_job(page, PREFIX, OptimizeJob, jobs.submit_optimize)


@router.get("/planner/jobs/{job_id}/plan")
async def plan(page: Planner, job_id: str = JobId) -> Response:
    """The plan: its status and proof, the moves to select and sign, the unassigned."""
    return await _plan_page(page, job_id, {}, None, 200)


@router.post("/planner/jobs/{job_id}/apply")
async def apply(page: Planner, job_id: str = JobId) -> Response:
    """Sign the selected moves and reschedule each order; the outcome of each move."""
    form = await page.form()
    selected = [o for o in form.getlist("moves") if isinstance(o, str)]
    password = form.get(PASSWORD_FIELD)
    try:
        done = await page.call(
            plan_apply.apply_moves,
            page.ctx,
            page.principal,
            job_id,
            selected,
            password if isinstance(password, str) else "",
        )
    except ServiceError as err:
        errors = field_errors(err)
        if "moves" in errors:
            errors = {FORM_ERROR: errors["moves"]}
        return await _plan_page(page, job_id, errors, None, err.status, selected)
    return await _plan_page(page, job_id, {}, done, 200)


async def _plan_page(
    page: Page,
    job_id: str,
    errors: dict[str, str],
    done: Application | None,
    status: int,
    selected: list[str] | None = None,
) -> Response:
    job, document = await job_document(page, job_id, JobKind.OPTIMIZE)
    moves: list[dict[str, Any]] = document["moves"]
    states = await page.call(plan_apply.move_states, page.ctx, page.principal, moves)
    signed = await page.call(plan_apply.applications, page.ctx, page.principal, job_id)
    return page.render(
        "planner/plan.html",
        status=status,
        job=job,
        document=document,
        plan=document["plan"],
        moves=moves,
        states=states,
        signed=signed,
        done=done,
        selected=set(selected or []),
        meaning=MEANING,
        errors=errors,
    )
