"""Network design: the MILP's optimum, its constraints, its explanations, its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cartnet.design import DesignFileError, DesignInput, load_design, parse_design, solve_design
from cartnet.design.ishipment import ishipment_instance
from cartnet.design.solve import routes

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "design-ishipment.yaml"


def tiny(lane_cost_b: float, **extra: Any) -> DesignInput:
    """One center, one patient a day for 14 days, cap 17 (no waiting): 7 starts a window."""
    data: dict[str, Any] = {
        "name": "tiny",
        "horizon_days": 14,
        "v2v_cap_days": 17,
        "modes": [{"id": "air", "transit_days": 1}],
        "lanes": [{"center": "c", "site": "b", "mode": "air", "cost_per_shipment": lane_cost_b}],
        "candidates": [
            {"id": "a", "lat": 0, "lon": 0, "sizes": [
                {"lines": 4, "fixed_cost_per_day": 10}, {"lines": 8, "fixed_cost_per_day": 25}]},
            {"id": "b", "lat": 0, "lon": 1, "sizes": [{"lines": 4, "fixed_cost_per_day": 10}]},
        ],
        "centers": [{"id": "c", "lat": 0, "lon": 0, "patients_per_day": 1}],
    }  # fmt: skip
    data.update(extra)
    return DesignInput.model_validate(data)


@pytest.mark.parametrize(
    ("lane_cost", "expected", "sites"),
    [
        # a 4 + b 4: 14 days × 20 = 280; a holds 4 of each 7-day window, so b takes
        # ≥ 3 in each of the two disjoint windows: 6 patients × 2 shipments × 5 = 60
        (5.0, 340.0, {"a": 4, "b": 4}),
        # the same split now costs 280 + 6 × 2 × 10 = 400 > a 8 alone: 14 × 25 = 350
        (10.0, 350.0, {"a": 8}),
    ],
)
@pytest.mark.parametrize("method", ["enumeration", "mip"])
def test_tiny_optimum_by_hand(lane_cost: float, expected: float, sites: dict[str, int],
                              method: str) -> None:  # fmt: skip
    """The optimum worked out by hand, found by both the enumeration and the whole MILP."""
    r = solve_design(tiny(lane_cost), method=method)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(expected)
    assert r.cost["total"] == pytest.approx(expected)
    assert {s.site: s.lines for s in r.sites} == sites
    assert r.gap is not None and r.gap <= 1e-4


def test_rolling_window_capacity_respected() -> None:
    """Starts in every window of the cycle length stay within the chosen lines."""
    d = ishipment_instance(1000)
    r = solve_design(d)
    assert r.status == "optimal"
    for s in r.sites:
        starts = np.array(s.starts_daily)
        window = np.convolve(starts, np.ones(7))[: starts.size]
        assert window.max() <= s.lines + 1e-6
        assert np.allclose(starts, np.round(starts))  # whole patients
    assert sum(s.patients for s in r.sites) == pytest.approx(r.patients)


def test_v2v_cap_excludes_slow_modes() -> None:
    """Ground both ways (1 + 2 + 7 + 7 + 2 = 19 d) breaks the 18-day cap; 17 d leaves air only."""
    d = ishipment_instance(200)
    rs, _ = routes(d)
    assert rs and all(r.v2v_days <= 18 for r in rs)
    assert not any(r.out_mode == r.back_mode == "ground" for r in rs)
    r = solve_design(d.model_copy(update={"v2v_cap_days": 17}))
    assert r.status == "optimal"
    assert {(f["out_mode"], f["back_mode"]) for f in r.flows} == {("air", "air")}
    assert r.max_v2v_days == 17


def test_unreachable_center_explained() -> None:
    """A cap no candidate meets names the center and spells out the fastest route."""
    r = solve_design(tiny(5.0, v2v_cap_days=15))
    assert r.status == "infeasible"
    assert "center c" in r.explanation[0] and "exceeds the 15-day cap" in r.explanation[0]
    assert r.unserved == {"c": 14.0}


def test_capacity_shortfall_explained_by_center() -> None:
    """Two patients a day need 14 lines a window; 12 at most exist: a shortfall per center."""
    r = solve_design(tiny(5.0, centers=[{"id": "c", "lat": 0, "lon": 0, "patients_per_day": 2}]))
    assert r.status == "infeasible"
    assert any("capacity shortfall" in e for e in r.explanation)
    assert r.unserved["c"] > 0
    assert any(e.startswith("center c:") for e in r.explanation)


def test_max_sites_named_when_it_binds() -> None:
    """1.5 patients a day fit a + b but not one site: the explanation names the limit."""
    center = {"id": "c", "lat": 0, "lon": 0, "patients_per_day": 1.5}
    r = solve_design(tiny(5.0, limits={"max_sites": 1}, centers=[center]))
    assert r.status == "infeasible"
    assert any("limit of 1 sites" in e for e in r.explanation)


def test_time_objective_under_budget() -> None:
    """Minimising time picks air when the budget allows it, and keeps within the budget."""
    d = load_design(EXAMPLE)
    cheap = solve_design(d)
    fast = solve_design(
        d.model_copy(update={"limits": d.limits.model_copy(update={"budget_per_therapy": 60_000})}),
        objective="time",
    )
    assert fast.status == "optimal"
    assert fast.mean_v2v_days is not None and cheap.mean_v2v_days is not None
    assert fast.mean_v2v_days < cheap.mean_v2v_days
    assert fast.cost_per_therapy["total"] <= 60_000 + 1e-6
    with pytest.raises(ValueError, match="budget"):
        solve_design(d, objective="time")


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("{lines: 4, label: small", "{lines: 0, label: small", 1)
    with pytest.raises(DesignFileError) as e:
        parse_design(text, "bad.yaml")
    [p] = e.value.problems
    assert p.path == "candidates[0].sizes[0].lines" and p.line is not None
    assert "greater than or equal to 1" in p.message
    text = EXAMPLE.read_text().replace(
        "center: glasgow, site: cardiff", "center: paris, site: cardiff"
    )
    with pytest.raises(DesignFileError, match=r"lanes\[0\]\.center: unknown center 'paris'"):
        parse_design(text, "bad.yaml")
    with pytest.raises(DesignFileError, match="duplicate key"):
        parse_design("name: a\nname: b\n", "dup.yaml")


def test_cli_json_and_bad_file(tmp_path: Path) -> None:
    from cartnet.cli.design import design

    app = typer.Typer()
    app.command()(design)
    app.callback()(lambda: None)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["design", str(EXAMPLE), "--json", "--report", str(tmp_path / "r.html")]
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["status"] == "optimal" and doc["cost_per_therapy"]["total"] > 19_788
    page = (tmp_path / "r.html").read_text()
    assert page.count("plotly.js v") <= 2 and "Cost breakdown" in page
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nv2v_cap_days: 18\ncandidates: []\n")
    res = runner.invoke(app, ["design", str(bad)])
    assert res.exit_code == 1
    assert "candidates" in res.output and "modes" in res.output


@pytest.mark.parametrize("patients", [200, 500])
def test_ishipment_levels_solve_to_optimality(patients: int) -> None:
    """Optimal within the authors' limits: two sites at most, whole-horizon facility cost."""
    d = ishipment_instance(patients)
    r = solve_design(d, time_limit=20)
    assert r.status == "optimal" and r.gap is not None and r.gap <= 1e-4
    assert 1 <= len(r.sites) <= 2
    sizes = {c.id: c.sizes[0] for c in d.candidates}
    assert r.cost["facility"] == pytest.approx(
        sum(sizes[s.site].fixed_cost_per_day or 0 for s in r.sites) * 130
    )
    assert r.cost_per_therapy["materials"] + r.cost_per_therapy["qc"] == pytest.approx(19_788)
    assert r.max_v2v_days is not None and r.max_v2v_days <= 18


