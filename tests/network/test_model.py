"""The network answers: which sites may make product P for market M, scope S, on date D?"""

from __future__ import annotations

from datetime import date

import pytest

from cartnet.network import Network, Scope


def ids(sites: list) -> list[str]:  # type: ignore[type-arg]
    return [s.id for s in sites]


def test_approval_in_force_from_its_effective_date(example: Network) -> None:
    """Leiden's EMA commercial approval starts 2021-03-01: before that only Newark serves the EU."""
    assert ids(example.eligible_sites("cart-x", "EU", "commercial", date(2021, 2, 28))) == [
        "newark"
    ]
    assert ids(example.eligible_sites("cart-x", "EU", Scope.COMMERCIAL, date(2021, 3, 1))) == [
        "newark",
        "leiden",
    ]


def test_us_patients_only_where_the_fda_approved(example: Network) -> None:
    assert ids(example.eligible_sites("cart-x", "US", "commercial", date(2021, 6, 1))) == ["newark"]


def test_clinical_patients_need_the_sites_trial_approval(example: Network) -> None:
    """A clinical approval covers its own trial only, and never commercial patients."""
    on = date(2021, 1, 4)
    assert ids(example.eligible_sites("cart-x", "EU", "clinical", on, trial="XT-201")) == ["leiden"]
    assert example.eligible_sites("cart-x", "EU", "clinical", on, trial="OTHER-1") == []
    assert example.eligible_sites("cart-x", "US", "clinical", on, trial="XT-201") == []


def test_approval_end_date_is_exclusive(example: Network) -> None:
    """An approval that ends on 2021-05-01 no longer covers that day."""
    data = example.model_dump(mode="json", by_alias=True)
    data["sites"][0]["approvals"][1]["end"] = "2021-05-01"
    net = Network.model_validate(data)
    assert "newark" in ids(net.eligible_sites("cart-x", "EU", "commercial", date(2021, 4, 30)))
    assert "newark" not in ids(net.eligible_sites("cart-x", "EU", "commercial", date(2021, 5, 1)))


def test_a_site_without_lines_serves_nobody(example: Network) -> None:
    net = example.with_scenario("no-leiden-commercial")
    data = net.model_dump(mode="json", by_alias=True)
    data["sites"][0]["lines"] = 0
    data["applied_scenario"] = None
    assert (
        Network.model_validate(data).eligible_sites("cart-x", "US", "commercial", date(2021, 6, 1))
        == []
    )


def test_unknown_names_are_explained(example: Network) -> None:
    with pytest.raises(KeyError, match=r"unknown market 'JP' \(known: EU, US\)"):
        example.eligible_sites("cart-x", "JP", "commercial", date(2021, 1, 4))
    with pytest.raises(KeyError, match="unknown product 'cart-z'"):
        example.eligible_sites("cart-z", "US", "commercial", date(2021, 1, 4))


def test_indexes_and_totals(example: Network) -> None:
    assert example.site("leiden").lines == 2
    assert example.center("paris-centre").market == "EU"
    assert example.place("leiden") == ("NL", 52.1601, 4.497)
    assert example.annual_demand() == pytest.approx(240)
    assert example.continents() == ["Europe", "North America"]
