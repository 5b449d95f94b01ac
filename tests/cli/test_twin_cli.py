"""``cartnet simulate`` and ``cartnet compare``: JSON, reports, and clear refusals."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from tests.twin.test_validation import erlang_c_wait
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.network import open_network

runner = CliRunner()
MMC = Path(__file__).parents[2] / "docs" / "examples" / "mmc.yaml"
QUICK = ["--horizon-days", "120", "--warmup-days", "20", "--replications", "3", "--workers", "1"]


def test_simulate_prints_the_documented_json(example_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(example_path), *QUICK, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "cartnet.twin-run/1"
    assert doc["replications"] == 3
    assert doc["markets"] == ["EU", "US"]
    [variant] = doc["variants"]
    assert variant["label"] == "base/earliest"
    ttt = variant["kpis"]["all.ttt.mean"]
    assert ttt["n"] == 3
    assert ttt["ci_low"] <= ttt["mean"] <= ttt["ci_high"]
    assert len(variant["backlog_daily"]) == 120
    assert doc["differences"] == []


def test_compare_reports_paired_differences_and_writes_the_report(
    example_path: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.html"
    result = runner.invoke(
        app,
        ["compare", str(example_path), "-s", "no-leiden-commercial", "-s", "bigger-leiden",
         *QUICK, "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Δ" in result.stdout  # the paired-difference column
    # both scenarios see the same patients: enrolment never differs, and no one is left
    # in the pipeline after the drain; the table says so instead of printing 0 [0, 0]
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "│ still in the" in line)  # wrapped cells
    assert lines[at].count("0 (too few") == 3
    assert lines[at + 1].count("events)") == 3
    assert "fewer than five replications differ" in " ".join(result.stdout.split())
    assert report.exists()
    assert (tmp_path / "r-ttt.png").exists()


def test_compare_policies_on_one_network(example_path: Path) -> None:
    result = runner.invoke(
        app, ["compare", str(example_path), "-p", "nearest", "-p", "earliest", *QUICK, "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [v["label"] for v in doc["variants"]] == ["base/nearest", "base/earliest"]
    assert doc["differences"][0]["variant"] == "base/earliest"


def test_bad_requests_exit_1_with_a_message(example_path: Path) -> None:
    net = str(example_path)
    cases = [
        (["simulate", net, "--policy", "fastest"], "unknown policy 'fastest'"),
        (["simulate", net, "--scenario", "nope"], "unknown scenario 'nope'"),
        (
            ["simulate", net, "--horizon-days", "60", "--warmup-days", "90"],
            "must be shorter than --horizon-days",
        ),
        (["compare", net, "-s", "bigger-leiden"], "at least two variants"),
        (["simulate", net, *QUICK, "--report", "r.pdf"], "must end in .html"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output


def test_demand_no_site_can_serve_is_named_and_the_run_goes_on(
    example_path: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load(example_path.read_text())
    data["treatment_centers"][1]["demand"][1]["trial"] = "XT-999"  # no site holds this trial
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["simulate", str(path), *QUICK, "--json"])
    assert result.exit_code == 0, result.output
    assert "no site may serve cart-x clinical, trial XT-999" in result.stderr
    assert "paris-centre" in result.stderr
    assert json.loads(result.stdout)["warnings"]


def test_simulate_reproduces_the_erlang_c_wait_of_a_one_site_network() -> None:
    """--call-ahead 0 --apheresis-days 0 --loss-hazard 0 make the documented one-site
    example an M/M/c queue: the mean wait for a slot's CI holds the Erlang C value; with
    the default call-ahead and lead time patients are called earlier."""
    [site] = open_network(str(MMC)).sites
    assert (site.lines, site.manufacturing.mean, site.calendar.is_open(date(2021, 1, 3))) == (
        2, 1.0, True,
    )  # fmt: skip
    expected = erlang_c_wait(2, 511 / 365, 1.0)
    assert expected == pytest.approx(0.96, abs=0.005)  # the figure the docs quote
    run = ["simulate", str(MMC), "--horizon-days", "8000", "--warmup-days", "200"]
    run += ["--replications", "10", "--workers", "1", "--loss-hazard", "0", "--json"]
    exact = runner.invoke(app, [*run, "--call-ahead", "0", "--apheresis-days", "0"])
    assert exact.exit_code == 0, exact.output
    doc = json.loads(exact.stdout)
    assert doc["settings"]["call_ahead_per_line"] == 0
    assert doc["settings"]["apheresis_days"] == 0
    wait = doc["variants"][0]["kpis"]["all.slot_wait.mean"]
    assert wait["ci_low"] <= expected <= wait["ci_high"]
    assert wait["ci_high"] - wait["ci_low"] < 0.2 * expected  # a CI narrow enough to mean it
    default = json.loads(runner.invoke(app, run).stdout)["variants"][0]["kpis"]
    assert default["all.slot_wait.mean"]["ci_high"] < expected  # patients called ahead wait less
