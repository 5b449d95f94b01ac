"""Treatment-center calendars: closed weekdays, public holidays per country, and their errors."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cartnet.network import Network, parse_network
from cartnet.network.files import NetworkFileError


def edited(example_path: Path, edit: Any) -> str:
    data = yaml.safe_load(example_path.read_text())
    edit(data)
    return yaml.safe_dump(data, sort_keys=False)


def with_calendars(data: dict[str, Any]) -> None:
    data["center_calendar"] = {"closed_weekdays": ["sat", "sun"]}
    data["public_holidays"] = {
        "US": ["2021-07-05"],
        "FR": ["2021-07-14"],
        "DE": ["2021-10-04"],
    }


def test_centers_close_on_weekends_and_their_countrys_holidays(example_path: Path) -> None:
    net = parse_network(edited(example_path, with_calendars), "net.yaml")
    paris = net.center_days("paris-centre")
    assert not paris.is_open(date(2021, 7, 14))  # Bastille Day, a Wednesday
    assert net.center_days("boston-general").is_open(date(2021, 7, 14))
    assert not net.center_days("boston-general").is_open(date(2021, 7, 5))
    assert not paris.is_open(date(2021, 7, 17))  # a Saturday
    assert paris.next_open(date(2021, 7, 17)) == date(2021, 7, 19)


def test_a_center_may_keep_its_own_calendar(example_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        with_calendars(data)
        data["treatment_centers"][1]["calendar"] = {
            "closed_weekdays": ["sun"],
            "public_holidays": False,
        }

    net = parse_network(edited(example_path, edit), "net.yaml")
    paris = net.center_days("paris-centre")
    assert paris.is_open(date(2021, 7, 14)) and paris.is_open(date(2021, 7, 17))
    assert not paris.is_open(date(2021, 7, 18))


def test_without_calendars_centers_are_always_open(example: Network) -> None:
    days = example.center_days("paris-centre")
    start = date(2021, 1, 1)
    assert all(days.is_open(start + timedelta(d)) for d in range(400))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d.update(center_calendar={"closed_weekdays": ["sunday"]}),
            "center_calendar.closed_weekdays[0]: Input should be 'mon'",
        ),
        (
            lambda d: d.update(public_holidays={"FR": ["2021-02-30"]}),
            "public_holidays.FR[0]: Input should be a valid date",
        ),
        (
            lambda d: d.update(public_holidays={"XX": ["2021-01-01"]}),
            "public_holidays.XX: unknown ISO 3166 country code 'XX'",
        ),
        (
            lambda d: d.update(center_calendar={"public_holidays": True}, public_holidays={}),
            "treatment_centers[0].country: the center keeps public holidays but none are "
            "listed for US",
        ),
        (
            lambda d: d["treatment_centers"][2].update(calendar={"closed_weekdays": ["sat"]}),
            "treatment_centers[2].calendar: the center keeps public holidays but none are "
            "listed for DE",
        ),
        (
            lambda d: d["treatment_centers"][0].update(
                calendar={"closed_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
            ),
            "treatment_centers[0].calendar: every weekday is closed",
        ),
        (
            lambda d: d["treatment_centers"][0].update(calendar={"holidays": True}),
            "treatment_centers[0].calendar.holidays: unknown key",
        ),
    ],
)
def test_bad_calendars_are_reported_with_file_line_and_path(
    example_path: Path, edit: Any, expected: str
) -> None:
    with pytest.raises(NetworkFileError) as caught:
        parse_network(edited(example_path, edit), "net.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("net.yaml:") for p in problems)


def test_every_reference_center_has_its_countrys_holidays(kymriah: Network) -> None:
    """kymriah-2020 closes centers on weekends and national holidays (one sample per market)."""
    christmas = date(2020, 12, 25)
    for center in kymriah.treatment_centers:
        days = kymriah.center_days(center.id)
        assert not days.is_open(date(2020, 12, 5))  # a Saturday
        assert days.closed_dates, center.id
        if center.country not in ("CN", "JP"):
            assert not days.is_open(christmas), center.id


def test_open_days_agrees_with_is_open_day_by_day(kymriah: Network, example: Network) -> None:
    """The vectorised mask the twin and the capacity calendar use is ``is_open`` per day."""
    start = date(2020, 7, 30)
    for center in ("charite-berlin", "dana-farber", "ncc-tokyo"):
        days = kymriah.center_days(center)
        mask = days.open_days(start, 700)
        assert mask.tolist() == [days.is_open(start + timedelta(d)) for d in range(700)]
    for site in (kymriah.site("leipzig").calendar, example.site("leiden").calendar):
        assert site.shutdowns or site.closed_dates
        assert site.open_days(start, 800).tolist() == [
            site.is_open(start + timedelta(d)) for d in range(800)
        ]
