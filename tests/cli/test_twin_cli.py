"""``cartnet simulate`` and ``cartnet compare``: JSON, reports, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()
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
