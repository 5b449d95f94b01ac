"""Planning jobs: queued by a planner, run by the server's runner, cancelled, or found
interrupted after a restart; a comparison's result is the command line's, figure for figure."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.api.conftest import PASSWORD, make_users, settings_for

from cartnet.ledger.roles import Role
from cartnet.service import accounts, jobs
from cartnet.service.access import Principal
from cartnet.service.accounts import check_credentials
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Conflict, Forbidden, Invalid, NotFound
from cartnet.service.job_runner import JobRunner
from cartnet.service.jobs import CompareJob, JobState
from cartnet.service.schemas import NewUser
from cartnet.store.tables import JobRow

QUICK = {"replications": 2, "horizon_days": 60.0, "warmup_days": 10.0, "seed": 11}
SCENARIOS = ["before-ema-2020", "after-ema-2020"]


@pytest.fixture
def ctx(migrated_url: str) -> Iterator[ServiceContext]:
    context = ServiceContext.open(settings_for(migrated_url), migrate=False)
    make_users(context)
    yield context
    context.close()


def planner(ctx: ServiceContext, username: str = "planner") -> Principal:
    return check_credentials(ctx, username, PASSWORD)


def test_a_comparison_job_gives_the_command_lines_figures(ctx: ServiceContext) -> None:
    who = planner(ctx)
    job = jobs.submit_compare(ctx, who, CompareJob(scenarios=SCENARIOS, **QUICK))
    assert job.state is JobState.QUEUED and job.total == 4 and job.share == 0
    runner = JobRunner(ctx, workers=1)
    assert runner.run_next() and not runner.run_next()  # one job, then an empty queue
    done = jobs.get_job(ctx, who, job.id)
    assert done.state is JobState.DONE and done.done == done.total == 4
    ours = jobs.job_result(ctx, who, job.id)

    cli = subprocess.run(
        [sys.executable, "-c", "from cartnet.cli import main; main()", "compare", "kymriah-2020"]
        + [arg for s in SCENARIOS for arg in ("-s", s)]
        + ["-n", "2", "--horizon-days", "60", "--warmup-days", "10", "--seed", "11"]
        + ["--workers", "1", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(cli.stdout)
    theirs.pop("wall_seconds")
    labels = [v["label"] for v in ours["variants"]]
    assert labels == ["before-ema-2020/earliest", "after-ema-2020/earliest"]
    assert ours == theirs
    assert ours["differences"][0]["kpis"]["EU.ttt.mean"]["n"] == 2


def test_only_the_owner_planner_sees_and_runs_jobs(ctx: ServiceContext) -> None:
    job = jobs.submit_compare(ctx, planner(ctx), CompareJob(scenarios=SCENARIOS, **QUICK))
    qa = check_credentials(ctx, "qa", PASSWORD)
    with pytest.raises(Forbidden):
        jobs.submit_compare(ctx, qa, CompareJob(scenarios=SCENARIOS, **QUICK))
    with pytest.raises(Forbidden):
        jobs.get_job(ctx, qa, job.id)
    accounts.create_user(
        ctx,
        accounts.SYSTEM,
        NewUser(
            username="planner2", printed_name="Paul Second", password=PASSWORD, role=Role.PLANNER
        ),
    )
    other = planner(ctx, "planner2")
    with pytest.raises(NotFound):
        jobs.get_job(ctx, other, job.id)
    with pytest.raises(NotFound):
        jobs.cancel_job(ctx, other, job.id)
    assert jobs.list_jobs(ctx, other) == []
    with pytest.raises(Conflict, match="queued; it has no result"):
        jobs.job_result(ctx, planner(ctx), job.id)
    with pytest.raises(NotFound):
        jobs.get_job(ctx, planner(ctx), "job_unknown")


def test_bad_parameters_are_refused_by_field(ctx: ServiceContext) -> None:
    who = planner(ctx)
    with pytest.raises(Invalid, match="no scenario 'after-2030'") as unknown:
        jobs.submit_compare(ctx, who, CompareJob(scenarios=["after-2030", None], **QUICK))
    assert unknown.value.field == "scenarios"
    with pytest.raises(Invalid, match="at least two variants"):
        jobs.submit_compare(ctx, who, CompareJob(scenarios=[None], **QUICK))
    with pytest.raises(ValueError, match="unknown policy 'fastest'"):
        CompareJob(scenarios=SCENARIOS, policies=["fastest"])
    with pytest.raises(ValueError, match="less than or equal to 200"):
        CompareJob(scenarios=SCENARIOS, replications=201)
    assert jobs.list_jobs(ctx, who) == []  # nothing was queued


def test_a_queued_job_cancelled_never_runs(ctx: ServiceContext) -> None:
    who = planner(ctx)
    job = jobs.submit_compare(ctx, who, CompareJob(scenarios=SCENARIOS, **QUICK))
    assert jobs.cancel_job(ctx, who, job.id).state is JobState.CANCELLED
    assert not JobRunner(ctx, workers=1).run_next()
    with pytest.raises(Conflict, match="already cancelled"):
        jobs.cancel_job(ctx, who, job.id)


def test_a_running_job_stops_when_cancelled(ctx: ServiceContext) -> None:
    who = planner(ctx)
    long = CompareJob(scenarios=SCENARIOS, replications=200, horizon_days=365.0, seed=3)
    job = jobs.submit_compare(ctx, who, long)
    runner = JobRunner(ctx, workers=1)
    worker = threading.Thread(target=runner.run_next)
    worker.start()
    deadline = time.monotonic() + 60
    while jobs.get_job(ctx, who, job.id).done == 0:
        assert time.monotonic() < deadline, "the job never reported progress"
        time.sleep(0.1)
    assert jobs.get_job(ctx, who, job.id).state is JobState.RUNNING
    jobs.cancel_job(ctx, who, job.id)
    worker.join(60)
    assert not worker.is_alive()
    stopped = jobs.get_job(ctx, who, job.id)
    assert stopped.state is JobState.CANCELLED and stopped.done < stopped.total
    with pytest.raises(Conflict):
        jobs.job_result(ctx, who, job.id)


def test_a_job_whose_server_stopped_is_marked_interrupted(ctx: ServiceContext) -> None:
    who = planner(ctx)
    job = jobs.submit_compare(ctx, who, CompareJob(scenarios=SCENARIOS, **QUICK))
    with ctx.transaction() as session:  # claimed by a server that then died
        row = session.get(JobRow, job.id)
        assert row is not None
        row.state, row.runner = JobState.RUNNING.value, "gone:1"
        row.heartbeat_at = ctx.now() - timedelta(minutes=5)
    fresh = jobs.submit_compare(ctx, who, CompareJob(scenarios=SCENARIOS, **QUICK))
    with ctx.transaction() as session:  # one still beating is left alone
        row = session.get(JobRow, fresh.id)
        assert row is not None
        row.state, row.heartbeat_at = JobState.RUNNING.value, ctx.now()
    assert JobRunner(ctx).mark_interrupted() == 1
    lost = jobs.get_job(ctx, who, job.id)
    assert lost.state is JobState.INTERRUPTED and "start it again" in lost.message
    assert jobs.get_job(ctx, who, fresh.id).state is JobState.RUNNING
    assert [j.id for j in jobs.list_jobs(ctx, who)] == [fresh.id, job.id]
