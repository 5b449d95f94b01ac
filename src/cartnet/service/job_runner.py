"""Running background jobs inside ``cartnet serve``, or on a Dask cluster.

Each server process runs one :class:`JobRunner`: threads that claim queued jobs from
the database (an ``UPDATE … WHERE state = 'queued'`` that only one process can win),
run them, and write progress back. The twin's replications go to a process pool of
this machine, or to the Dask cluster the settings name (the twin's own executors: one
way to distribute, for the command line and the server alike). An optimization of the
open orders and a network design run in the runner's own thread (HiGHS), each within
its time limit, and report progress by step.

A job that stops with its server keeps its ``running`` row; any runner that finds
its heartbeat older than :data:`STALE` marks it ``interrupted``, so nothing is lost
silently. Cancelling sets a flag that the progress callback reads: queued batches are
dropped and the job ends ``cancelled``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from cartnet.executors import executor_for
from cartnet.schedule.policies import policy_factory
from cartnet.service.context import ServiceContext
from cartnet.service.design_job import run_design_job
from cartnet.service.job_files import comparison_files
from cartnet.service.jobs import (
    DESIGN_STEPS,
    OPTIMIZE_STEPS,
    CompareJob,
    DesignJob,
    JobKind,
    JobState,
    OptimizeJob,
    base_network,
)
from cartnet.service.replan import replan
from cartnet.store.tables import JobRow
from cartnet.twin.replications import Variant, run_variants
from cartnet.twin.results import VariantResult, run_document, unserved_warnings
from cartnet.twin.settings import TwinSettings

log = logging.getLogger(__name__)

HEARTBEAT = 5.0
"""Seconds between a running job's heartbeats (progress writes count as heartbeats)."""
STALE = timedelta(seconds=6 * HEARTBEAT)
"""A running job whose heartbeat is older than this has lost its server."""


class JobCancelled(Exception):  # noqa: N818 - a signal, not an error
    """The owner cancelled the job; raised from the progress callback to stop the run."""


class _Progress:
    """Progress callback of one job: writes done/total, reads the cancel flag."""

    def __init__(self, ctx: ServiceContext, job_id: str, interval: float = 0.5) -> None:
        self.ctx, self.job_id, self.interval = ctx, job_id, interval
        self.total = 0
        self._last = 0.0

    def __call__(
        self, done: int, total: int, message: str = "running replications", *, force: bool = False
    ) -> None:
        now = time.monotonic()
        self.total = total
        if not force and done < total and now - self._last < self.interval:
            return
        self._last = now
        with self.ctx.transaction() as session:
            row = session.get(JobRow, self.job_id)
            if row is None or row.cancel_requested:
                raise JobCancelled
            row.done, row.total, row.message = done, total, message
            row.heartbeat_at = self.ctx.now()


def run_compare(
    ctx: ServiceContext, params: dict[str, Any], progress: _Progress, runner: JobRunner
) -> dict[str, Any]:
    """The comparison's run document, exactly as ``cartnet compare --json`` writes it."""
    job = CompareJob.model_validate(params)
    base = base_network(ctx)
    variants = [
        Variant(f"{s or 'base'}/{p}", base.with_scenario(s), policy_factory(p))
        for s in job.scenarios
        for p in job.policies
    ]
    settings = TwinSettings(horizon_days=job.horizon_days, warmup_days=job.warmup_days)
    warnings = unserved_warnings([v.network for v in variants], settings)
    with executor_for(runner.workers, runner.scheduler) as executor:
        count = runner.workers or (1 if executor is None else os.cpu_count() or 2)
        aggregates = run_variants(
            variants, settings, job.replications, job.seed, executor, progress, workers=count
        )
    results = [VariantResult(v, a) for v, a in zip(variants, aggregates, strict=True)]
    document = run_document(base.name, results, settings, job.replications, job.seed, warnings)
    progress(progress.total, progress.total, "drawing the figures", force=True)
    try:  # drawn now so the result page opens at once; the page draws them if this fails
        comparison_files(progress.job_id, document, base)
    except Exception:
        log.exception("job %s: figures not drawn", progress.job_id)
    return document


def run_optimize(
    ctx: ServiceContext, params: dict[str, Any], progress: _Progress, runner: JobRunner
) -> dict[str, Any]:
    """The open orders planned again (``cartnet.replan/1``): the plan and its moves.

    Cancelling stops the job between its steps; the solver itself stops at the time
    limit.
    """
    job = OptimizeJob.model_validate(params)

    def step(done: int, message: str) -> None:
        progress(done, OPTIMIZE_STEPS, message, force=True)

    return replan(ctx, job.time_limit, step)


