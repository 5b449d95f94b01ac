"""Every command × every option × awkward values: a clean answer, never a traceback.

For each command a valid base invocation is varied one parameter at a time with
empty, negative, zero, huge, infinite, NaN, non-ASCII and wrongly typed values. The
answer must be either a success or an error in one line that names the parameter,
with exit code 1 (bad value) or 2 (usage). Work that a value lets through (a run of
the twin, a solve, the server) is replaced by a stub that only records it was
reached: this tests the validation at the edge, in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.design.test_ishipment_import import dat_text
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from cartnet.cli import COMMANDS, app, load_command

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
NET = str(EXAMPLES / "two-sites.yaml")
VALUES = {
    "empty": "",
    "negative": "-1",
    "zero": "0",
    "huge": "1e308",
    "huge-int": "9" * 40,
    "inf": "inf",
    "nan": "nan",
    "unicode": "ünï✓code",
    "wrong type": "[1, 2]",
}
NUMBER_SHAPED = {"zero", "huge", "huge-int", "inf"}
runner = CliRunner()


class Reached(BaseException):
    """The stubbed work was reached: every check before it passed."""


def _reached(*args: Any, **kwargs: Any) -> None:
    raise Reached


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keys, a migrated database with one account, and a folder for outputs."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(root / "data"))
        for name in ("CARTNET_PATIENT_KEY", "CARTNET_SIGNING_KEY", "CARTNET_CONFIG"):
            mp.delenv(name, raising=False)
        mp.delenv("CARTNET_DATABASE_URL", raising=False)
        db = f"sqlite:///{root / 'cartnet.db'}"
        made = runner.invoke(
            app,
            ["users", "create", "ada", "--role", "admin", "--name", "Ada A", "--db", db],
            env={"CARTNET_NEW_PASSWORD": "a long enough passphrase"},
        ) if runner.invoke(app, ["db", "upgrade", "--db", db]).exit_code == 0 else None  # fmt: skip
        assert made is not None and made.exit_code == 0, made and made.output
        (root / "small.dat").write_text(dat_text())
        yield root


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    for target in (
        "cartnet.cli.twin._warnings",
        "cartnet.cli.design.solve_design",
        "cartnet.schedule.backlog.sample_backlog",
        "cartnet.schedule.optimizer.greedy",
        "cartnet.cli.network.render_network_map",
        "cartnet.cli.demo.fill_and_print",
        "uvicorn.run",
    ):
        monkeypatch.setattr(target, _reached)


def _base(path: tuple[str, ...], root: Path) -> list[str]:
    """A valid invocation of each command (before one parameter is varied)."""
    db = ["--db", f"sqlite:///{root / 'cartnet.db'}"]
    small = ["--horizon-days", "60", "--warmup-days", "10", "-n", "1", "--workers", "1"]
    bases = {
        ("network", "validate"): [NET],
        ("network", "show"): [NET],
        ("network", "map"): [NET, "-o", str(root / "map.png")],
        ("db", "upgrade"): db,
        ("audit", "verify"): db,
        ("audit", "head"): db,
        ("serve",): db,
        ("simulate",): [NET, *small],
        ("compare",): [NET, *small, "-p", "earliest", "-p", "nearest"],
        ("offers",): [NET, "-c", "boston-general"],
        ("optimize",): [str(EXAMPLES / "backlog.json"), "--network", NET, "--time-limit", "1"],
        ("backlog",): [NET, "-o", str(root / "b.json")],
        ("design", "solve"): [str(EXAMPLES / "design-ishipment.yaml")],
        ("design", "import-ishipment"): [str(root / "small.dat"), "-o", str(root / "i.yaml")],
        ("users", "create"): ["bob{n}", "--role", "planner", "--name", "Bob {n}", *db],
        ("users", "enrol"): ["no-such-token", "--password", "p" * 20, *db],
        ("users", "list"): db,
        ("users", "disable"): ["ada", "--reason", "test", *db],
        ("users", "enable"): ["ada", "--reason", "test", *db],
        ("users", "set-role"): ["ada", "--role", "admin", "--reason", "test", *db],
        ("users", "approve"): ["ada", *db],
        ("users", "reset-password"): ["ada", "--reason", "test", *db],
        ("users", "unlock"): ["ada", *db],
        ("users", "revoke-tokens"): ["ada", *db],
        ("users", "seal"): db,
    }
    return bases[path]


def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = load_command(name)
        if isinstance(command, TyperGroup):
            found += [(name, sub) for sub in command.commands]
        else:
            found.append((name,))
    return found


def _command(path: tuple[str, ...]) -> Any:
    command = load_command(path[0])
    return command.commands[path[1]] if len(path) > 1 else command


def _variations(path: tuple[str, ...], base: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(parameter shown in messages, argv) for each parameter and awkward value."""
    command = _command(path)
    positional = [i for i, a in enumerate(base) if not a.startswith("-") and (
        i == 0 or not base[i - 1].startswith("-") or base[i - 1] in ("--json",))]  # fmt: skip
    arguments = [p for p in command.params if isinstance(p, TyperArgument)]
    for param in command.params:
        if isinstance(param, TyperOption) and (param.is_flag or param.name == "help"):
            continue
        text = param.type_descriptor.annotation is str
        for kind, value in VALUES.items():
            if text and kind in NUMBER_SHAPED:  # for free text these are just more text
                continue
            if isinstance(param, TyperArgument):
                argv = list(base)
                argv[positional[arguments.index(param)]] = value
                yield (param.metavar or param.name or "").upper(), argv
            else:
                assert isinstance(param, TyperOption)
                names = set(param.opts)
                argv, i = [], 0
                while i < len(base):  # drop the option from the base, then add the value
                    if base[i] in names:
                        i += 2
                        continue
                    argv.append(base[i])
                    i += 1
                yield max(param.opts, key=len), [*argv, max(param.opts, key=len), value]


