"""``cartnet offers`` and ``cartnet optimize``: output and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()
BACKLOG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "backlog.json"


def test_offers_for_a_german_patient_list_the_eu_sites_and_exclusions() -> None:
    result = runner.invoke(
        app,
        ["offers", "kymriah-2020", "--scenario", "after-ema-2020", "--center", "charite-berlin",
         "--earliest-apheresis", "2020-09-01", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "cartnet.offers/1"
    assert {"leipzig", "les-ulis", "stein"} <= {c["site"] for c in doc["chains"]}
    assert {e["site"] for e in doc["excluded"]} == {"shanghai", "kobe", "melbourne"}
    assert all(e["reason"] == "no-approval" for e in doc["excluded"])


def test_offers_table_explains_exclusions() -> None:
    result = runner.invoke(app, ["offers", "kymriah-2020", "--center", "charite-berlin"])
    assert result.exit_code == 0
    assert "Excluded sites" in result.stdout
    assert "no EMA commercial approval" in result.stdout


def test_optimize_plans_the_example_backlog_and_compares_with_greedy() -> None:
    result = runner.invoke(app, ["optimize", str(BACKLOG), "--network", "kymriah-2020", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    plan, greedy = doc["plan"], doc["greedy"]
    assert plan["status"] == "optimal"
    assert plan["objective_kind"] == "lexicographic"
    assigned, time_to_treatment = plan["levels"]
    assert assigned["value"] == assigned["bound"] == plan["assigned"] >= greedy["assigned"]
    assert time_to_treatment["value"] == plan["objective"]
    assert time_to_treatment["bound"] == plan["bound"] <= plan["objective"]
    if plan["assigned"] == greedy["assigned"]:
        assert plan["objective"] <= greedy["objective"] + 1e-6
    result = runner.invoke(app, ["optimize", str(BACKLOG), "--network", "kymriah-2020"])
    text = " ".join(result.stdout.split())  # Rich wraps at the terminal's width
    assert "level 1, patients assigned" in text and "level 2, weighted time to treatment" in text
    assert plan["assigned"] + len(plan["unassigned"]) == doc["orders"]


def test_optimize_refuses_bad_input(tmp_path: Path) -> None:
    data = json.loads(BACKLOG.read_text())
    data["orders"][1]["center"] = "nowhere"
    data["orders"][2]["earliest_apheresis"] = "2000-01-01"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    cases = [
        (["optimize", str(bad), "--network", "kymriah-2020"], "orders[1].center"),
        (["optimize", str(bad), "--network", "kymriah-2020"], "orders[2].earliest_apheresis"),
        (["optimize", str(BACKLOG), "--network", "kymriah-2020", "--time-limit", "0"],
         "--time-limit must be positive"),
        (["optimize", str(tmp_path / "none.json"), "--network", "kymriah-2020"], "no such file"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_an_empty_backlog_gives_an_empty_plan(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"as_of": json.loads(BACKLOG.read_text())["as_of"], "orders": []}))
    result = runner.invoke(app, ["optimize", str(empty), "--network", "kymriah-2020", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plan"]["assigned"] == 0


def test_a_sampled_backlog_is_written_and_plans(tmp_path: Path) -> None:
    """``cartnet backlog`` writes what ``cartnet optimize`` reads; same seed, same file."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for target in (first, second):
        result = runner.invoke(
            app, ["backlog", "kymriah-2020", "--orders", "40", "--seed", "3", "-o", str(target)]
        )
        assert result.exit_code == 0, result.output
    assert first.read_text() == second.read_text()
    assert len(json.loads(first.read_text())["orders"]) == 40
    result = runner.invoke(app, ["optimize", str(first), "--network", "kymriah-2020", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["orders"] == 40
