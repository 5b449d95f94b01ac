"""Help that reads well and a start that does not wait for the whole package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.core import TyperGroup
from typer.testing import CliRunner

from cartnet.cli import COMMANDS, app, load_command

SRC = Path(__file__).resolve().parents[2] / "src"
runner = CliRunner()


def _all() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = load_command(name)
        found.append((name,))
        if isinstance(command, TyperGroup):
            found += [(name, sub) for sub in command.commands]
    return found


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_summary_is_the_commands_own(name: str) -> None:
    """``cartnet --help`` lists summaries without importing the commands: they must agree."""
    command = load_command(name)
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert COMMANDS[name].summary == own


@pytest.mark.parametrize("path", _all(), ids=" ".join)
def test_help_documents_every_option_without_raw_type_names(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for raw in ("<str>", "<bool>", "<int>", "<float>", "<path>", "<int range>"):
        assert raw not in result.output
    command = load_command(path[0])
    if len(path) > 1:
        command = command.commands[path[1]]  # type: ignore[attr-defined]
    undocumented = [p.name for p in command.params if not getattr(p, "help", None)]
    assert undocumented == []


def test_design_help_lists_the_built_in_instances() -> None:
    result = runner.invoke(app, ["design", "--help"], env={"COLUMNS": "200"})
    assert "ishipment-N" in result.output and "kymriah-2020-xG" in result.output


def test_policy_help_names_every_policy() -> None:
    from cartnet.schedule.policies import policy_names

    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert all(name in text for name in policy_names())
    assert "greedy is earliest" in text


def test_help_and_version_load_no_heavy_module() -> None:
    """The root help and --version import neither numpy, SQLAlchemy, the solver nor argon2."""
    code = (
        "import sys\n"
        "from cartnet.cli import main\n"
        "sys.argv = ['cartnet', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'numpy', 'sqlalchemy', 'highspy', 'argon2', 'matplotlib', 'pydantic', 'yaml'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for flag in ("--help", "--version"):
        done = subprocess.run(
            [sys.executable, "-c", code, flag], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