def _names_the_parameter(line: str, shown: str, value: str) -> bool:
    wanted = {shown, shown.lower()}
    if shown == "--db":  # a database URL may come from the option, the variable or the default
        wanted |= {"the default database", "$CARTNET_DATABASE_URL"}
    if not shown.startswith("-") and value.strip():  # a positional value is named by itself
        wanted |= {value, f"No such option: {value}"}
    return any(w.lower() in line.lower() for w in wanted)


def _error_line(stderr: str) -> str | None:
    return next((x for x in stderr.splitlines() if x.startswith("error: ")), None)


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_no_traceback_and_a_named_parameter(
    path: tuple[str, ...], place: Path, stubbed: None
) -> None:
    """Each awkward value: success, or exit 1/2 with an ``error:`` line naming the parameter.

    A value that changes nothing (the base invocation fails the same way, e.g. on an
    unknown enrolment token) is not held against the parameter.
    """
    counter = iter(range(10_000))

    def run(argv: list[str]) -> Any:
        n = str(next(counter))
        argv = [a.replace("{n}", n) for a in argv]
        try:
            return runner.invoke(app, [*path, *argv], env={"COLUMNS": "200"})
        except Reached:
            return None

    base = _base(path, place)
    first = run(base)
    base_error = None if first is None else _error_line(first.stderr)
    problems = []
    for shown, argv in _variations(path, base):
        value = argv[-1] if shown.startswith("-") else next(a for a in argv if a not in base)
        where = f"{shown} {value!r}"
        result = run(argv)
        if result is None:  # the work was reached
            continue
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problems.append(f"{where}: raised {result.exception!r}")
            continue
        if "Traceback" in result.output or "unexpected" in result.stderr:
            problems.append(f"{where}: {result.stderr.strip()[:300]}")
            continue
        if result.exit_code == 0:
            continue
        line = _error_line(result.stderr)
        if result.exit_code not in (1, 2):
            problems.append(f"{where}: exit {result.exit_code}")
        elif line is None:
            problems.append(f"{where}: no error line: {result.stderr[:200]!r}")
        elif line != base_error and not _names_the_parameter(line, shown, value):
            problems.append(f"{where}: does not name it: {line[:200]}")
    assert problems == [], "\n".join(problems)
