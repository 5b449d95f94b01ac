"""The packaged kymriah-2020 reference network as the seed and the domain page describe it."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.network import Network, Regulator, Scope, packaged_names
from cartnet.network.entities import Noted

AFTER = date(2020, 8, 1)


def test_it_is_packaged(kymriah: Network) -> None:
    assert "kymriah-2020" in packaged_names()
    assert [s.id for s in kymriah.sites] == [
        "morris-plains", "leipzig", "les-ulis", "stein", "shanghai", "kobe", "melbourne"
    ]  # fmt: skip
    assert {s.id for s in kymriah.scenarios} >= {"before-ema-2020", "after-ema-2020"}


def test_show_json_lists_seven_sites_on_four_continents_with_the_ema_approvals() -> None:
    result = CliRunner().invoke(
        app, ["network", "show", "kymriah-2020", "--scenario", "after-ema-2020", "--json"]
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data["sites"]) == 7
    assert data["continents"] == ["Asia", "Europe", "North America", "Oceania"]
    ema = {
        s["id"]
        for s in data["sites"]
        for a in s["approvals_in_force"]
        if a["regulator"] == "EMA" and a["scope"] == "commercial"
    }
    assert {"les-ulis", "stein"} <= ema


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("before-ema-2020", {"morris-plains", "leipzig"}),
        ("after-ema-2020", {"morris-plains", "leipzig", "les-ulis", "stein"}),
    ],
)
def test_who_may_make_for_an_eu_commercial_patient(
    kymriah: Network, scenario: str, expected: set[str]
) -> None:
    """An EU commercial patient may be made at Les Ulis after the EMA approval, not before."""
    net = kymriah.with_scenario(scenario)
    assert {s.id for s in net.eligible_sites("tisagenlecleucel", "EU", "commercial", AFTER)} == (
        expected
    )


def test_us_patients_only_where_the_fda_approved(kymriah: Network) -> None:
    sites = kymriah.eligible_sites("tisagenlecleucel", "US", Scope.COMMERCIAL, AFTER)
    assert [s.id for s in sites] == ["morris-plains"]
    for s in sites:
        assert any(a.regulator is Regulator.FDA for a in s.approvals)


def test_kobe_serves_japan_from_october_2020(kymriah: Network) -> None:
    def jp(on: date) -> set[str]:
        return {s.id for s in kymriah.eligible_sites("tisagenlecleucel", "JP", "commercial", on)}

    assert "kobe" not in jp(date(2020, 9, 1))
    assert "kobe" in jp(date(2020, 11, 1))


def test_every_figure_says_where_it_comes_from(kymriah: Network) -> None:
    """Each site, approval, center, demand and listed lane carries a source or an assumption."""
    items: list[tuple[str, Noted]] = []
    for s in kymriah.sites:
        items.append((f"site {s.id}", s))
        items += [(f"approval {s.id}/{a.regulator.value}", a) for a in s.approvals]
    for c in kymriah.treatment_centers:
        items.append((f"center {c.id}", c))
        items += [(f"demand {c.id}/{d.product}", d) for d in c.demand]
    items += [(f"lane {x.origin}->{x.destination}", x) for x in kymriah.lanes]
    items += [(f"scenario {x.id}", x) for x in kymriah.scenarios]
    items.append(("lane defaults", kymriah.lane_defaults))
    missing = [name for name, item in items if not (item.source or item.assumption)]
    assert missing == []


def test_demand_is_a_plausible_2020_2021_volume(kymriah: Network) -> None:
    """docs/background/domain.md §4: >5,000 patients treated by mid-2021; 2020 sales of USD 474M."""
    assert 1_200 <= kymriah.annual_demand() <= 2_500
    markets = {c.market for c in kymriah.treatment_centers}
    assert markets == {"US", "EU", "CH", "UK", "JP", "CN", "AU", "CA"}
