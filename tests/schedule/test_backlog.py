"""Backlog files: the documented example loads; every bad order is named by its field path."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cartnet.network import Network
from cartnet.schedule.backlog import Backlog, BacklogError, load_backlog, parse_backlog
from cartnet.schedule.capacity import CapacityCalendar
from cartnet.schedule.optimizer import PlanStatus, greedy, optimize

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "backlog.json"


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "o-1",
        "center": "charite-berlin",
        "product": "tisagenlecleucel",
        "earliest_apheresis": "2020-09-03",
    }
    return {**base, **changes}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "backlog.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def problems(tmp_path: Path, net: Network, data: object) -> list[str]:
    with pytest.raises(BacklogError) as err:
        load_backlog(write(tmp_path, data), net)
    return [str(p) for p in err.value.problems]


def test_the_documented_example_is_valid(kymriah: Network) -> None:
    backlog = load_backlog(EXAMPLE, kymriah)
    assert backlog.as_of == date(2020, 9, 1)
    assert 10 <= len(backlog.orders) <= 20
    assert {o.scope.value for o in backlog.orders} == {"commercial", "clinical"}
    assert any(o.weight > 1 for o in backlog.orders)


def test_every_problem_is_named_with_file_and_field_path(tmp_path: Path, kymriah: Network) -> None:
    """All problems at once, each as ``file: orders[i].field: message``."""
    data = {
        "as_of": "2020-09-01",
        "orders": [
            order(id="a"),
            order(id="b", center="atlantis-general"),
            order(id="c", product="axi-cel"),
            order(id="d", earliest_apheresis="2020-08-30"),
            order(id="e", scope="clinical"),
            order(id="a"),
            order(id="f", weight=0),
            order(id="g", colour="blue"),
            order(id="h", scope="commercial", trial="BELINDA"),
            order(id="i", enrolled="2020-09-05"),
            order(id="j", earliest_apheresis="2020-02-30"),
        ],
    }
    found = problems(tmp_path, kymriah, data)
    name = str(tmp_path / "backlog.json")
    assert all(p.startswith(f"{name}: orders[") for p in found)
    text = "\n".join(found)
    # shape errors come first (pydantic), in one pass
    assert "orders[6].weight: Input should be greater than 0 (got 0)" in text
    assert "orders[7].colour: unknown key" in text
    assert "orders[10].earliest_apheresis:" in text
    # reference errors need a backlog of the right shape
    fixed = dict(data)
    fixed["orders"] = data["orders"][:6] + data["orders"][8:10]
    text = "\n".join(problems(tmp_path, kymriah, fixed))
    assert "orders[1].center: unknown treatment center 'atlantis-general'" in text
    assert "orders[2].product: unknown product 'axi-cel'" in text
    assert (
        "orders[3].earliest_apheresis: date in the past: 2020-08-30 is before as_of 2020-09-01"
        in text
    )
    assert "orders[4].trial: a clinical order needs the id of its trial" in text
    assert "orders[5].id: duplicate order id 'a' (also orders[0])" in text
    assert "orders[6].trial: a commercial order has no trial" in text
    assert "orders[7].enrolled: enrolled 2020-09-05 is after as_of 2020-09-01" in text


def test_the_center_must_be_qualified_and_fresh_material_needs_stability(
    tmp_path: Path, example: Network
) -> None:
    data = example.model_dump(mode="json", by_alias=True)
    data["products"].append({"id": "cart-y", "name": "CAR-T Y"})
    net = Network.model_validate(data)
    when = {"as_of": "2021-01-04", "earliest_apheresis": "2021-01-11"}
    found = problems(
        tmp_path,
        net,
        {
            "as_of": when["as_of"],
            "orders": [
                order(id="a", center="boston-general", product="cart-y",
                      earliest_apheresis=when["earliest_apheresis"]),
                order(id="b", center="boston-general", product="cart-x", material="fresh",
                      earliest_apheresis=when["earliest_apheresis"]),
            ],
        },
    )  # fmt: skip
    assert [p.split(": ", 1)[1] for p in found] == [
        "orders[0].product: treatment center 'boston-general' is not qualified for 'cart-y'",
        "orders[1].material: fresh material needs a stability window, and product 'cart-x' "
        "has none",
    ]


def test_broken_json_names_line_and_column(tmp_path: Path, kymriah: Network) -> None:
    path = tmp_path / "backlog.json"
    path.write_text('{"as_of": "2020-09-01",\n "orders": [,]}', encoding="utf-8")
    with pytest.raises(BacklogError, match=r"not valid JSON: .* \(line 2, column 13\)"):
        load_backlog(path, kymriah)


def test_duplicate_keys_missing_files_and_wrong_shapes_are_refused(
    tmp_path: Path, kymriah: Network
) -> None:
    with pytest.raises(BacklogError, match="duplicate key 'as_of'"):
        parse_backlog('{"as_of": "2020-09-01", "as_of": "2020-09-02"}', kymriah)
    with pytest.raises(BacklogError, match="no such file"):
        load_backlog(tmp_path / "missing.json", kymriah)
    with pytest.raises(BacklogError, match="a backlog is a JSON object"):
        parse_backlog("[1, 2]", kymriah)
    with pytest.raises(BacklogError, match="as_of: required field is missing"):
        parse_backlog('{"orders": []}', kymriah)


def test_an_empty_backlog_is_valid_and_gives_an_empty_plan(
    tmp_path: Path, kymriah: Network
) -> None:
    backlog = load_backlog(write(tmp_path, {"as_of": "2020-09-01", "orders": []}), kymriah)
    assert backlog == Backlog(as_of=date(2020, 9, 1))
    net = kymriah.with_scenario("after-ema-2020")
    cal = CapacityCalendar(net, date(2020, 9, 1), days=60)
    for plan in (optimize(net, cal, backlog), greedy(net, cal, backlog)):
        assert plan.assignments == [] and plan.unassigned == []
        assert plan.objective == 0.0
        assert plan.status in (PlanStatus.OPTIMAL, PlanStatus.FEASIBLE)
    assert optimize(net, cal, backlog).method == "none"
