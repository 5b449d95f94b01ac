"""Network files: every kind of mistake gets its file, line, field path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cartnet.network import NetworkFileError, load_network, parse_network


def problems_of(text: str) -> list[str]:
    with pytest.raises(NetworkFileError) as caught:
        parse_network(text, "net.yaml")
    return [str(p) for p in caught.value.problems]


def edited(example_path: Path, edit: object) -> str:
    """The example file with one edit applied to its data."""
    data = yaml.safe_load(example_path.read_text())
    edit(data)  # type: ignore[operator]
    return yaml.safe_dump(data, sort_keys=False)


def test_the_documented_example_is_valid(example_path: Path) -> None:
    net = load_network(example_path)
    assert net.name == "two-sites"
    assert len(net.sites) == 2 and len(net.treatment_centers) == 3 and len(net.scenarios) == 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["sites"][1]["approvals"][0].update(regulator="EMEA"),
            "sites[1].approvals[0].regulator: Input should be 'FDA', 'EMA'",
        ),
        (lambda d: d["sites"][0].update(colour="red"), "sites[0].colour: unknown key"),
        (lambda d: d["sites"][0].pop("lines"), "sites[0].lines: required field is missing"),
        (
            lambda d: d["sites"][0]["manufacturing"].update(sd=-1),
            "sites[0].manufacturing.sd: Input should be greater than 0 (got -1)",
        ),
        (
            lambda d: d["sites"][0].update(
                qc={"dist": "triangular", "low": 9, "mode": 8, "high": 14}
            ),
            "sites[0].qc: needs low <= mode <= high",
        ),
        (
            lambda d: d["sites"][0].update(qc={"dist": "gamma", "shape": 2}),
            "sites[0].qc: Input tag 'gamma' found using 'dist' does not match",
        ),
        (
            lambda d: d["sites"][0]["approvals"][0].update(scope="clinical"),
            "sites[0].approvals[0]: a clinical approval needs the trial id",
        ),
        (
            lambda d: d["sites"][0]["approvals"][0].update(end="2019-01-01"),
            "sites[0].approvals[0]: end 2019-01-01 is not after effective 2020-01-01",
        ),
        (lambda d: d["sites"][1].update(lat=123), "sites[1].lat: Input should be less than"),
        (
            lambda d: d["treatment_centers"][0].update(apheresis_per_day=0),
            "treatment_centers[0].apheresis_per_day: Input should be greater than or equal to 1",
        ),
        (
            lambda d: d["scenarios"][1]["changes"][0].update(op="set_linez"),
            "scenarios[1].changes[0]: Input tag 'set_linez' found using 'op'",
        ),
    ],
)
def test_structural_errors_name_the_field(example_path: Path, edit: object, expected: str) -> None:
    found = problems_of(edited(example_path, edit))
    assert any(expected in p for p in found), found
    assert all(p.startswith("net.yaml:") for p in found)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["sites"][1].update(id="newark"),
            "sites[1].id: duplicate id 'newark'",
        ),
        (
            lambda d: d["treatment_centers"][2].update(id="leiden"),
            "treatment_centers[2].id: 'leiden' is also a site id",
        ),
        (
            lambda d: d["sites"][0]["approvals"][0].update(product="cart-y"),
            "sites[0].approvals[0].product: unknown product 'cart-y'",
        ),
        (
            lambda d: d["treatment_centers"][0].update(market="USA"),
            "treatment_centers[0].market: unknown market 'USA'",
        ),
        (
            lambda d: d["treatment_centers"][1].update(country="US"),
            "treatment_centers[1].country: US is not a country of market 'EU'",
        ),
        (
            lambda d: d["treatment_centers"][0]["demand"][0].update(product="cart-y"),
            "treatment_centers[0].demand[0].product: center is not qualified for 'cart-y'",
        ),
        (
            lambda d: d["lanes"][0].update(destination="leidn"),
            "lanes[0].destination: unknown site or treatment center 'leidn'",
        ),
        (
            lambda d: d["lanes"].append(dict(d["lanes"][0])),
            "lanes[1]: duplicate lane paris-centre → leiden",
        ),
        (
            lambda d: d["markets"][1]["countries"].append("US"),
            "markets[1].countries[4]: US is already in market 'US'",
        ),
        (
            lambda d: d["markets"][1]["countries"].append("XX"),
            "markets[1].countries[4]: unknown ISO 3166 country code 'XX'",
        ),
        (
            lambda d: d["sites"][0]["approvals"].append(dict(d["sites"][0]["approvals"][0])),
            "sites[0].approvals[2]: overlaps approvals[0]",
        ),
        (
            lambda d: d["scenarios"][1]["changes"][0].update(site="leyden"),
            "scenarios[1].changes[0].site: unknown site 'leyden'",
        ),
    ],
)
def test_reference_and_duplicate_errors_name_the_field(
    example_path: Path, edit: object, expected: str
) -> None:
    found = problems_of(edited(example_path, edit))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once(example_path: Path) -> None:
    def two_mistakes(d: dict) -> None:  # type: ignore[type-arg]
        d["sites"][0].update(lines=-1)
        d["products"][0].update(oos_probability=2)

    assert len(problems_of(edited(example_path, two_mistakes))) == 2


def test_problems_carry_the_line_of_the_field(example_path: Path) -> None:
    text = example_path.read_text().replace("regulator: EMA\n", "regulator: EMEA\n", 1)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "EMEA" in t)
    assert problems_of(text) == [
        f"net.yaml:{line}: markets[1].regulator: Input should be 'FDA', 'EMA', 'Swissmedic', "
        "'MHRA', 'PMDA', 'NMPA', 'TGA' or 'Health Canada' (got 'EMEA')"
    ]


def test_a_key_written_twice_is_an_error(example_path: Path) -> None:
    text = example_path.read_text().replace("    lines: 4\n", "    lines: 4\n    lines: 5\n")
    [problem] = problems_of(text)
    assert "duplicate key 'lines'" in problem


def test_broken_yaml_and_wrong_shapes() -> None:
    assert "not valid YAML" in problems_of("sites: [\n")[0]
    assert "a network file is a mapping" in problems_of("- just\n- a list\n")[0]
    assert "name: required field is missing" in " ".join(problems_of("sites: []\n"))


def test_yaml_tags_that_run_code_are_refused() -> None:
    """The safe loader never builds Python objects from a file."""
    assert "not valid YAML" in problems_of("name: !!python/object/apply:os.system ['true']\n")[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match="no such file"):
        load_network(tmp_path / "nope.yaml")
