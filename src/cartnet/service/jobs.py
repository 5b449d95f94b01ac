"""Background jobs: what a planner asks the server to compute, and where it stands.

A job is a row (:class:`~cartnet.store.tables.JobRow`): who asked, what, with which
parameters, its state and progress, then its result or error. The use cases here
create, read and cancel jobs; :mod:`cartnet.service.job_runner` runs them. Only
planners start jobs; each planner sees their own, and planners share nothing secret
through them (results are network-level figures, never patient data).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update

from cartnet.ledger.roles import Role
from cartnet.network.catalog import open_network
from cartnet.network.model import Network
from cartnet.schedule.policies import policy_names
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Invalid, NotFound
from cartnet.store.tables import JobRow

PLANNERS = frozenset({Role.PLANNER})
MAX_REPLICATIONS = 200
"""Beyond this a comparison belongs on a Dask cluster from the command line."""


class JobKind(StrEnum):
    COMPARE = "compare"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """The server stopped while the job ran; its partial work is gone."""

    @property
    def is_final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class CompareJob(BaseModel):
    """A scenario comparison of the service's network, as ``cartnet compare`` runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: Annotated[list[str | None], Field(min_length=1, max_length=6)]
    """Scenario names of the network; ``None`` is the network as it is."""
    policies: Annotated[list[str], Field(min_length=1, max_length=4)] = ["earliest"]
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] = 20
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 2020
    horizon_days: Annotated[float, Field(gt=0, le=3650)] = 365.0
    warmup_days: Annotated[float, Field(ge=0, le=3650)] = 90.0

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        known = policy_names()
        unknown = [p for p in value if p not in known]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(known)}")
        return value

    @property
    def variants(self) -> int:
        return len(self.scenarios) * len(self.policies)

    def title(self) -> str:
        names = " vs ".join(s or "base" for s in self.scenarios)
        policies = f" ({', '.join(self.policies)})" if self.policies != ["earliest"] else ""
        return f"Compare {names}{policies}, {self.replications} replication(s)"


class JobView(BaseModel):
    """A job as its owner sees it."""

    id: str
    kind: JobKind
    title: str
    parameters: dict[str, Any]
    state: JobState
    done: int
    total: int
    message: str
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def share(self) -> float:
        """The share of the work done, 0 to 1."""
        return 1.0 if self.state is JobState.DONE else (self.done / self.total if self.total else 0)


def job_view(row: JobRow) -> JobView:
    return JobView(
        id=row.id,
        kind=JobKind(row.kind),
        title=row.title,
        parameters=row.parameters,
        state=JobState(row.state),
        done=row.done,
        total=row.total,
        message=row.message,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def base_network(ctx: ServiceContext) -> Network:
    """The service's network file without its scenario: the one comparisons vary."""
    return open_network(ctx.settings.network)


def submit_compare(ctx: ServiceContext, principal: Principal, job: CompareJob) -> JobView:
    """Queue a comparison; refuse scenarios the network does not have, by name."""
    principal.require(PLANNERS, "start planning jobs")
    known = {s.id for s in base_network(ctx).scenarios}
    for scenario in job.scenarios:
        if scenario is not None and scenario not in known:
            raise Invalid(
                f"the network has no scenario {scenario!r}; it has: {', '.join(sorted(known))}",
                field="scenarios",
            )
    if job.variants < 2:
        raise Invalid(
            "a comparison needs at least two variants: two scenarios or two policies",
            field="scenarios",
        )
    row = JobRow(
        id="job_" + secrets.token_hex(10),
        kind=JobKind.COMPARE.value,
        owner_id=principal.user_id,
        title=job.title(),
        parameters=job.model_dump(mode="json"),
        state=JobState.QUEUED.value,
        done=0,
        total=job.replications * job.variants,
        message="waiting for a free runner",
        cancel_requested=False,
        created_at=ctx.now(),
    )
    with ctx.transaction() as session:
        session.add(row)
        session.flush()
        return job_view(row)


def list_jobs(ctx: ServiceContext, principal: Principal, limit: int = 50) -> list[JobView]:
    """The planner's own jobs, newest first."""
    principal.require(PLANNERS, "see planning jobs")
    with ctx.reading() as session:
        rows = session.scalars(
            select(JobRow)
            .where(JobRow.owner_id == principal.user_id)
            .order_by(JobRow.created_at.desc(), JobRow.id)
            .limit(limit)
        )
        return [job_view(r) for r in rows]


def _own(session: Any, principal: Principal, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None or row.owner_id != principal.user_id:
        raise NotFound(f"no job {job_id!r} of yours")
    return row  # type: ignore[no-any-return]


def get_job(ctx: ServiceContext, principal: Principal, job_id: str) -> JobView:
    principal.require(PLANNERS, "see planning jobs")
    with ctx.reading() as session:
        return job_view(_own(session, principal, job_id))


def job_result(ctx: ServiceContext, principal: Principal, job_id: str) -> dict[str, Any]:
    """The result document of a finished job."""
    principal.require(PLANNERS, "see planning jobs")
    with ctx.reading() as session:
        row = _own(session, principal, job_id)
        if row.state != JobState.DONE or row.result is None:
            raise Conflict(f"job {job_id} is {row.state}; it has no result", code="job-not-done")
        return dict(row.result)


def cancel_job(ctx: ServiceContext, principal: Principal, job_id: str) -> JobView:
    """Stop a job: a queued one never starts, a running one stops at its next step."""
    principal.require(PLANNERS, "cancel planning jobs")
    with ctx.transaction() as session:
        row = _own(session, principal, job_id)
        state = JobState(row.state)
        if state.is_final:
            raise Conflict(f"job {job_id} is already {state.value}", code="job-finished")
        if state is JobState.QUEUED:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
                .values(
                    state=JobState.CANCELLED.value,
                    finished_at=ctx.now(),
                    message="cancelled before it started",
                )
            )
        else:
            row.cancel_requested = True
            row.message = "cancelling"
        session.flush()
        session.refresh(row)
        return job_view(row)
