"""``cartnet offers``: every feasible slot chain for one patient, across the network."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cartnet.cli.common import fail, load, out, parse_date, print_json
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
    scenario: Annotated[str | None, typer.Option("--scenario", "-s")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many chains to list.")] = 5,
    per_site: Annotated[int, typer.Option("--per-site", min=1, help="Chains per site.")] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The best slot chains for one order, and why every other site is excluded."""
    net = load(network, scenario)
    if product is None:
        if len(net.products) != 1:
            fail(f"--product is needed: the network has {len(net.products)} products")
        product = net.products[0].id
    try:
        net.center(center)
        net.product(product)
    except KeyError as e:
        fail(str(e.args[0]))
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