def run_design(
    ctx: ServiceContext, params: dict[str, Any], progress: _Progress, runner: JobRunner
) -> dict[str, Any]:
    """A network design (``cartnet design --json``), its report among the job's files."""
    job = DesignJob.model_validate(params)

    def step(done: int, message: str) -> None:
        progress(done, DESIGN_STEPS, message, force=True)

    return run_design_job(progress.job_id, job, step)


KINDS: dict[JobKind, Callable[[ServiceContext, dict[str, Any], _Progress, JobRunner], Any]] = {
    JobKind.COMPARE: run_compare,
    JobKind.OPTIMIZE: run_optimize,
    JobKind.DESIGN: run_design,
}


class JobRunner:
    """Claims and runs this server's share of the queued jobs."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        slots: int = 1,
        workers: int | None = None,
        scheduler: str | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.slots, self.workers, self.scheduler = slots, workers, scheduler
        self.poll_seconds = poll_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Mark jobs orphaned by a stopped server, then start the runner threads."""
        self.mark_interrupted()
        for i in range(self.slots):
            thread = threading.Thread(target=self._loop, name=f"cartnet-job-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.mark_interrupted()
                while not self._stop.is_set() and self.run_next():
                    pass
            except Exception:  # a database outage must not kill the runner thread
                log.exception("job runner: cannot reach the job table")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def mark_interrupted(self) -> int:
        """Running jobs whose server went away end ``interrupted``; how many."""
        now = self.ctx.now()
        stale = (JobRow.state == JobState.RUNNING.value, JobRow.heartbeat_at < now - STALE)
        with self.ctx.reading() as session:  # most polls find none: no write lock for them
            if session.scalar(select(JobRow.id).where(*stale).limit(1)) is None:
                return 0
        with self.ctx.transaction() as session:
            done = session.execute(
                update(JobRow)
                .where(*stale)
                .values(
                    state=JobState.INTERRUPTED.value,
                    finished_at=now,
                    message="the server stopped while the job ran; start it again",
                )
            )
            return int(getattr(done, "rowcount", 0) or 0)

    def _claim(self) -> tuple[str, JobKind, dict[str, Any]] | None:
        with self.ctx.reading() as session:  # as above: write only when there is work
            if (
                session.scalar(
                    select(JobRow.id).where(JobRow.state == JobState.QUEUED.value).limit(1)
                )
                is None
            ):
                return None
        with self.ctx.transaction() as session:
            queued = session.scalars(
                select(JobRow.id)
                .where(JobRow.state == JobState.QUEUED.value)
                .order_by(JobRow.created_at, JobRow.id)
                .limit(5)
            ).all()
            for job_id in queued:
                now = self.ctx.now()
                won = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
                    .values(
                        state=JobState.RUNNING.value,
                        runner=self.name,
                        started_at=now,
                        heartbeat_at=now,
                        message="starting",
                    )
                )
                if getattr(won, "rowcount", 0) == 1:
                    row = session.get(JobRow, job_id)
                    assert row is not None
                    return row.id, JobKind(row.kind), dict(row.parameters)
        return None

    def run_next(self) -> bool:
        """Run the oldest queued job to its end; False when none was waiting."""
        claimed = self._claim()
        if claimed is None:
            return False
        job_id, kind, parameters = claimed
        progress = _Progress(self.ctx, job_id)
        stop_beat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job_id, stop_beat), daemon=True)
        beat.start()
        try:
            result = KINDS[kind](self.ctx, parameters, progress, self)
        except JobCancelled:
            self._finish(job_id, JobState.CANCELLED, message="cancelled by its owner")
        except Exception as e:  # the job failed; the runner goes on with the next
            log.exception("job %s failed", job_id)
            error = f"{type(e).__name__}: {e}"
            self._finish(job_id, JobState.FAILED, message="failed", error=error)
        else:
            self._finish(job_id, JobState.DONE, message="done", result=result)
        finally:
            stop_beat.set()
            beat.join(HEARTBEAT)
        return True

    def _heartbeat(self, job_id: str, stop: threading.Event) -> None:
        """Keep a long silent step (report writing, a solver) from looking orphaned."""
        while not stop.wait(HEARTBEAT):
            try:
                with self.ctx.transaction() as session:
                    session.execute(
                        update(JobRow)
                        .where(JobRow.id == job_id, JobRow.state == JobState.RUNNING.value)
                        .values(heartbeat_at=self.ctx.now())
                    )
            except Exception:
                log.exception("job %s: heartbeat not written", job_id)

    def _finish(
        self,
        job_id: str,
        state: JobState,
        *,
        message: str,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        with self.ctx.transaction() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return
            row.state, row.message = state.value, message[:200]
            row.result, row.error = result, error
            row.finished_at = self.ctx.now()
            if state is JobState.DONE:
                row.done = row.total
