"""``cartnet network``: exit codes, messages and the stable JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cartnet.cli import app

runner = CliRunner()


def test_validate_a_good_file(example_path: Path) -> None:
    result = runner.invoke(app, ["network", "validate", str(example_path)])
    assert result.exit_code == 0
    assert "valid" in result.stdout and "2 sites" in result.stdout


def test_validate_a_broken_file_lists_every_problem_and_exits_1(
    example_path: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        example_path.read_text()
        .replace("lines: 4\n", "lines: four\n")
        .replace("regulator: FDA\n", "regulator: FDAA\n")
    )
    result = runner.invoke(app, ["network", "validate", str(bad)])
    assert result.exit_code == 1
    assert "sites[0].lines" in result.stderr
    assert "markets[0].regulator" in result.stderr
    assert "2 problem(s)" in result.stderr
    assert "Traceback" not in result.output


def test_show_json_is_stable(example_path: Path) -> None:
    result = runner.invoke(
        app, ["network", "show", str(example_path), "--on", "2021-06-01", "--json"]
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema"] == "cartnet.network-show/1"
    assert data["on"] == "2021-06-01"
    assert [s["id"] for s in data["sites"]] == ["newark", "leiden"]
    assert data["totals"] == {
        "sites": 2,
        "lines": 6,
        "treatment_centers": 3,
        "demand_per_year": 240.0,
    }
    eu = {(r["scope"], r["trial"]): r["sites"] for r in data["service"] if r["market"] == "EU"}
    assert eu == {("commercial", None): ["newark", "leiden"], ("clinical", "XT-201"): ["leiden"]}


def test_show_with_a_scenario_in_tables(example_path: Path) -> None:
    result = runner.invoke(
        app, ["network", "show", str(example_path), "--scenario", "no-leiden-commercial"]
    )
    assert result.exit_code == 0
    assert "scenario no-leiden-commercial" in result.stdout
    assert "Markets" in result.stdout


def test_unknown_scenario_network_and_bad_date_exit_1(example_path: Path) -> None:
    cases = [
        (["network", "show", str(example_path), "--scenario", "nope"], "unknown scenario 'nope'"),
        (["network", "show", "kymriah-2099"], "neither a packaged network"),
        (["network", "show", str(example_path), "--on", "01/06/2021"], "is not a date"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert message in result.stderr, result.stderr


def test_map_writes_png_svg_and_html(example_path: Path, tmp_path: Path) -> None:
    for suffix, magic in [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".html", b"<!DOCTYPE html>")]:
        target = tmp_path / f"map{suffix}"
        result = runner.invoke(app, ["network", "map", str(example_path), "-o", str(target)])
        assert result.exit_code == 0, result.output
        assert target.read_bytes().lstrip().lower().startswith(magic.lower())


def test_map_refuses_unknown_format(example_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["network", "map", str(example_path), "-o", str(tmp_path / "map.jpg")]
    )
    assert result.exit_code == 1
    assert "must end in .png, .svg or .html" in result.stderr
