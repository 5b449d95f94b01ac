"""i-SHIPMENT data files, directional lane prices, and the per-patient cross-check.

The data files here are written for the tests in the authors' Pyomo format
(``set NAME := ...;``, ``param NAME := index... value ...;``); none is theirs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from cartnet.design import DesignFileError, DesignInput, parse_design, solve_design
from cartnet.design.ishipment import ARRIVAL_DAYS, ishipment_instance
from cartnet.design.ishipment_import import import_ishipment, parse_dat

ROOT = Path(__file__).parents[2]


def per_patient() -> ModuleType:
    """The benchmark's per-patient formulation (the independent yardstick)."""
    path = ROOT / "benchmarks" / "design_per_patient.py"
    spec = importlib.util.spec_from_file_location("design_per_patient", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# patient, leukapheresis site, day (1-based)
ARRIVALS = [("p1", "c1", 1), ("p2", "c1", 1), ("p3", "c2", 2), ("p4", "c2", 3),
            ("p5", "c1", 3), ("p6", "c2", 3), ("p7", "c1", 4), ("p8", "c2", 9)]  # fmt: skip
U1 = {("c1", "m1"): (900, 300), ("c1", "m2"): (400, 150), ("c1", "m3"): (700, 250),
      ("c2", "m1"): (500, 200), ("c2", "m2"): (1000, 400), ("c2", "m3"): (600, 220)}  # fmt: skip
U3 = {("m1", "h1"): (1200, 500), ("m2", "h1"): (300, 900), ("m3", "h1"): (800, 320),
      ("m1", "h2"): (450, 260), ("m2", "h2"): (1500, 700), ("m3", "h2"): (650, 310)}  # fmt: skip


def dat_text(*, cvm: bool = True, extra: str = "") -> str:
    """A small data file: 2 leukapheresis sites, 3 candidates (2, 3 and 6 lines), 8 patients."""
    u1 = "\n".join(
        f"{c} {m} {j} {v[i]}" for (c, m), v in U1.items() for i, j in enumerate(("j1", "j2"))
    )
    u3 = "\n".join(
        f"{m}\t{h}\t{j}\t{v[i]}" for (m, h), v in U3.items() for i, j in enumerate(("j1", "j2"))
    )
    inc = "\n".join(f"{p}\t{c}\t{t}\t1" for p, c, t in ARRIVALS)
    cvm_text = "param CVM :=\nm1 100\nm2 150\nm3 300\n;\n" if cvm else ""
    return (
        "# Data for pyomo (written for the cartnet tests)\n"
        "set c := c1 c2;\nset h := h1 h2;\nset j := j1 j2;\n"
        "set m := \nm1\nm2\nm3\n;\n"
        f"set p := {' '.join(p for p, _, _ in ARRIVALS)};\n\n"
        "param CIM :=\nm1 50.5\nm2 60\nm3 120\n;\n"
        f"{cvm_text}"
        "param FCAP :=\nm1 2\nm2 3\nm3 6\n;\n"
        "param TT1 :=\nj1 1\nj2 2\n;\nparam TT3 :=\nj1 1\nj2 2\n;\n"
        f"param U1 :=\n{u1}\n;\n\nparam U3 :=\n{u3}\n;\n\n"
        f"param INC := \n{inc}\n;\n\n"
        "param FMAX := 1 ;\nparam FMIN := 0 ;\nparam TAD := 0 ;\nparam TLS := 1;\n"
        f"{extra}"
    )  # fmt: skip


def test_parse_sets_and_parameters() -> None:
    dat = parse_dat(dat_text(), "small.dat")
    assert dat.sets["m"] == ["m1", "m2", "m3"]
    assert dat.sets["p"] == [p for p, _, _ in ARRIVALS]
    assert dat.params["CIM"][("m1",)] == 50.5
    assert dat.params["U1"][("c2", "m3", "j2")] == 220
    assert dat.params["U3"][("m2", "h1", "j1")] == 300
    assert dat.params["INC"][("p8", "c2", "9")] == 1
    assert dat.scalars["TLS"] == 1 and "TMFE" not in dat.scalars
    assert dat.lines[("CIM", "m2")] == line_of(dat_text(), "m2 60")  # the line of that entry


def test_import_builds_the_authors_model(tmp_path: Path) -> None:
    """Directional prices per lane, CIM + CVM per day, 130 days, 2 sites, co-located returns."""
    path = tmp_path / "small.dat"
    path.write_text(dat_text())
    d, _ = import_ishipment(path)
    assert d.horizon_days == 130 and d.limits.max_sites == 2 and d.v2v_cap_days == 18
    assert d.durations.manufacturing_days == d.durations.qc_days == 7
    assert d.costs.materials_per_therapy == 10_476 and d.costs.qc_per_therapy == 9_312
    assert [(c.id, c.sizes[0].lines, c.sizes[0].fixed_cost_per_day) for c in d.candidates] == [
        ("m1", 2, 150.5),
        ("m2", 3, 210.0),
        ("m3", 6, 420.0),
    ]
    lane = next(x for x in d.lanes if (x.center, x.site, x.mode) == ("c2", "m1", "j2"))
    assert (lane.cost_out, lane.cost_back) == (200, 260)  # U1[c2,m1,j2], U3[m1,h2,j2]
    c1 = d.daily_arrivals(d.centers[0])
    assert c1[:4].tolist() == [2, 0, 1, 1] and c1.sum() == 4  # day t of the file is t-1


def test_missing_cvm_takes_the_models_default_per_line(tmp_path: Path) -> None:
    path = tmp_path / "nocvm.dat"
    path.write_text(dat_text(cvm=False))
    d, data = import_ishipment(path, cvm_per_line_day=1000)
    assert [c.sizes[0].fixed_cost_per_day for c in d.candidates] == [2050.5, 3060, 6120]
    assert "CVM not in the file" in data["assumption"]


def line_of(text: str, snippet: str) -> int:
    """1-based line of the first line holding ``snippet``."""
    return next(i for i, x in enumerate(text.splitlines(), start=1) if snippet in x)


@pytest.mark.parametrize(
    ("old", "new", "anchor", "message"),
    [
        ("m2 60\n", "m2 sixty\n", "m2 sixty", "CIM[m2]: 'sixty' is not a number ≥ 0"),
        ("m2 60\n", "m2 nan\n", "m2 nan", "CIM[m2]: 'nan' is not a number ≥ 0"),
        ("c2 m3 j2 220", "c2 m3 j2 -5", "c2 m3 j2 -5", "U1[c2,m3,j2]: '-5' is not a number ≥ 0"),
        ("c2 m3 j2 220", "c2 m3 j2", "param U1", "U1: 47 entries do not make rows of 4"),
        ("p8\tc2\t9\t1", "p8\tc5\t9\t1", "p8\tc5", "INC[p8,c5,9]: 'c5' is not in set c"),
        ("p8\tc2\t9\t1", "p8\tc2\t131\t1", "p8\tc2", "INC[p8,c2,131]: day '131' is not"),
        ("m3 120\n", "m3 120\nm1 7\n", "m1 7", "CIM[m1]: given twice (first on line 13)"),
        ("param TAD := 0 ;", "param TAX := 0 ;", "TAX", "TAX: unknown parameter"),
        ("param TLS := 1;", "param TLS := 1", "TLS", "param: statement not ended with ';'"),
        ("param FCAP :=", "param FCAP : a b :=", "FCAP", "expected 'set NAME := ...;'"),
        ("set p := p1", "set p := p1 p1", "set p", "p: member(s) listed twice: p1"),
        (
            "p8\tc2\t9\t1",
            "p8\tc2\t9\t2",
            "param INC",
            "INC: every patient arrives once; not so for p8 (2)",
        ),
        ("p7 p8", "p7 p8 p9", "param INC", "INC: every patient arrives once; not so for p9 (0)"),
    ],
)
def test_bad_files_name_the_line(
    tmp_path: Path, old: str, new: str, anchor: str, message: str
) -> None:
    text = dat_text().replace(old, new)
    path = tmp_path / "small.dat"
    path.write_text(text)
    with pytest.raises(DesignFileError) as info:
        import_ishipment(path)
    assert f"small.dat:{line_of(text, anchor)}: {message}" in str(info.value)


def test_missing_set_named(tmp_path: Path) -> None:
    path = tmp_path / "small.dat"
    path.write_text(dat_text().replace("set h := h1 h2;", ""))
    with pytest.raises(DesignFileError, match=r"small\.dat: h: set missing"):
        import_ishipment(path)


def test_model_level_problems_are_refused(tmp_path: Path) -> None:
    """A missing price and transit days that differ out and back are named, with lines."""
    text = dat_text().replace("m3\th2\tj1\t650\n", "")
    text = text.replace("param TT3 :=\nj1 1", "param TT3 :=\nj1 3")
    path = tmp_path / "small.dat"
    path.write_text(text)
    with pytest.raises(DesignFileError) as info:
        import_ishipment(path)
    assert f":{line_of(text, 'param TT3') + 1}: TT3[j1]: 3 days back but TT1[j1] is 1 out" in str(
        info.value
    )
    assert f":{line_of(text, 'param U3')}: U3: no value for [m3,h2,j1]" in str(info.value)


def enumerate_design(d: DesignInput) -> float:
    """Cheapest cost by enumeration: open one or two sites, each patient its best route.

    Valid where capacity never binds: every site opened has lines for every patient
    of a 7-day window (checked), so patients pick routes independently.
    """
    a, mq = d.durations.apheresis_days, d.durations.manufacturing_days + d.durations.qc_days
    best = float("inf")
    prices = {(x.center, x.site, x.mode): x.prices(0.0, 0.0) for x in d.lanes}
    days = {m.id: m.transit_days for m in d.modes}
    n = sum(float(d.daily_arrivals(c).sum()) for c in d.centers)
    for k in (1, 2):
        for sites in itertools.combinations(d.candidates, k):
            total = sum(s.sizes[0].fixed_cost(d.horizon_days) for s in sites)
            for c in d.centers:
                route = min(
                    prices[(c.id, s.id, o)][0] + prices[(c.id, s.id, b)][1]
                    for s in sites
                    for o in days
                    for b in days
                    if a + days[o] + mq + days[b] <= d.v2v_cap_days
                )
                total += route * float(d.daily_arrivals(c).sum())
            best = min(best, total)
    return best + n * (d.costs.materials_per_therapy + d.costs.qc_per_therapy)


def roomy(tmp_path: Path, extra: str = "") -> DesignInput:
    """The small file with lines enough everywhere (capacity never binds)."""
    text = dat_text(extra=extra).replace(
        "param FCAP :=\nm1 2\nm2 3\nm3 6", "param FCAP :=\nm1 9\nm2 9\nm3 9"
    )
    path = tmp_path / "roomy.dat"
    path.write_text(text)
    return import_ishipment(path)[0]  # fmt: skip


@pytest.mark.parametrize("scale", [1.0, 0.01, 10.0])
def test_directional_prices_match_enumeration(tmp_path: Path, scale: float) -> None:
    """The optimum with prices out and back is the enumerated one, and differs from the mean price.

    ``scale`` multiplies the site costs: cheap sites open two, dear sites one.
    """
    d = roomy(tmp_path)
    d = d.model_copy(
        update={
            "candidates": [
                c.model_copy(
                    update={
                        "sizes": [
                            s.model_copy(update={"fixed_cost_per_day": (s.fixed_cost_per_day or 0)
                                                 * scale})
                            for s in c.sizes
                        ]
                    }
                )
                for c in d.candidates
            ]
        }
    )  # fmt: skip
    r = solve_design(d)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(enumerate_design(d))
    # the same lanes priced at the mean of out and back, both ways
    mean = [
        x.model_copy(update={"cost_out": None, "cost_back": None,
                             "cost_per_shipment": sum(x.prices(0, 0)) / 2})
        for x in d.lanes
    ]  # fmt: skip
    d_mean = d.model_copy(update={"lanes": mean})
    r_mean = solve_design(d_mean)
    assert r_mean.objective == pytest.approx(enumerate_design(d_mean))
    assert r_mean.objective != pytest.approx(r.objective)


def test_directional_prices_choose_the_modes(tmp_path: Path) -> None:
    """Air out and ground back when air is cheap out and dear back (and the cap allows 1 + 2)."""
    lanes = [
        {"center": "c", "site": "s", "mode": "air", "cost_out": 100, "cost_back": 900},
        {"center": "c", "site": "s", "mode": "ground", "cost_out": 80, "cost_back": 150},
    ]
    d = DesignInput.model_validate(
        {
            "name": "dir",
            "horizon_days": 10,
            "v2v_cap_days": 18,
            "modes": [{"id": "air", "transit_days": 1}, {"id": "ground", "transit_days": 2}],
            "lanes": lanes,
            "candidates": [{"id": "s", "lat": 0, "lon": 0, "sizes": [{"lines": 9}]}],
            "centers": [{"id": "c", "lat": 0, "lon": 0, "patients_per_day": 1}],
        }
    )
    r = solve_design(d)
    # out air (100) + back ground (150) = 250 < ground out + air back (80 + 900), air both (1000)
    assert [(f["out_mode"], f["back_mode"]) for f in r.flows] == [("air", "ground")]
    assert r.cost["transport_out"] == 1000 and r.cost["transport_back"] == 1500
    flipped = [dict(x, cost_out=x["cost_back"], cost_back=x["cost_out"]) for x in lanes]
    r2 = solve_design(d.model_copy(update={"lanes": DesignInput.model_validate(
        {**d.model_dump(), "lanes": flipped}).lanes}))  # fmt: skip
    # now air back (100) and ground out (150): 250 again, the other way round
    assert [(f["out_mode"], f["back_mode"]) for f in r2.flows] == [("ground", "air")]


def test_lane_prices_validated() -> None:
    text = (
        "name: x\nv2v_cap_days: 18\nmodes: [{id: air, transit_days: 1}]\n"
        "lanes:\n  - {center: c, site: s, mode: air, cost_per_shipment: 5, cost_out: 1,\n"
        "     cost_back: 2}\n"
        "candidates: [{id: s, lat: 0, lon: 0, sizes: [{lines: 1}]}]\n"
        "centers: [{id: c, lat: 0, lon: 0, patients_per_day: 1}]\n"
    )
    with pytest.raises(DesignFileError) as info:
        parse_design(text, "d.yaml")
    assert "d.yaml:5: lanes[0]" in str(info.value) and "cost_per_shipment is unused" in str(
        info.value
    )
    one_way = text.replace(", cost_out: 1,\n     cost_back: 2}", ", cost_out: 1}")
    d = parse_design(one_way, "d.yaml")
    assert d.lanes[0].prices(0, 0) == (1, 5)


def test_import_then_solve_by_the_cli(tmp_path: Path) -> None:
    """The done-when of the issue: a file in the authors' format imports and solves."""
    from cartnet.cli import app

    path = tmp_path / "small.dat"
    path.write_text(dat_text())
    out = tmp_path / "small.yaml"
    runner = CliRunner()
    res = runner.invoke(app, ["design", "import-ishipment", str(path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["design", str(out), "--json"])
    assert res.exit_code == 0, res.output
    solved = json.loads(res.stdout)
    direct = runner.invoke(app, ["design", "solve", str(path), "--json"])
    assert json.loads(direct.stdout)["objective"] == pytest.approx(solved["objective"])
    assert solved["status"] == "optimal"
    yard = per_patient().solve_per_patient(import_ishipment(path)[0])
    assert yard.status == "optimal"
    assert solved["objective"] == pytest.approx(yard.objective, rel=1e-7)
    assert {s["site"]: s["lines"] for s in solved["sites"]} == yard.sites
    bad = tmp_path / "bad.dat"
    bad.write_text(dat_text().replace("m2 60\n", "m2 sixty\n"))
    res = runner.invoke(app, ["design", "import-ishipment", str(bad)])
    assert res.exit_code == 1 and "bad.dat:14: CIM[m2]: 'sixty'" in res.output


@pytest.mark.parametrize("lines", [(2, 3, 6), (1, 1, 2), (1, 1, 1)])
def test_per_patient_yardstick_agrees(tmp_path: Path, lines: tuple[int, int, int]) -> None:
    """The per-patient MILP and cartnet's flow MILP find the same optimum, capacity binding or not.

    With waiting forbidden (the authors' rigid timing) the optimum can only be dearer.
    """
    text = dat_text().replace("param FCAP :=\nm1 2\nm2 3\nm3 6", "param FCAP :=\n" + "\n".join(
        f"m{i + 1} {n}" for i, n in enumerate(lines)))  # fmt: skip
    path = tmp_path / "small.dat"
    path.write_text(text)
    d = import_ishipment(path)[0]
    r = solve_design(d)
    module = per_patient()
    y = module.solve_per_patient(d)
    if r.status == "infeasible":
        assert y.status == "infeasible"
        return
    assert r.status == y.status == "optimal"
    assert y.objective == pytest.approx(r.objective, rel=1e-7)
    rigid = module.solve_per_patient(d, wait=False)
    assert rigid.status == "infeasible" or rigid.objective >= y.objective - 1e-6


def test_per_patient_yardstick_agrees_on_a_builtin_instance() -> None:
    d = ishipment_instance(200)
    r = solve_design(d)
    y = per_patient().solve_per_patient(d)
    assert y.status == r.status == "optimal"
    assert y.objective == pytest.approx(r.objective, rel=1e-7)


def test_builtin_instances_follow_the_authors_structure() -> None:
    for level, sites in ((500, 6), (3000, 7)):
        d = ishipment_instance(level)
        assert d.horizon_days == 130 and d.limits.max_sites == 2
        assert len(d.candidates) == sites and all(len(c.sizes) == 1 for c in d.candidates)
        lines = [c.sizes[0].lines for c in d.candidates]
        assert lines[:6] == [4, 31, 10, 4, 31, 10]
        per_line = [(c.sizes[0].fixed_cost_per_day or 0) / c.sizes[0].lines for c in d.candidates]
        assert all(5_590 < x < 5_790 for x in per_line)  # capital + running: near flat per line
        arrivals = sum(d.daily_arrivals(c) for c in d.centers)
        assert arrivals.sum() == round(level * ARRIVAL_DAYS / 365)
        assert arrivals[ARRIVAL_DAYS:].sum() == 0 and arrivals.max() > arrivals.min()


def test_enumeration_bound_counts_combinations_within_the_gap() -> None:
    """At the default 0.01 % gap a combination within the gap is not searched; the bound says so.

    On ishipment-3000 a second combination is 0.004 % cheaper than the one kept: the
    reported bound must not exceed the true optimum (found with a 1e-6 gap).
    """
    d = ishipment_instance(3000)
    loose, tight = solve_design(d), solve_design(d, mip_gap=1e-6)
    assert tight.status == loose.status == "optimal"
    assert loose.bound is not None and tight.objective is not None
    assert loose.bound <= tight.objective + 1e-6 <= loose.objective + 1e-6
    assert loose.gap == pytest.approx((loose.objective - loose.bound) / loose.objective)
