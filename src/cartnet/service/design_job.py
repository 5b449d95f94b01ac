"""A network design as a planner's background job: ``cartnet design`` from a form.

The instance is a built-in one (the packaged kymriah-2020 network with its demand
grown, or the iShipment benchmark at a number of patients a year), solved by
:func:`cartnet.design.solve.solve_design` with the form's objective and time limit,
and checked in the twin when replications are asked for. The result document is the
command line's ``--json`` (``cartnet.design-result/1`` with ``twin_check``); the
standalone report (plotly figures) is written into the job's files as the job ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cartnet.design.ishipment import ishipment_instance
from cartnet.design.kymriah import kymriah_instance
from cartnet.design.model import DesignInput
from cartnet.design.solve import solve_design
from cartnet.design.twin_check import twin_check
from cartnet.report.design_report import write_design_report
from cartnet.service.job_files import CACHE
from cartnet.service.jobs import DesignJob
from cartnet.twin.settings import TwinSettings

REPORT = "design-report.html"


def design_input(job: DesignJob) -> DesignInput:
    """The built-in design instance the job names."""
    if job.instance == "ishipment":
        return ishipment_instance(job.scale)
    return kymriah_instance(job.scale)


def report_path(job_id: str) -> Path:
    """Where a design job's standalone report is kept on this machine."""
    return CACHE / job_id / REPORT


def run_design_job(
    job_id: str, job: DesignJob, progress: Callable[[int, str], None]
) -> dict[str, Any]:
    """Solve, check in the twin if asked, write the report; the result document."""
    progress(0, "solving the design")
    design = design_input(job)
    result = solve_design(design, objective=job.objective, time_limit=job.time_limit)
    check = None
    if job.simulate and result.sites:
        progress(1, f"checking the design in the twin, {job.simulate} replication(s)")
        settings = TwinSettings(
            horizon_days=365.0, warmup_days=90.0, apheresis_days=design.durations.apheresis_days
        )
        check = twin_check(design, result, replications=job.simulate, seed=job.seed,
                           settings=settings)  # fmt: skip
    progress(2, "writing the report")
    path = report_path(job_id)
    partial = path.with_name("design-report.partial.html")
    write_design_report(design, result, check, partial)
    partial.replace(path)
    document = result.as_dict()
    document["instance"] = job.name
    document["twin_check"] = None if check is None else check.as_dict()
    return document