def test_kymriah_doubled_demand_expands_existing_sites() -> None:
    from cartnet.design.kymriah import kymriah_instance
    from cartnet.network import open_network

    current = {s.id: s.lines for s in open_network("kymriah-2020").sites}
    d = kymriah_instance(2.0, horizon_days=42)
    r = solve_design(d, time_limit=30)
    assert r.status == "optimal"
    chosen = {s.site: s.lines for s in r.sites}
    assert set(chosen) == set(current)  # every existing site stays open
    assert all(chosen[s] >= current[s] for s in current)
    # the US is served by Morris Plains alone: doubled US demand needs more lines there
    assert chosen["morris-plains"] > current["morris-plains"]


def test_twin_check_returns_kpis() -> None:
    from cartnet.design.twin_check import twin_check
    from cartnet.twin.settings import TwinSettings

    d = ishipment_instance(200)
    r = solve_design(d)
    settings = TwinSettings(horizon_days=150, warmup_days=30, drain_days=60)
    check = twin_check(d, r, replications=2, settings=settings)
    [label] = [v["label"] for v in check.document["variants"]]
    row = next(x for x in check.rows if x["key"] == "all.turnaround.mean")
    assert row["model"] == pytest.approx(r.mean_v2v_days)
    assert row[label]["mean"] > 17
    assert check.utilization and check.utilization[0]["twin"] is not None
