"""``cartnet design``: choose where to add capacity, and check the choice in the twin.

``cartnet design FILE`` is short for ``cartnet design solve FILE``;
``cartnet design import-ishipment FILE.dat`` turns the i-SHIPMENT authors' data
files into design files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table
from typer.core import TyperGroup

from cartnet.cli.common import err, fail, out, print_json
from cartnet.cli.numbers import plural
from cartnet.cli.outputs import check_output, staged
from cartnet.design.model import DesignFileError, DesignInput, load_design
from cartnet.design.service_level import Iteration, ServiceLevelResult
from cartnet.design.solve import DesignResult, solve_design
from cartnet.fielderrors import field_message
from cartnet.network import NetworkError, NetworkFileError

BUILTIN = re.compile(r"^(ishipment-(?P<n>\d+)|kymriah-2020-x(?P<g>\d+(\.\d+)?))$")
"""Built-in instances: ``ishipment-500`` (patients a year), ``kymriah-2020-x2`` (growth)."""


class _SolveByDefault(TyperGroup):
    """A group whose first argument, when not a subcommand, goes to ``solve``.

    ``cartnet design FILE`` was a command before the group existed and stays one.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["solve", *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """A subcommand; any other name is a DESIGN for ``solve`` (as ``parse_args`` does)."""
        return super().get_command(ctx, cmd_name) or super().get_command(ctx, "solve")


app = typer.Typer(
    cls=_SolveByDefault,
    help="Choose which sites to open or expand, at which size, and where patients go.\n\n"
    "`cartnet design DESIGN` is short for `cartnet design solve DESIGN`. DESIGN is a design "
    "YAML file, an i-SHIPMENT .dat file, or a built-in instance: ishipment-N (the iShipment "
    "network with N patients a year, e.g. ishipment-500) or kymriah-2020-xG (the kymriah-2020 "
    "network with its demand grown G times, e.g. kymriah-2020-x2).",
    no_args_is_help=True,
)


def _import_ishipment(path: Path, **options: Any) -> tuple[DesignInput, dict[str, Any]]:
    from cartnet.design.ishipment_import import import_ishipment

    if not path.is_file():
        fail(f"FILE.dat {str(path) if path.name else ''!r}: no such file")
    try:
        return import_ishipment(path, **options)
    except DesignFileError as e:
        fail(
            f"{path} is not a usable i-SHIPMENT data file ({len(e.problems)} problem(s))",
            [str(p) for p in e.problems],
        )


def _design(name: str) -> DesignInput:
    if name.lower().endswith(".dat"):
        return _import_ishipment(Path(name))[0]
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


def _progress(it: Iteration) -> None:
    figures = ", ".join(f"{k}: {_ci(v)}" for k, v in it.figures.items())
    err.print(
        f"iteration {it.number}: {it.status}, {figures}, "
        f"{'met' if it.met else 'missed'} ({it.seconds:.1f} s)",
        highlight=False,
    )


def _ci(e: dict[str, Any]) -> str:
    if not e or e.get("mean") is None:
        return "–"
    return f"{e['mean']:,.2f} [{e.get('ci_low', 0):,.2f}, {e.get('ci_high', 0):,.2f}]"


def _print_flags(flags: list[dict[str, Any]]) -> None:
    if not flags:
        out.print("The twin agrees with the model on every figure the model gives.")
        return
    t = Table(title="Where the twin contradicts the model", title_justify="left")
    for col in ("figure", "model", "twin mean", "95 % interval", "tolerance"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for f in flags:
        t.add_row(
            f["figure"],
            f"{f['model']:,.2f}",
            f"{f['twin']:,.2f}",
            f"{f['ci_low'] or 0:,.2f} – {f['ci_high'] or 0:,.2f}",
            f"± {f['tolerance']:,.2f}",
        )
    out.print(t)


def _print_loop(loop: ServiceLevelResult) -> None:
    t = Table(
        title=f"Service level {', '.join(x.text for x in loop.targets)}: iterations",
        title_justify="left",
    )
    cols = ("#", "caps (≥ safety lines)", "lines", "cost/therapy")
    for col in (*cols, *[x.text for x in loop.targets], "met"):
        t.add_column(col, justify="left" if col in cols[1:3] else "right")
    for it in loop.iterations:
        caps = it.caps_text()
        lines = ", ".join(f"{k} {v}" for k, v in it.lines.items())
        cost = "–" if it.cost_per_therapy is None else f"{it.cost_per_therapy:,.0f}"
        t.add_row(
            str(it.number),
            caps,
            lines,
            cost,
            *[_ci(it.figures.get(x.text, {})) for x in loop.targets],
            "yes" if it.met else "no",
        )
    out.print(t)
    for it in loop.iterations:
        for note in it.notes:
            out.print(f"after iteration {it.number}: {note}; undone", highlight=False)
    verdict = "[bold green]met[/]" if loop.met else "[bold red]NOT MET[/]"
    out.print(f"Service level {verdict}: {loop.reason}", highlight=False)


@app.command("solve")
def design(
    design_file: Annotated[
        str,
        typer.Argument(
            metavar="DESIGN",
            help="A design YAML file, an i-SHIPMENT .dat file, or a built-in instance: "
            "ishipment-N (the iShipment network with N patients a year, e.g. ishipment-500) "
            "or kymriah-2020-xG (the kymriah-2020 network with its demand grown G times, "
            "G > 0, e.g. kymriah-2020-x2).",
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
    warmup_days: Annotated[
        float,
        typer.Option(
            "--warmup-days",
            min=0,
            max=365,
            help="Days the twin runs before the model's horizon (it measures the horizon).",
        ),
    ] = 90.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the twin check.")] = 2020,
    service_level: Annotated[
        str | None,
        typer.Option(
            "--service-level",
            help="Targets the twin must confirm, e.g. 'p90_ttt<=30' or "
            "'mean_ttt<=25,lost_share<=8%'; caps site utilization until met.",
        ),
    ] = None,
    iterations: Annotated[
        int, typer.Option("--iterations", min=1, help="Most solve-and-simulate iterations.")
    ] = 8,
    budget_seconds: Annotated[
        float | None,
        typer.Option("--budget-seconds", min=1, help="Wall time the service-level loop may use."),
    ] = None,
) -> None:
    """Choose which sites to open or expand, at which size, and where patients go."""
    if objective is not None and objective not in ("cost", "time"):
        fail(f"--objective: {objective!r} is not cost or time")
    if report is not None:
        check_output(report, "--report", (".html",))
    targets = None
    if service_level is not None:
        from cartnet.design.service_level import parse_targets

        try:
            targets = parse_targets(service_level)
        except ValueError as e:
            fail(str(e))
    d = _design(design_file)
    from cartnet.design.twin_check import check_settings, twin_check

    try:
        settings = check_settings(d, warmup_days)
    except (ValueError, ValidationError, NetworkError, NetworkFileError) as e:
        fail(f"the twin check cannot run: {e}")
    loop = None
    check = None
    try:
        if targets is not None:
            from cartnet.design.service_level import meet_service_level

            loop = meet_service_level(
                d,
                targets,
                replications=simulate or 10,
                seed=seed,
                settings=settings,
                max_iterations=iterations,
                seconds=budget_seconds,
                time_limit=time_limit,
                objective=objective,
                progress=None if as_json else _progress,
            )
            d, result = loop.design, loop.result
        else:
            result = solve_design(d, objective=objective, time_limit=time_limit)
        if (simulate or loop is not None) and result.sites:
            check = twin_check(d, result, replications=simulate or 10, seed=seed, settings=settings)
    except ValidationError as e:
        fail("; ".join(field_message(x) for x in e.errors()))
    except (KeyError, NetworkError, NetworkFileError) as e:
        fail(f"the twin check cannot run: {e}")
    except ValueError as e:
        fail(str(e))
    if report is not None:
        from cartnet.report.design_report import write_design_report

        with staged(report) as tmp:
            write_design_report(d, result, check, tmp, loop)
        err.print(f"report written to {report}", highlight=False)
    if as_json:
        payload = result.as_dict()
        payload["twin_check"] = None if check is None else check.as_dict()
        payload["service_level"] = None if loop is None else loop.as_dict()
        print_json(payload)
    else:
        _print(result)
        if check is not None:
            labels = [v["label"] for v in check.document["variants"]]
            _print_check(check.rows, labels, check.document["replications"])
            _print_flags(check.flags)
        if loop is not None:
            _print_loop(loop)
    if not result.solved:
        fail(
            f"no design: {result.status}",
            result.explanation or [f"solver status: {result.solver_status}"],
        )
    if loop is not None and not loop.met:
        fail(f"service level {loop.reason}")


@app.command("import-ishipment")
def import_ishipment(
    data_file: Annotated[
        Path, typer.Argument(metavar="FILE.dat", help="A data file of the i-SHIPMENT model.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Design file to write (default: standard output)."),
    ] = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", min=1, max=730, help="Days of the horizon.")
    ] = 130,
    max_sites: Annotated[
        int, typer.Option("--max-sites", min=0, help="Most sites open (0: no limit).")
    ] = 2,
    cvm_per_line_day: Annotated[
        float,
        typer.Option(
            "--cvm-per-line-day", min=0, help="Running cost per line and day where CVM is absent."
        ),
    ] = 5_230.0,
) -> None:
    """Read the i-SHIPMENT authors' Pyomo data file into a design file."""
    if output is not None:
        check_output(output, "--output", (".yaml", ".yml"))
    _, data = _import_ishipment(
        data_file,
        horizon_days=horizon_days,
        max_sites=max_sites or None,
        cvm_per_line_day=cvm_per_line_day,
    )
    text = f"# design imported from {data_file.name} by cartnet design import-ishipment\n"
    text += yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    if output is None:
        sys.stdout.write(text)
        return
    with staged(output) as tmp:
        tmp.write_text(text, encoding="utf-8")
    err.print(f"design written to {output}", highlight=False)
