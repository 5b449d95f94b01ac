"""What every command shares: opening a network, parsing options, failing cleanly.

Bad input ends with a message that says what and where on stderr and exit
code 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any, NoReturn

import typer
from rich.console import Console

from cartnet.network import Network, NetworkError, NetworkFileError, open_network

SCENARIO_HELP = "Apply this scenario of the network (listed by `cartnet network show`)."
POLICY_HELP = (
    "Booking policy: earliest (the site with the earliest expected delivery), nearest "
    "(the closest eligible site), optimize (earliest, then the waiting backlog re-planned "
    "every day by an LP); greedy is earliest under the name the optimizer's reports use."
)

out = Console()
err = Console(stderr=True)


def fail(message: str, details: list[str] | None = None) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    for line in details or []:
        err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(1)


def load(name_or_path: str, scenario: str | None = None, option: str = "NETWORK") -> Network:
    """The network (packaged name or file), with the scenario applied.

    ``option`` names where the network came from in messages.
    """
    if not name_or_path.strip():
        fail(f"{option}: give a packaged network name (kymriah-2020) or a network file")
    try:
        network = open_network(name_or_path)
    except NetworkFileError as e:
        fail(
            f"{option} {name_or_path}: not a usable network ({len(e.problems)} problem(s))",
            [str(p) for p in e.problems],
        )
    if scenario is None:
        return network
    try:
        return network.with_scenario(scenario)
    except KeyError as e:
        fail(f"--scenario: {e.args[0]}")
    except NetworkError as e:
        fail(f"--scenario: {scenario!r} does not apply", [str(p) for p in e.problems])


def parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date (use YYYY-MM-DD)")


def option_message(error: Any, options: dict[str, str]) -> str:
    """A pydantic error on a settings field, named by the option that set it."""
    from cartnet.fielderrors import field_message

    loc = error.get("loc") or ()
    option = options.get(str(loc[0])) if loc else None
    return f"{option}: {field_message(error)}" if option else field_message(error)


def reachable(scheduler: str) -> None:
    """Fail in seconds, naming the option, when the Dask scheduler cannot be reached."""
    from cartnet.executors import check_scheduler

    try:
        check_scheduler(scheduler)
    except RuntimeError as e:
        fail(f"--scheduler: {e}")


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
