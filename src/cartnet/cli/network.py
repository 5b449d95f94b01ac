"""``cartnet network ...``: validate, show and map a network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cartnet.cli.common import err, fail, load, out, parse_date, print_json
from cartnet.cli.outputs import check_output, staged
from cartnet.network import NetworkFileError, open_network
from cartnet.network.summary import summarize
from cartnet.report.maps import FORMATS, render_network_map

app = typer.Typer(help="Validate, show and map a manufacturing network.", no_args_is_help=True)

NetworkArg = Annotated[
    str, typer.Argument(help="A packaged network name (kymriah-2020) or a YAML file.")
]
ScenarioOpt = Annotated[
    str | None, typer.Option("--scenario", "-s", help="Apply this scenario to the base network.")
]


@app.command()
def validate(network: NetworkArg) -> None:
    """Check a network file (or a packaged network); list every problem with line and path."""
    if not network.strip():
        fail("NETWORK: give a packaged network name (kymriah-2020) or a network file")
    try:
        net = open_network(network)
    except NetworkFileError as e:
        for p in e.problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        fail(f"{network}: {len(e.problems)} problem(s)")
    out.print(
        f"[green]valid[/]: {net.name}: {len(net.sites)} sites, "
        f"{len(net.treatment_centers)} treatment centers, "
        f"{len(net.scenarios)} scenarios"
    )


@app.command()
def show(
    network: NetworkArg,
    scenario: ScenarioOpt = None,
    on: Annotated[
        str | None, typer.Option(help="Date (YYYY-MM-DD); default: the network's reference date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stable JSON form.")] = False,
) -> None:
    """Sites, approvals in force, centers and demand per market, and who may serve whom."""
    net = load(network, scenario)
    summary = summarize(net, parse_date(on, "--on"))
    if as_json:
        print_json(summary)
        return
    head = f"[bold]{net.name}[/]" + (f" · scenario [bold]{scenario}[/]" if scenario else "")
    out.print(f"{head} · on {summary['on']} · sites on {', '.join(summary['continents'])}")
    sites = Table(title="Manufacturing sites", title_justify="left")
    for col in ("site", "operator", "country", "lines", "mfg d", "QC d", "approvals in force"):
        sites.add_column(col, justify="right" if col in {"lines", "mfg d", "QC d"} else "left")
    for s in summary["sites"]:
        approvals = ", ".join(
            f"{a['regulator']} {a['scope']}" + (f" ({a['trial']})" if a["trial"] else "")
            for a in s["approvals_in_force"]
        )
        sites.add_row(
            f"{s['name']}",
            f"{s['operator']} ({s['operator_kind']})",
            s["country"],
            str(s["lines"]),
            f"{s['manufacturing_mean_days']:g}",
            f"{s['qc_mean_days']:g}",
            approvals or "[dim]none[/]",
        )
    out.print(sites)
    markets = Table(title="Markets: demand and the sites that may serve them", title_justify="left")
    for col in ("market", "regulator", "centers", "patients/yr", "scope", "eligible sites"):
        markets.add_column(col, justify="right" if col in {"centers", "patients/yr"} else "left")
    names = {s["id"]: s["city"] for s in summary["sites"]}
    for m in summary["markets"]:
        rows = [r for r in summary["service"] if r["market"] == m["id"]]
        for i, r in enumerate(rows):
            scope = r["scope"] + (f" ({r['trial']})" if r["trial"] else "")
            markets.add_row(
                m["id"] if i == 0 else "",
                m["regulator"] if i == 0 else "",
                str(m["centers"]) if i == 0 else "",
                f"{r['patients_per_year']:.0f}",
                scope,
                ", ".join(names[s] for s in r["sites"]) or "[red]none[/]",
            )
    out.print(markets)
    t = summary["totals"]
    out.print(
        f"{t['sites']} sites, {t['lines']} lines, {t['treatment_centers']} treatment centers, "
        f"{t['demand_per_year']:.0f} patients a year"
    )


@app.command("map")
def map_(
    network: NetworkArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Map file: .png, .svg or .html.")],
    scenario: ScenarioOpt = None,
) -> None:
    """Draw sites and treatment centers on a world map, rendered offline."""
    check_output(output, "--output", tuple(FORMATS))
    net = load(network, scenario)
    with staged(output) as tmp:
        render_network_map(net, tmp)
    out.print(f"map written to {output}")
