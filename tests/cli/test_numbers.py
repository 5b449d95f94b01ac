"""Numbers in the command line's tables as people read them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.cli.numbers import estimate, number, percent, plural
from cartnet.report.twin_summary import CLIPPED

runner = CliRunner()


@pytest.mark.parametrize(
    ("x", "shown"),
    [
        (11370.4, "11,370"),
        (1234567.0, "1,234,567"),
        (42.12, "42.1"),
        (0.5, "0.50"),
        (-3.5, "-3.50"),
    ],
)
def test_numbers_never_use_scientific_notation(x: float, shown: str) -> None:
    assert number(x) == shown


def test_shares_are_percentages_and_counts_agree_with_their_noun() -> None:
    assert percent(0.1234) == "12.3 %"
    assert plural(1, "replication") == "1 replication"
    assert plural(2000, "replication") == "2,000 replications"


def test_an_interval_stays_where_the_figure_can_be_and_says_so() -> None:
    level = {"mean": 0.3, "ci_low": -0.2, "ci_high": 0.8}
    assert estimate(level) == f"0.30 [0.00{CLIPPED}, 0.80]"
    share = {"mean": 0.95, "ci_low": 0.85, "ci_high": 1.05}
    assert estimate(share, share=True) == f"95.0 % [85.0 %, 100.0 %{CLIPPED}]"
    difference = {"mean": 0.3, "ci_low": -0.2, "ci_high": 0.8}
    assert estimate(difference, non_negative=False) == "0.30 [-0.20, 0.80]"


def _simulate(example_path: Path, n: int) -> str:
    result = runner.invoke(
        app,
        ["simulate", str(example_path), "-n", str(n), "--horizon-days", "120", "--warmup-days",
         "20", "--workers", "1"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def test_one_replication_is_singular(example_path: Path) -> None:
    text = _simulate(example_path, 1)
    assert "over 1 replication" in text and "1 replications" not in text


def test_the_simulate_tables_read_well(example_path: Path) -> None:
    """No e+ notation; shares in %; no level's interval below zero, and clipping is said."""
    text = _simulate(example_path, 4)
    assert not re.search(r"\de[+-]\d", text)
    assert re.search(r"share lost\s+│\s+[\d.]+ % \[", text)
    levels = [line for line in text.splitlines() if " d " in line or "per year" in line]
    assert levels and not any(re.search(r"\[-", line) for line in levels)
    assert (CLIPPED in text) == ("interval clipped" in text)
