"""The twin's planning policies: greedy, and the rolling-horizon backlog optimizer."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cartnet.cli import app
from cartnet.schedule.policies import plan_backlog, policy_factory, policy_names
from cartnet.twin.policies import OrderRequest, SiteOption, WaitingOrder, make_policy


def option(site: str, base: float, free: int, interval: float, queued: int) -> SiteOption:
    wait = 0.0 if free else (queued + 1) * interval
    return SiteOption(site, wait, 1, 1, base + wait, 100, 1000, False, free, interval)


def waiting(k: int, site: str, options: list[SiteOption]) -> WaitingOrder:
    return WaitingOrder(OrderRequest(k, "c", "EU", "p", "commercial", None, 0.0), site, options)


def test_the_backlog_moves_to_a_site_with_free_places() -> None:
    """Four orders queue at a busy site; a slightly farther site has two free places."""
    orders = [
        waiting(k, "busy", [option("busy", 20, 0, 2.0, 3), option("free", 21, 2, 4.0, 0)])
        for k in range(4)
    ]
    moves = plan_backlog(orders)
    assert sorted(moves.values()) == ["free", "free"]
    assert len(moves) == 2


def test_nothing_moves_when_moving_does_not_pay() -> None:
    orders = [
        waiting(k, "near", [option("near", 20, 2, 1.0, 0), option("far", 30, 5, 1.0, 0)])
        for k in range(2)
    ]
    assert plan_backlog(orders) == {}


def test_orders_only_move_to_their_eligible_sites() -> None:
    orders = [
        waiting(0, "busy", [option("busy", 20, 0, 5.0, 4)]),  # no alternative
        waiting(1, "busy", [option("busy", 20, 0, 5.0, 4), option("other", 21, 1, 1.0, 0)]),
    ]
    assert plan_backlog(orders) == {1: "other"}


def test_every_policy_is_named_and_the_twin_makes_them_from_their_factories() -> None:
    assert policy_names() == ["earliest", "greedy", "nearest", "optimize"]
    assert make_policy(policy_factory("greedy")).name == "greedy"
    assert make_policy(policy_factory("optimize")).replan_every_days == 1.0
    with pytest.raises(KeyError, match=r"unknown policy 'fastest'.*known: earliest, greedy"):
        policy_factory("fastest")
    with pytest.raises(KeyError, match="pass other policies as factories"):
        make_policy("greedy")  # the twin alone does not know the scheduler's policies


def test_compare_greedy_and_optimize_on_common_random_numbers() -> None:
    result = CliRunner().invoke(
        app,
        ["compare", "kymriah-2020", "-s", "before-ema-2020", "-p", "greedy", "-p", "optimize",
         "-n", "2", "--horizon-days", "200", "--warmup-days", "30", "--workers", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # HiGHS's banner must not reach stdout
    greedy, optimize = doc["variants"]
    assert greedy["kpis"]["all.enrolled"] == optimize["kpis"]["all.enrolled"]
    assert optimize["kpis"]["all.ttt.mean"]["mean"] <= greedy["kpis"]["all.ttt.mean"]["mean"] + 0.5
