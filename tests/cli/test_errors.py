"""The issue's examples: one line naming the option, exit 1 (2 for usage), no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "code", "start"),
    [
        (["simulate", "{net}", "--horizon-days", "inf"], 1, "error: --horizon-days: "),
        (["simulate", "{net}", "--warmup-days", "nan"], 1, "error: --warmup-days: "),
        (["design", "kymriah-2020-x0"], 1, "error: DESIGN kymriah-2020-x0: "),
        (["simulate", "{net}", "--scheduler", "bogus"], 1, "error: --scheduler: "),
        (["serve", "--log-level", "chatty"], 2, "error: Invalid value for '--log-level'"),
        (["simulate", "{net}", "-n", "zero"], 2, "error: Invalid value for '--replications'"),
        (["simulate"], 2, "error: Missing argument 'NETWORK'"),
        (["no-such-command"], 2, "error: No such command 'no-such-command'"),
    ],
)
def test_bad_input_is_one_line_naming_what(
    example_path: Path, args: list[str], code: int, start: str
) -> None:
    result = runner.invoke(app, [a.replace("{net}", str(example_path)) for a in args])
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(start), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_bug_is_one_line_and_its_traceback_is_there_on_request(
    example_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("cartnet.cli.network.summarize", broken)
    result = runner.invoke(app, ["network", "show", str(example_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unexpected ZeroDivisionError: division by zero")
    assert "CARTNET_DEBUG=1" in result.stderr
    debug = runner.invoke(app, ["network", "show", str(example_path)], env={"CARTNET_DEBUG": "1"})
    assert isinstance(debug.exception, ZeroDivisionError)
