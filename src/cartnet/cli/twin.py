"""``cartnet simulate`` and ``cartnet compare``: the network twin from the command line."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cartnet.cli.common import (
    POLICY_HELP,
    SCENARIO_HELP,
    err,
    fail,
    load,
    option_message,
    out,
    print_json,
    reachable,
)
from cartnet.cli.numbers import estimate, plural
from cartnet.cli.outputs import check_output, staged
from cartnet.executors import executor_for
from cartnet.network import Network
from cartnet.report.twin_summary import CLIPPED, CLIPPED_NOTE, FLAG_NOTE
from cartnet.schedule.policies import policy_factory, policy_names
from cartnet.twin.replications import Variant, run_variants
from cartnet.twin.results import VariantResult, run_document, unserved_warnings
from cartnet.twin.settings import TwinSettings

NetworkArg = Annotated[
    str, typer.Argument(help="A packaged network name (kymriah-2020) or a YAML file.")
]
Horizon = Annotated[float, typer.Option("--horizon-days", help="Simulated days after the start.")]
Warmup = Annotated[float, typer.Option("--warmup-days", help="Days left out of the statistics.")]
Reps = Annotated[int, typer.Option("--replications", "-n", min=1, help="Monte Carlo replications.")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Seed of the random numbers.")]
Workers = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=1024, help="Worker processes (default: all cores)."),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run on a Dask cluster, e.g. tcp://10.0.0.5:8786."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the run document as JSON.")]
Report = Annotated[
    Path | None, typer.Option("--report", help="Write an offline HTML report (and PNGs).")
]
Hazard = Annotated[
    float | None,
    typer.Option("--loss-hazard", min=0, help="Daily probability of losing a waiting patient."),
]

CallAhead = Annotated[
    float | None,
    typer.Option(
        "--call-ahead",
        min=0,
        help="Patients a site calls forward per line beyond its free lines "
        "(default: enough for a 3-day lead time; 0 with --apheresis-days 0 makes a "
        "site with instant lanes an M/M/c queue).",
    ),
]
ApheresisDays = Annotated[
    float | None,
    typer.Option(
        "--apheresis-days",
        min=0,
        help="Days from apheresis until the material ships (default 1): the center's "
        "part of the lead time.",
    ),
]

SETTING_OPTIONS = {
    "horizon_days": "--horizon-days",
    "warmup_days": "--warmup-days",
    "loss_hazard_per_day": "--loss-hazard",
    "call_ahead_per_line": "--call-ahead",
    "apheresis_days": "--apheresis-days",
}


def _settings(
    horizon: float,
    warmup: float,
    hazard: float | None,
    call_ahead: float | None = None,
    apheresis_days: float | None = None,
) -> TwinSettings:
    if math.isfinite(horizon) and math.isfinite(warmup) and 0 < horizon <= warmup:
        fail(f"--warmup-days: {warmup:g} days must be shorter than --horizon-days ({horizon:g})")
    values: dict[str, Any] = {"horizon_days": horizon, "warmup_days": warmup}
    if hazard is not None:
        values["loss_hazard_per_day"] = hazard
    if call_ahead is not None:
        values["call_ahead_per_line"] = call_ahead
    if apheresis_days is not None:
        values["apheresis_days"] = apheresis_days
    try:
        return TwinSettings(**values)
    except ValidationError as e:
        fail("; ".join(option_message(x, SETTING_OPTIONS) for x in e.errors()))


def _check_policies(policies: list[str]) -> None:
    known = policy_names()
    for p in policies:
        if p not in known:
            fail(f"--policy: unknown policy {p!r} (known: {', '.join(known)})")


def _warnings(networks: list[Network], settings: TwinSettings) -> list[str]:
    found = unserved_warnings(networks, settings)
    for w in found:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    return found


def _execute(
    name: str,
    variants: list[Variant],
    settings: TwinSettings,
    replications: int,
    seed: int,
    workers: int | None,
    scheduler: str | None,
    as_json: bool,
    report: Path | None,
) -> dict[str, Any]:
    if report is not None:
        check_output(report, "--report", (".html",))
    if scheduler:
        reachable(scheduler)
    warnings = _warnings([v.network for v in variants], settings)
    began = time.perf_counter()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("replications", total=replications * len(variants))

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done)

        try:
            with executor_for(workers, scheduler) as executor:
                count = workers or (1 if executor is None else 2)
                aggregates = run_variants(
                    variants, settings, replications, seed, executor, advance, workers=count
                )
        except (OSError, RuntimeError, TimeoutError) as e:
            fail(f"could not run the replications: {e}")
    elapsed = time.perf_counter() - began
    results = [VariantResult(v, a) for v, a in zip(variants, aggregates, strict=True)]
    document = run_document(name, results, settings, replications, seed, warnings)
    document["wall_seconds"] = round(elapsed, 3)
    if report is not None:
        from cartnet.report.twin_report import write_report

        with staged(report) as tmp:
            written = write_report(document, {v.label: v.network for v in variants}, tmp)
        names = ", ".join(str(report.with_name(p.name)) for p in written)
        err.print(f"report written to {names}", highlight=False)
    if as_json:
        print_json(document)
    else:
        _print_tables(document)
    return document


KEY_FIGURES = (
    ("ttt.mean", "time to treatment, mean d"),
    ("ttt.p90", "time to treatment, p90 d"),
    ("v2v.mean", "vein-to-vein, mean d"),
    ("turnaround.mean", "turnaround (apheresis → delivery), mean d"),
    ("importation.mean", "import testing + QP certification, mean d"),
    ("slot_wait.mean", "waiting for a slot, mean d"),
    ("slot_wait.p90", "waiting for a slot, p90 d"),
    ("treated_per_year", "treated per year"),
    ("lost_per_year", "lost while waiting per year"),
    ("lost_share", "share lost"),
    ("in_system", "still in the pipeline at the end"),
    ("not_infused_share", "apheresed, not infused"),
    ("cross_border_share", "cross-border shipments"),
    ("cost_per_therapy", "lane cost per therapy"),
)


def _fmt(e: dict[str, Any], key: str, difference: bool = False) -> str:
    """A KPI cell: shares (and utilization) as %, intervals of levels clipped at 0, flagged
    estimates marked (see :func:`cartnet.cli.numbers.estimate`)."""
    share = key.endswith("_share") or key.startswith("site.")
    return estimate(e, share=share, non_negative=not difference)


def _groups(document: dict[str, Any]) -> list[str]:
    keys = document["variants"][0]["kpis"]
    markets = sorted({k.split(".")[0] for k in keys if k.endswith(".enrolled")} - {"all"})
    return ["all", *markets]


def _print_tables(document: dict[str, Any]) -> None:
    labels = [v["label"] for v in document["variants"]]
    clipped = False
    for group in _groups(document):
        table = Table(
            title=f"{'All markets' if group == 'all' else 'Market ' + group}: mean [95% CI] "
            f"over {plural(document['replications'], 'replication')}",
            title_justify="left",
        )
        table.add_column("figure")
        for label in labels:
            table.add_column(label, justify="right", overflow="fold")
        for d in document["differences"]:
            table.add_column(f"Δ {d['variant']}", justify="right", overflow="fold")
        for key, title in KEY_FIGURES:
            full = f"{group}.{key}"
            cells = [_fmt(v["kpis"].get(full, {}), full) for v in document["variants"]]
            cells += [_fmt(d["kpis"].get(full, {}), full, True) for d in document["differences"]]
            clipped |= any(CLIPPED in c for c in cells)
            table.add_row(title, *cells)
        out.print(table)
    sites = Table(title="Line utilization after warm-up", title_justify="left")
    sites.add_column("site")
    for label in labels:
        sites.add_column(label, justify="right")
    site_keys = sorted(
        {k for v in document["variants"] for k in v["kpis"] if k.startswith("site.")}
    )
    for key in site_keys:
        sites.add_row(
            key.split(".")[1],
            *(cells := [_fmt(v["kpis"].get(key, {}), key) for v in document["variants"]]),
        )
        clipped |= any(CLIPPED in c for c in cells)
    out.print(sites)
    flagged = [e for part in ("variants", "differences") for v in document[part]
               for e in v["kpis"].values() if e.get("flag")]  # fmt: skip
    if flagged:
        out.print(f"[dim]{FLAG_NOTE}[/]", highlight=False)
    if clipped:
        out.print(f"[dim]{CLIPPED_NOTE}[/]")
    out.print(
        f"[dim]{plural(document['replications'], 'replication')}, seed {document['seed']}, "
        f"{document['wall_seconds']:.1f} s; figures rest on the network file's assumptions[/]"
    )


def simulate(
    network: NetworkArg,
    scenario: Annotated[str | None, typer.Option("--scenario", "-s", help=SCENARIO_HELP)] = None,
    policy: Annotated[str, typer.Option("--policy", "-p", help=POLICY_HELP)] = "earliest",
    horizon_days: Horizon = 365.0,
    warmup_days: Warmup = 90.0,
    replications: Reps = 20,
    seed: Seed = 2020,
    workers: Workers = None,
    scheduler: Scheduler = None,
    loss_hazard: Hazard = None,
    call_ahead: CallAhead = None,
    apheresis_days: ApheresisDays = None,
    as_json: Json = False,
    report: Report = None,
) -> None:
    """Simulate every order through the network, many times over."""
    settings = _settings(horizon_days, warmup_days, loss_hazard, call_ahead, apheresis_days)
    _check_policies([policy])
    net = load(network, scenario)
    variant = Variant(f"{scenario or 'base'}/{policy}", net, policy_factory(policy))
    _execute(
        net.name, [variant], settings, replications, seed, workers,
        scheduler, as_json, report,
    )  # fmt: skip


def compare(
    network: NetworkArg,
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help=SCENARIO_HELP + " Repeat for each.")
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help=POLICY_HELP + " Repeat for each policy."),
    ] = None,
    horizon_days: Horizon = 365.0,
    warmup_days: Warmup = 90.0,
    replications: Reps = 20,
    seed: Seed = 2020,
    workers: Workers = None,
    scheduler: Scheduler = None,
    loss_hazard: Hazard = None,
    call_ahead: CallAhead = None,
    apheresis_days: ApheresisDays = None,
    as_json: Json = False,
    report: Report = None,
) -> None:
    """Compare scenarios and policies on common random numbers; differences with 95% CIs."""
    scenarios = scenario or [None]  # type: ignore[list-item]
    policies = policy or ["earliest"]
    if len(scenarios) * len(policies) < 2:
        fail("compare needs at least two variants: give two --scenario or two --policy options")
    settings = _settings(horizon_days, warmup_days, loss_hazard, call_ahead, apheresis_days)
    _check_policies(policies)
    variants = []
    for s in scenarios:
        net = load(network, s)
        for p in policies:
            variants.append(Variant(f"{s or 'base'}/{p}", net, policy_factory(p)))
    _execute(
        variants[0].network.name, variants, settings, replications, seed, workers, scheduler,
        as_json, report,
    )  # fmt: skip
