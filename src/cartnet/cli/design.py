"""``cartnet design``: choose where to add capacity, and check the choice in the twin."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from cartnet.cli.common import err, fail, out, print_json
from cartnet.cli.numbers import plural
from cartnet.cli.outputs import check_output, staged
from cartnet.design.model import DesignFileError, DesignInput, load_design
from cartnet.design.solve import DesignResult, solve_design
from cartnet.fielderrors import field_message
from cartnet.network import NetworkError, NetworkFileError
from cartnet.twin.settings import TwinSettings

BUILTIN = re.compile(r"^(ishipment-(?P<n>\d+)|kymriah-2020-x(?P<g>\d+(\.\d+)?))$")
"""Built-in instances: ``ishipment-500`` (patients a year), ``kymriah-2020-x2`` (growth)."""


def _design(name: str) -> DesignInput:
    hit = BUILTIN.match(name)
    if hit and not Path(name).exists():
        try:
            if hit.group("n"):
                from cartnet.design.ishipment import ishipment_instance

                return ishipment_instance(float(hit.group("n")))
            from cartnet.design.kymriah import kymriah_instance

            return kymriah_instance(float(hit.group("g")))
        except ValidationError as e:
            what = "patients a year" if hit.group("n") else "demand growth"
            why = "; ".join(field_message(x) for x in e.errors())
            fail(f"DESIGN {name}: not a usable {what}: {why}")
        except (ValueError, OverflowError) as e:
            fail(f"DESIGN {name}: {e}")
    try:
        return load_design(name)
    except DesignFileError as e:
        fail(
            f"{name} is not a usable design file ({len(e.problems)} problem(s))",
            [str(p) for p in e.problems],
        )


def _print(result: DesignResult) -> None:
    gap = "–" if result.gap is None else f"{100 * result.gap:.4f} %"
    out.print(
        f"[bold]{result.name}[/]: {result.status} ({result.solver_status}, {result.method}), "
        f"objective {result.objective_kind} = {result.objective if result.objective is None else f'{result.objective:,.2f}'}, "  # noqa: E501
        f"bound {result.bound if result.bound is None else f'{result.bound:,.2f}'}, gap {gap}, "
        f"{result.seconds:.2f} s",
        highlight=False,
    )
    if result.sites:
        t = Table(title="Chosen sites", title_justify="left")
        for col in ("site", "size", "lines", "patients", "utilization", "fixed cost"):
            t.add_column(col, justify="left" if col in ("site", "size") else "right")
        for s in result.sites:
            t.add_row(
                s.site + (" (existing)" if s.must_open else ""),
                s.size_label,
                str(s.lines),
                f"{s.patients:,.1f}",
                f"{100 * s.utilization:.1f} %",
                f"{s.fixed_cost:,.0f}",
            )
        out.print(t)
        c = Table(title=f"Cost per therapy ({result.currency})", title_justify="left")
        c.add_column("kind")
        c.add_column("per therapy", justify="right")
        for k, v in result.cost_per_therapy.items():
            c.add_row(k, f"{v:,.2f}")
        out.print(c)
        out.print(
            f"mean vein-to-vein {result.mean_v2v_days:.2f} d, max {result.max_v2v_days} d",
            highlight=False,
        )


def _print_check(rows: list[dict[str, Any]], labels: list[str], n: int) -> None:
    t = Table(title=f"Twin check: mean over {plural(n, 'replication')}", title_justify="left")
    t.add_column("figure")
    t.add_column("model", justify="right")
    for label in labels:
        t.add_column(label, justify="right")
    for row in rows:
        cells = []
        for label in labels:
            e = row.get(label)
            cells.append("–" if not e or e.get("mean") is None else f"{e['mean']:,.2f}")
        model = "–" if row["model"] is None else f"{row['model']:,.2f}"
        t.add_row(row["figure"], model, *cells)
    out.print(t)


def design(
    design_file: Annotated[
        str,
        typer.Argument(
            metavar="DESIGN",
            help="A design YAML file, or a built-in instance: ishipment-N (the iShipment "
            "network with N patients a year, e.g. ishipment-500) or kymriah-2020-xG (the "
            "kymriah-2020 network with its demand grown G times, G > 0, e.g. kymriah-2020-x2).",
        ),
    ],
    objective: Annotated[
        str | None, typer.Option("--objective", help="cost or time (default: the file's).")
    ] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Seconds the solver may run.")
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an offline HTML report.")
    ] = None,
    simulate: Annotated[
        int, typer.Option("--simulate", min=0, help="Check the design with N twin replications.")
    ] = 0,
    sim_horizon_days: Annotated[
        float, typer.Option("--sim-horizon-days", help="Simulated days of the twin check.")
    ] = 365.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the twin check.")] = 2020,
) -> None:
    """Choose which sites to open or expand, at which size, and where patients go."""
    if objective is not None and objective not in ("cost", "time"):
        fail(f"--objective: {objective!r} is not cost or time")
    if report is not None:
        check_output(report, "--report", (".html",))
    d = _design(design_file)
    try:
        result = solve_design(d, objective=objective, time_limit=time_limit)
    except ValueError as e:
        fail(str(e))
    check = None
    if simulate and result.sites:
        from cartnet.design.twin_check import twin_check

        try:
            settings = TwinSettings(
                horizon_days=sim_horizon_days,
                warmup_days=min(90.0, sim_horizon_days / 4),
                apheresis_days=d.durations.apheresis_days,
            )
            check = twin_check(d, result, replications=simulate, seed=seed, settings=settings)
        except ValidationError as e:
            fail("; ".join(field_message(x) for x in e.errors()))
        except (ValueError, KeyError, NetworkError, NetworkFileError) as e:
            fail(f"the twin check cannot run: {e}")
    if report is not None:
        from cartnet.report.design_report import write_design_report

        with staged(report) as tmp:
            write_design_report(d, result, check, tmp)
        err.print(f"report written to {report}", highlight=False)
    if as_json:
        payload = result.as_dict()
        payload["twin_check"] = None if check is None else check.as_dict()
        print_json(payload)
    else:
        _print(result)
        if check is not None:
            labels = [v["label"] for v in check.document["variants"]]
            _print_check(check.rows, labels, check.document["replications"])
    if not result.solved:
        fail(
            f"no design: {result.status}",
            result.explanation or [f"solver status: {result.solver_status}"],
        )
