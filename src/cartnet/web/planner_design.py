"""A network design from the workspace: the form, the result page, the standalone report.

The form queues a design job (:mod:`cartnet.service.design_job`) on a built-in
instance; the result page shows the solver's verdict (status, objective, bound, gap),
the chosen sites, the cost per therapy and, when asked for, the twin check beside the
model's figures, as the design report's tables. The report's interactive figures
(map, costs, line use) are in the standalone report, which downloads from here; the
portal's pages run no inline script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.roles import Role
from cartnet.service import jobs
from cartnet.service.design_job import report_path
from cartnet.service.errors import NotFound
from cartnet.service.jobs import DesignJob, JobKind
from cartnet.web.page import Page, role_page
from cartnet.web.planner import job_document, start_job

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
JobId = Path(max_length=64, pattern=IDENTIFIER)
PREFIX = "design_"
"""The design form's fields are ``design_<parameter>`` (the workspace has several forms)."""


@router.post("/planner/design")
async def start_design(page: Planner) -> Response:
    """Queue a network design."""
    return await start_job(page, PREFIX, DesignJob, jobs.submit_design)


@router.get("/planner/jobs/{job_id}/design")
async def design(page: Planner, job_id: str = JobId) -> Response:
    """The design's verdict, sites, costs and twin check."""
    job, document = await job_document(page, job_id, JobKind.DESIGN)
    check = document.get("twin_check")
    labels = [v["label"] for v in check["run"]["variants"]] if check else []
    return page.render(
        "planner/design.html", job=job, document=document, check=check, labels=labels
    )


@router.get("/planner/jobs/{job_id}/design-report.html")
async def design_report(page: Planner, job_id: str = JobId) -> Response:
    job, _ = await job_document(page, job_id, JobKind.DESIGN)
    path = report_path(job.id)
    if not path.exists():
        raise NotFound(
            f"the report of {job_id} is not on this server (its files were cleared); "
            "start the design again for a new one"
        )
    return FileResponse(
        path,
        media_type="text/html",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-design.html"'},
    )
