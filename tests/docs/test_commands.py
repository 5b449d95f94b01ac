"""Every ``cartnet`` command written in the docs exists, with options it has.

The docs show commands in ```sh blocks and, after a ``$`` prompt, in ```console
blocks. Each ``cartnet`` call there is resolved against the Typer app: its subcommand
must exist and each option it gives must be one of that command's. A renamed or
removed option then fails here, naming the page and the line, instead of a reader.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from cartnet.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(?P<lang>sh|console)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
SEPARATORS = set("();<>|&")


def command_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, shell text) of each command in the page's sh and console blocks."""
    for block in FENCE.finditer(markdown):
        first = markdown.count("\n", 0, block.start("body")) + 1
        lines = block["body"].splitlines()
        i = 0
        while i < len(lines):
            number, text = first + i, lines[i]
            if block["lang"] == "console":
                if not text.startswith("$ "):
                    i += 1
                    continue
                text = text[2:]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i]
            i += 1
            yield number, text


def cartnet_calls(text: str) -> Iterator[list[str]]:
    """The argument lists of every ``cartnet`` (or ``.venv/bin/cartnet``) in a command."""
    lexer = shlex.shlex(text.split(" #")[0], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote continued on the next line: not a cartnet call
        return
    for i, token in enumerate(tokens):
        if token.rsplit("/", 1)[-1] == "cartnet":
            args = []
            for arg in tokens[i + 1 :]:
                if set(arg) <= SEPARATORS:
                    break
                args.append(arg)
            yield args


def problems_of(args: list[str]) -> list[str]:
    command = typer.main.get_command(app)
    path = ["cartnet"]
    rest = list(args)
    while isinstance(command, TyperGroup) and rest and not rest[0].startswith("-"):
        sub = command.get_command(typer.Context(command), rest[0])
        if sub is None:
            return [f"`{' '.join(path)}` has no command {rest[0]!r}"]
        path.append(rest.pop(0))
        command = sub
    known = {"--help"}
    for param in command.params:
        known.update(getattr(param, "opts", []))
        known.update(getattr(param, "secondary_opts", []))
    options = [
        arg.split("=", 1)[0]
        for arg in rest
        if arg.startswith("-") and arg != "-" and not re.fullmatch(r"-[\d.]+", arg)
    ]
    return [f"`{' '.join(path)}` has no option {opt}" for opt in options if opt not in known]


def calls_in_docs() -> list[tuple[str, list[str]]]:
    calls = []
    for page in PAGES:
        for number, text in command_lines(page.read_text(encoding="utf-8")):
            for args in cartnet_calls(text):
                calls.append((f"{page.relative_to(ROOT)}:{number}", args))
    return calls


def test_docs_show_cartnet_commands() -> None:
    """The scan finds the commands of the tutorial and the how-to guides."""
    places = {where.split(":")[0] for where, _ in calls_in_docs()}
    assert "docs/tutorial.md" in places
    assert sum(p.startswith("docs/howto/") for p in places) >= 7


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["simulate", "kymriah-2020", "-n", "4"], None),
        (["audit", "verify", "--checkpoint=1:ab"], None),
        (["simulate", "kymriah-2020", "--replicas", "4"], "`cartnet simulate` has no option"),
        (["network", "draw", "x"], "`cartnet network` has no command 'draw'"),
    ],
)
def test_a_wrong_option_or_command_is_found(args: list[str], problem: str | None) -> None:
    """The check itself: right calls pass, a misspelt option or command is named."""
    found = problems_of(args)
    assert (found == []) if problem is None else (found and found[0].startswith(problem))


def test_every_cartnet_call_in_the_docs_exists() -> None:
    """Each cartnet call in README.md and docs/ names a real command and real options."""
    problems = [
        f"{where}: {problem} (`cartnet {' '.join(args)}`)"
        for where, args in calls_in_docs()
        for problem in problems_of(args)
    ]
    assert problems == [], "\n".join(problems)
