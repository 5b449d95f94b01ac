"""The CLI reference page is rendered from the Typer app and kept equal to it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from cartnet.cli import app
from cartnet.cli.reference import REGENERATE, render_markdown

REFERENCE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


def _toy_app() -> typer.Typer:
    toy = typer.Typer(name="toy", help="A toy program.")
    things = typer.Typer(name="things", help="Work on things.")

    @things.command("paint")
    def paint(
        thing: str = typer.Argument(..., help="What to paint."),
        colour: Colour = typer.Option(Colour.RED, "--colour", "-c", help="Which | colour."),
        coats: int = typer.Option(2, "--coats", min=1, max=5, help="How many coats."),
        dry: bool = typer.Option(False, "--dry", help="Only pretend."),
        brush: list[str] | None = typer.Option(None, "--brush", help="Brushes to use."),
        token: str | None = typer.Option(None, envvar="TOY_TOKEN", help="Secret."),
        out: Path = typer.Option(Path("out/paint.log"), "--out", help="Log file."),
    ) -> None:
        """Paint a thing.

        Second paragraph of the help."""

    @toy.command()
    def hello() -> None:
        """Say hello."""

    toy.add_typer(things)
    return toy


def test_reference_page_is_generated_from_the_app() -> None:
    """docs/reference/cli.md is exactly what render_markdown() writes; the message says how
    to regenerate it."""
    assert REFERENCE_PAGE.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/reference/cli.md is out of date with the Typer app; regenerate it with "
        f"`{REGENERATE}` (from the repository root) and commit it"
    )


def test_every_command_has_a_section_in_app_order() -> None:
    """Each command and subcommand of cartnet gets its own section, in registration order."""
    page = render_markdown()
    root = typer.main.get_command(app)
    names = list(getattr(root, "commands"))  # noqa: B009 - TyperGroup's mapping of commands
    positions = [page.index(f"## `cartnet {name}`\n") for name in names]
    assert positions == sorted(positions)
    for group in ("network", "db", "audit", "users"):
        sub = getattr(root, "commands")[group]  # noqa: B009
        for name in getattr(sub, "commands"):  # noqa: B009
            assert f"## `cartnet {group} {name}`\n" in page


def test_options_show_type_default_and_help() -> None:
    """A row gives all names, the type with its range or choices, the default and the help."""
    page = render_markdown(_toy_app(), "toy")
    assert "| `--colour`, `-c` | `red` \\| `blue` | `red` | Which \\| colour. |" in page
    assert "| `--coats` | int, 1 to 5 | `2` | How many coats. |" in page
    assert "| `--dry` | flag | off | Only pretend. |" in page
    assert "| `--brush` (repeatable) | str | — | Brushes to use. |" in page
    assert "| `--token` | str | — | Secret. Environment: `TOY_TOKEN`. |" in page
    assert "| `--out` | path | `out/paint.log` | Log file. |" in page
    assert "| `THING` | str | required | What to paint. |" in page


def test_commands_show_usage_full_help_and_subcommand_list() -> None:
    """Usage line, the whole docstring, and a linked list of a group's commands."""
    page = render_markdown(_toy_app(), "toy")
    assert "```console\ntoy things paint [OPTIONS] THING\n```" in page
    assert "Paint a thing.\n\nSecond paragraph of the help." in page
    assert "- [`toy things paint`](#toy-things-paint): Paint a thing." in page
    assert "- [`toy hello`](#toy-hello): Say hello." in page
    assert "--install-completion" not in page
