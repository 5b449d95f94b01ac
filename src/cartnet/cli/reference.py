"""The CLI reference page ``docs/reference/cli.md``, written from the Typer app itself.

A hand-written option table drifts from the code the day someone adds an option; this
page is rendered from the commands' own parameters (names, types, defaults, help) and a
test compares the two. The output depends only on the code: commands in the app's
order, no terminal width, no machine-dependent default.

Regenerate it with ``python -m cartnet.cli.reference > docs/reference/cli.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from enum import Enum
from pathlib import PurePath
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

REGENERATE = ".venv/bin/python -m cartnet.cli.reference > docs/reference/cli.md"

# Typer's own shell-completion options: the same on every Typer program, not cartnet's.
_TYPER_BOILERPLATE = {"--install-completion", "--show-completion"}


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command, depth first, in the order the app registers them."""
    yield path, command
    if isinstance(command, TyperGroup):
        ctx = typer.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, (*path, name))


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _type(param: TyperArgument | TyperOption) -> str:
    if isinstance(param, TyperOption) and param.is_flag:
        return "flag"
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        label = " \\| ".join(f"`{_plain(choice)}`" for choice in descriptor.choices or ())
    else:
        label = param.bare_type().removeprefix("list[").removesuffix("]").lower()
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        label += f", {low} to {high}"
    elif low is not None:
        label += f", ≥ {low}"
    elif high is not None:
        label += f", ≤ {high}"
    return label


def _plain(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, PurePath):
        return value.as_posix()
    return str(value)


def _default(param: TyperArgument | TyperOption) -> str:
    if param.required:
        return "required"
    default = param.default
    if isinstance(param, TyperOption) and param.is_flag:
        return "on" if default else "off"
    if default is None or default == [] or callable(default):
        return "—"
    return f"`{_plain(default)}`"


def _name(param: TyperArgument | TyperOption) -> str:
    if isinstance(param, TyperArgument):
        return f"`{(param.metavar or param.name or '').upper()}`"
    names = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
    return names + (" (repeatable)" if param.multiple else "")


def _meaning(param: TyperArgument | TyperOption) -> str:
    text = param.help or ""
    if isinstance(param, TyperOption) and param.prompt:
        text += " Asked for (hidden) when not given."
    envvar = param.envvar
    if envvar:
        names = [envvar] if isinstance(envvar, str) else list(envvar)
        text += f" Environment: {', '.join(f'`{name}`' for name in names)}."
    return _cell(text)


def _usage(path: tuple[str, ...], command: Any) -> str:
    pieces = [" ".join(path)]
    if isinstance(command, TyperGroup):
        return " ".join([*pieces, "COMMAND [ARGS]..."])
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if any(isinstance(p, TyperOption) for p in params):
        pieces.append("[OPTIONS]")
    for param in params:
        if isinstance(param, TyperArgument):
            name = (param.metavar or param.name or "").upper()
            pieces.append(name if param.required else f"[{name}]")
    return " ".join(pieces)


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(path)


def _section(path: tuple[str, ...], command: Any) -> list[str]:
    lines = [f"## `{' '.join(path)}`", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines += [help_text, ""]
    lines += ["```console", _usage(path, command), "```", ""]
    params = [
        p
        for p in command.params
        if not getattr(p, "hidden", False)
        and not (isinstance(p, TyperOption) and set(p.opts) & _TYPER_BOILERPLATE)
    ]
    if params:
        lines += [
            "| argument or option | type | default | meaning |",
            "|---|---|---|---|",
            *(
                f"| {_name(p)} | {_type(p)} | {_default(p)} | {_meaning(p)} |"
                for p in params
                if isinstance(p, TyperArgument | TyperOption)
            ),
            "",
        ]
    if isinstance(command, TyperGroup):
        ctx = typer.Context(command, info_name=path[-1])
        lines += ["Commands:", ""]
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                sub_path = (*path, name)
                lines.append(
                    f"- [`{' '.join(sub_path)}`](#{_anchor(sub_path)}): "
                    f"{_cell(sub.get_short_help_str(limit=200))}"
                )
        lines.append("")
    return lines


def render_markdown(app: typer.Typer | None = None, program: str = "cartnet") -> str:
    """The page: every command of ``app`` (default: cartnet's), called ``program``."""
    if app is None:
        from cartnet.cli import app as cartnet_app

        app = cartnet_app
    root = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "<!-- Generated from the Typer app in src/cartnet/cli by "
        "cartnet.cli.reference; do not edit by hand. -->",
        "",
        "Every `cartnet` command with its arguments and options, as `--help` shows them.",
        "Options without a default are unset unless given; `--help` works on every",
        "command. Regenerate this page after changing a command (a test compares the two):",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
    ]
    for path, command in _commands(root, (program,)):
        lines += _section(path, command)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
