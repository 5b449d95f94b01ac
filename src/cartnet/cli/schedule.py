"""``cartnet offers`` and ``cartnet optimize``: slot chains for one order, plans for a backlog."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cartnet.cli.common import SCENARIO_HELP, err, fail, load, out, parse_date, print_json
from cartnet.cli.outputs import check_output, write_text
from cartnet.network import Scope
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.offers import OfferPlanner, OfferRequest

NetworkArg = Annotated[
    str, typer.Argument(help="A packaged network name (kymriah-2020) or a YAML file.")
]


def offers(
    network: NetworkArg,
    center: Annotated[str, typer.Option("--center", "-c", help="Treatment center id.")],
    product: Annotated[
        str | None, typer.Option("--product", help="Product id (default: the only product).")
    ] = None,
    scope: Annotated[Scope, typer.Option("--scope", help="commercial or clinical.")] = (
        Scope.COMMERCIAL
    ),
    trial: Annotated[str | None, typer.Option("--trial", help="Trial id (clinical).")] = None,
    earliest_apheresis: Annotated[
        str | None,
        typer.Option("--earliest-apheresis", help="YYYY-MM-DD; default: the reference date."),
    ] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", "-s", help=SCENARIO_HELP)] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many chains to list.")] = 5,
    per_site: Annotated[int, typer.Option("--per-site", min=1, help="Chains per site.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The best slot chains for one order, and why every other site is excluded."""
    net = load(network, scenario)
    if product is None:
        if len(net.products) != 1:
            fail(f"--product is needed: the network has {len(net.products)} products")
        product = net.products[0].id
    try:
        net.center(center)
    except KeyError as e:
        fail(f"--center: {e.args[0]}")
    try:
        net.product(product)
    except KeyError as e:
        fail(f"--product: {e.args[0]}")
    if scope is Scope.CLINICAL and not trial:
        fail("--trial is needed for a clinical patient")
    earliest = parse_date(earliest_apheresis, "--earliest-apheresis") or net.reference_date
    calendar = CapacityCalendar(net, min(earliest, net.reference_date), days=730)
    try:
        result = OfferPlanner(net, calendar).offers(
            OfferRequest(center, product, earliest, scope, trial), k=k, per_site=per_site
        )
    except ValueError as e:
        fail(str(e))
    if as_json:
        print_json(
            {
                "schema": "cartnet.offers/1",
                "network": net.name,
                "scenario": net.applied_scenario,
                "center": center,
                "market": result.market,
                "product": product,
                "scope": scope.value,
                "trial": trial,
                "earliest_apheresis": earliest.isoformat(),
                "chains": [c.as_dict() for c in result.chains],
                "excluded": [e.as_dict() for e in result.excluded],
            }
        )
        return
    c = net.center(center)
    out.print(
        f"[bold]{c.name}[/] ({c.city}, market {result.market}) · {product} {scope.value}"
        + (f" ({trial})" if trial else "")
        + f" · apheresis from {earliest}"
    )
    years = sorted(
        {ch.apheresis.year for ch in result.chains} | {ch.infusion.year for ch in result.chains}
    )
    table = Table(
        title="Slot chains, best first (V2V and TTT in days, to infusion)", title_justify="left",
        caption=f"dates in {'-'.join(str(y) for y in years)}" if years else None,
    )  # fmt: skip
    table.add_column("site", no_wrap=True)
    for col in ("collect", "start", "QC out", "deliver"):
        table.add_column(col, no_wrap=True)
    for col in ("V2V", "TTT", "cost"):
        table.add_column(col, justify="right", no_wrap=True)
    for ch in result.chains:
        table.add_row(
            net.site(ch.site).city,
            *(f"{d:%d %b}" for d in (ch.apheresis, ch.start, ch.release, ch.delivery)),
            str(ch.vein_to_vein_days), str(ch.time_to_treatment_days), f"{ch.lane_cost:,.0f}",
        )  # fmt: skip
    out.print(table)
    if result.excluded:
        ex = Table(title="Excluded sites", title_justify="left")
        ex.add_column("site")
        ex.add_column("why")
        for why in result.excluded:
            ex.add_row(net.site(why.site).city, why.message)
        out.print(ex)
    if not result.chains:
        out.print("[red]no site can take this order within the search horizon[/]")


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def optimize(
    backlog_file: Annotated[
        Path,
        typer.Argument(metavar="BACKLOG.json", help="Orders to plan (docs/reference/backlog.md)."),
    ],
    network: Annotated[
        str, typer.Option("--network", "-n", help="A packaged network name or a YAML file.")
    ],
    scenario: Annotated[str | None, typer.Option("--scenario", "-s", help=SCENARIO_HELP)] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", help="Seconds the solver may run.")
    ] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Plan a backlog: most patients first, then least time to treatment; with its proof.

    The status is ``optimal`` only when both levels are proven over every start day;
    otherwise ``feasible`` with a bound on each level (docs/reference/backlog.md).
    """
    from cartnet.schedule.backlog import BacklogError, load_backlog
    from cartnet.schedule.optimizer import greedy
    from cartnet.schedule.optimizer import optimize as solve

    if time_limit <= 0:
        fail(f"--time-limit must be positive (got {time_limit:g})")
    if not backlog_file.is_file():
        fail(f"BACKLOG.json {backlog_file}: no such file")
    net = load(network, scenario, option="--network")
    try:
        backlog = load_backlog(backlog_file, net)
    except BacklogError as e:
        fail(f"{backlog_file}: {len(e.problems)} problem(s)", [str(p) for p in e.problems])
    calendar = CapacityCalendar(net, min(backlog.as_of, net.reference_date), days=730)
    started = time.perf_counter()
    with err.status("planning the backlog ..."):
        base = greedy(net, calendar, backlog)
        plan = solve(net, calendar, backlog, time_limit=time_limit, baseline=base)
    elapsed = time.perf_counter() - started
    saved = (
        None
        if plan.mean_time_to_treatment is None or base.mean_time_to_treatment is None
        else base.mean_time_to_treatment - plan.mean_time_to_treatment
    )
    if as_json:
        print_json(
            {
                "schema": "cartnet.plan/1",
                "network": net.name,
                "scenario": net.applied_scenario,
                "orders": len(backlog.orders),
                "wall_seconds": round(elapsed, 3),
                "plan": plan.as_dict(),
                "greedy": base.as_dict(),
                "mean_time_to_treatment_saved_days": saved,
            }
        )
        return
    gap = "" if plan.gap is None else f", gap {plan.gap:.4%}"
    out.print(
        f"[bold]{len(backlog.orders)} orders[/] on {net.name}"
        + (f" ({scenario})" if scenario else "")
        + f": [bold]{plan.status.value}[/] ({plan.method}{gap}) in {plan.solve_seconds:.2f} s"
    )
    bound = "–" if plan.bound is None else f"{plan.bound:.2f}"
    at_most = "–" if plan.assigned_bound is None else str(plan.assigned_bound)
    out.print(
        f"level 1, patients assigned: {plan.assigned} (no plan assigns more than {at_most}); "
        f"level 2, weighted time to treatment: {fmt(plan.objective)} (bound {bound})"
    )
    table = Table(title="Optimizer against first come, first served", title_justify="left")
    table.add_column("")
    table.add_column("optimizer", justify="right")
    table.add_column("greedy", justify="right")

    table.add_row("assigned (level 1)", str(len(plan.assignments)), str(len(base.assignments)))
    table.add_row("weighted TTT (level 2)", fmt(plan.objective), fmt(base.objective))
    table.add_row("unassigned", str(len(plan.unassigned)), str(len(base.unassigned)))
    table.add_row(
        "mean time to treatment, d",
        fmt(plan.mean_time_to_treatment),
        fmt(base.mean_time_to_treatment),
    )
    table.add_row(
        "p90 time to treatment, d", fmt(plan.p90_time_to_treatment), fmt(base.p90_time_to_treatment)
    )
    out.print(table)
    if saved is not None:
        out.print(f"The plan saves {saved:.2f} days of mean time to treatment against greedy.")
    if plan.unassigned:
        un = Table(title="Unassigned orders", title_justify="left")
        un.add_column("order")
        un.add_column("why")
        for u in plan.unassigned:
            un.add_row(u.order, u.message)
        out.print(un)


def backlog(
    network: NetworkArg,
    orders: Annotated[int, typer.Option("--orders", min=0, help="How many orders.")] = 500,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD; default: the reference date.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the random draw.")] = 0,
    scenario: Annotated[str | None, typer.Option("--scenario", "-s", help=SCENARIO_HELP)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Backlog JSON to write.")] = Path(
        "backlog.json"
    ),
) -> None:
    """Write a sample backlog drawn from the network's demand (input for cartnet optimize)."""
    from cartnet.schedule.backlog import sample_backlog

    check_output(output, "--output")
    net = load(network, scenario)
    day = parse_date(as_of, "--as-of") or net.reference_date
    drawn = sample_backlog(net, orders, day, seed=seed)
    write_text(output, drawn.model_dump_json(indent=1, exclude_none=True) + "\n")
    out.print(f"{len(drawn.orders)} orders as of {day} written to {output}")
