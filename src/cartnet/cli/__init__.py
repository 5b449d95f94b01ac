"""The ``cartnet`` command line: a thin edge over the core packages."""

from __future__ import annotations

import typer

from cartnet import __version__
from cartnet.cli import db, design, network, schedule, serve, twin, users

app = typer.Typer(
    name="cartnet",
    help="Plan and run a global network of autologous CAR-T manufacturing sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(network.app, name="network")
app.add_typer(db.db_app, name="db")
app.add_typer(db.audit_app, name="audit")
app.add_typer(users.users_app, name="users")
app.command()(serve.serve)
app.command()(twin.simulate)
app.command()(twin.compare)
app.command()(schedule.offers)
app.command()(schedule.optimize)
app.command()(schedule.backlog)
app.add_typer(design.app, name="design")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cartnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """cartnet: network model, digital twin, scheduling and orchestration for CAR-T."""


def main() -> None:
    app()
