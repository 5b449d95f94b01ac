"""Scenarios are overlays: the base stays, the result is a new validated network."""

from __future__ import annotations

from datetime import date

import pytest

from cartnet.network import Network, NetworkError, Scenario, ScenarioError


def apply(net: Network, *changes: dict[str, object]) -> Network:
    return net.applying(Scenario.model_validate({"id": "what-if", "changes": list(changes)}))


def test_removing_an_approval_changes_who_may_serve(example: Network) -> None:
    after = example.with_scenario("no-leiden-commercial")
    on = date(2021, 6, 1)
    assert [s.id for s in example.eligible_sites("cart-x", "EU", "commercial", on)] == [
        "newark",
        "leiden",
    ]
    assert [s.id for s in after.eligible_sites("cart-x", "EU", "commercial", on)] == ["newark"]
    assert after.applied_scenario == "no-leiden-commercial"
    assert example.applied_scenario is None  # the base is untouched


def test_lines_and_demand_growth(example: Network) -> None:
    net = example.with_scenario("bigger-leiden")
    assert net.site("leiden").lines == 4
    assert {d.growth_per_year for c in net.centers_in("EU") for d in c.demand} == {0.3}
    assert {d.growth_per_year for c in net.centers_in("US") for d in c.demand} == {0.0}


def test_scale_demand_for_one_market(example: Network) -> None:
    net = apply(example, {"op": "scale_demand", "market": "EU", "factor": 2})
    assert net.annual_demand() == pytest.approx(120 + 2 * 120)


def test_add_and_remove_sites(example: Network) -> None:
    site = example.site("leiden").model_dump(mode="json", by_alias=True)
    site.update(id="lyon", name="Lyon", city="Lyon", country="FR", lat=45.76, lon=4.84)
    net = apply(example, {"op": "add_site", "site": site}, {"op": "remove_site", "site": "leiden"})
    assert [s.id for s in net.sites] == ["newark", "lyon"]
    assert net.lanes == []  # the Paris-Leiden lane went with Leiden


def test_change_approval_dates(example: Network) -> None:
    net = apply(
        example,
        {
            "op": "set_approval_dates",
            "site": "leiden",
            "product": "cart-x",
            "regulator": "EMA",
            "scope": "commercial",
            "effective": "2021-01-01",
        },
    )
    assert "leiden" in [
        s.id for s in net.eligible_sites("cart-x", "EU", "commercial", date(2021, 1, 4))
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"op": "set_lines", "site": "leyden", "lines": 3}, "unknown site 'leyden'"),
        (
            {
                "op": "remove_approval",
                "site": "newark",
                "product": "cart-x",
                "regulator": "MHRA",
                "scope": "commercial",
            },
            "has no MHRA commercial approval",
        ),
        ({"op": "scale_demand", "market": "JP", "factor": 2}, "selects no demand"),
        (
            {
                "op": "add_approval",
                "site": "newark",
                "approval": {
                    "product": "cart-x",
                    "regulator": "FDA",
                    "scope": "commercial",
                    "effective": "2020-01-01",
                },
            },
            "already has this approval",
        ),
    ],
)
def test_changes_that_do_not_apply_are_explained(
    example: Network, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        apply(example, change)


def test_the_applied_network_is_validated_again(example: Network) -> None:
    """Adding an approval for a product the network does not know fails like a file would."""
    with pytest.raises(NetworkError, match="unknown product 'cart-q'"):
        apply(
            example,
            {
                "op": "add_approval",
                "site": "newark",
                "approval": {
                    "product": "cart-q",
                    "regulator": "FDA",
                    "scope": "commercial",
                    "effective": "2020-01-01",
                },
            },
        )
