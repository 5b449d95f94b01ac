"""The ``cartnet`` command line: a thin edge over the core packages.

The root group imports a command's module only when that command runs or shows its
own help: ``cartnet --help`` and ``--version`` then start in about the time of
Typer and Rich alone, instead of loading numpy, SQLAlchemy, the solver and the
password hasher first. The one-line summaries listed by ``cartnet --help`` live in
:data:`COMMANDS`; a test checks them against each command's own docstring.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

import typer
from typer import _click as click
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.exceptions import Abort

from cartnet import __version__


class Entry(NamedTuple):
    module: str
    attr: str
    summary: str


COMMANDS: dict[str, Entry] = {
    "serve": Entry(
        "cartnet.cli.serve", "serve", "Run the orchestration service (REST API under /api/v1, "
        "docs at /docs)."
    ),
    "simulate": Entry(
        "cartnet.cli.twin", "simulate", "Simulate every order through the network, many times over."
    ),
    "compare": Entry(
        "cartnet.cli.twin", "compare",
        "Compare scenarios and policies on common random numbers; differences with 95% CIs.",
    ),
    "offers": Entry(
        "cartnet.cli.schedule", "offers",
        "The best slot chains for one order, and why every other site is excluded.",
    ),
    "optimize": Entry(
        "cartnet.cli.schedule", "optimize",
        "Plan a backlog: most patients first, then least time to treatment; with its proof.",
    ),
    "backlog": Entry(
        "cartnet.cli.schedule", "backlog",
        "Write a sample backlog drawn from the network's demand (input for cartnet optimize).",
    ),
    "design": Entry(
        "cartnet.cli.design", "app",
        "Choose which sites to open or expand, at which size, and where patients go.",
    ),
    "network": Entry(
        "cartnet.cli.network", "app", "Validate, show and map a manufacturing network."
    ),
    "db": Entry("cartnet.cli.db", "db_app", "Create or migrate the cartnet database."),
    "audit": Entry("cartnet.cli.db", "audit_app", "Check the audit trail stored in the database."),
    "users": Entry("cartnet.cli.users", "users_app", "Manage the service's accounts."),
}  # fmt: skip

_TYPE_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "NUMBER",
    "float range": "NUMBER",
    "path": "PATH",
    "file": "FILE",
    "directory": "FOLDER",
}


def readable_metavars(command: click.Command) -> click.Command:
    """Name option values as people read them (TEXT, NUMBER, a|b), never ``<str>``/``<bool>``.

    Typer shows a parameter's Python type unless it has a metavar; flags get none.
    """
    ctx = click.Context(command)
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010 - the name says it
        if param.metavar is not None:
            continue
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument):
            param.metavar = (param.name or "value").upper()
        elif isinstance(param, TyperOption):
            shown = param.display_type(ctx).strip("<>")
            plural = shown.startswith("list[")
            shown = shown.removeprefix("list[").removesuffix("]") if plural else shown
            param.metavar = _TYPE_NAMES.get(shown, shown)
    if isinstance(command, TyperGroup) and not isinstance(command, LazyGroup):
        for sub in command.commands.values():
            readable_metavars(sub)
    return command


def load_command(name: str) -> click.Command:
    """The click command for ``name``, importing its module now."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attr)
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return readable_metavars(command)


class LazyCommands(MutableMapping[str, click.Command]):
    """The root's commands by name: every name of :data:`COMMANDS` is listed, a command
    is imported the first time it is looked up."""

    def __init__(self) -> None:
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class LazyGroup(TyperGroup):
    """The root group: lists commands from :data:`COMMANDS`, imports one only to run it."""

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the names only: nothing imported

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in COMMANDS:
            return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name].summary)
        return super().get_command(ctx, cmd_name)

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, **kwargs: Any
    ) -> Any:
        """Usage errors as one line, like every other error: ``error: ...`` and exit 2."""
        if not kwargs.pop("standalone_mode", True):
            return super().main(args, prog_name, standalone_mode=False, **kwargs)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as e:
            e.show()
            sys.exit(e.exit_code)
        except ClickException as e:
            where = getattr(e, "ctx", None)
            hint = f" (see `{where.command_path} --help`)" if where is not None else ""
            message = " ".join(e.format_message().split())
            sys.stderr.write(f"error: {message}{hint}\n")
            sys.exit(e.exit_code)
        except Abort:
            sys.stderr.write("error: aborted\n")
            sys.exit(1)
        except Exception as e:  # a bug: one line for the user, the traceback on request
            if os.environ.get("CARTNET_DEBUG"):
                raise
            sys.stderr.write(
                f"error: unexpected {e.__class__.__name__}: {' '.join(str(e).split())} "
                "(a bug in cartnet: please report it; CARTNET_DEBUG=1 shows the traceback)\n"
            )
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        readable_metavars(self)
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="cartnet",
    cls=LazyGroup,
    help="Plan and run a global network of autologous CAR-T manufacturing sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so its cleanup runs (workers, staged files)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> Any:
    """The ``cartnet`` program: SIGTERM ends it like Ctrl-C, workers and staged files
    cleaned up on the way out (exit 143; Ctrl-C gives 130)."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return app()
    except Terminated:
        sys.stderr.write("cartnet: stopped (SIGTERM); nothing half-written was left\n")
        sys.exit(128 + signal.SIGTERM)
