"""Numbers in command-line tables as people read them.

No scientific notation (``11,370`` not ``1.137e+04``), shares as percentages, a
plural only when there are several, and no confidence interval reaching below zero
for a figure that cannot be negative: the normal-approximation interval is clipped
at zero and the table says so.
"""

from __future__ import annotations

from typing import Any

from cartnet.report.twin_summary import clipped, interval


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 replication``, ``20 replications``.

    >>> plural(1, "replication"), plural(20, "replication")
    ('1 replication', '20 replications')
    """
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def number(x: float) -> str:
    """A figure with digits that matter and thousands separated, never ``e+04``.

    >>> number(11370.4), number(42.123), number(0.5), number(-3.14159)
    ('11,370', '42.1', '0.50', '-3.14')
    """
    size = abs(x)
    if size >= 1000:
        return f"{x:,.0f}"
    if size >= 10:
        return f"{x:,.1f}"
    return f"{x:.2f}"


def percent(x: float) -> str:
    """A share as a percentage.

    >>> percent(0.1234), percent(0.0004)
    ('12.3 %', '0.04 %')
    """
    return f"{100 * x:.1f} %" if abs(x) >= 0.001 else f"{100 * x:.2f} %"


def estimate(e: dict[str, Any], share: bool = False, non_negative: bool = True) -> str:
    """``mean [low, high]`` of a KPI estimate, clipped (and marked) to what the figure
    can be: a level is not negative, a share not above 100 %. A skewed estimate shows its
    bootstrap interval, marked ``*``; a rare one says so instead of ``0 [0, 0]``.

    >>> estimate({"mean": 0.2, "ci_low": -0.1, "ci_high": 0.5})
    '0.20 [0.00†, 0.50]'
    >>> estimate({"mean": 0.02, "ci_low": 0.01, "ci_high": 0.03}, share=True)
    '2.0 % [1.0 %, 3.0 %]'
    >>> estimate({"mean": 0.9, "ci_low": 0.8, "ci_high": 1.03}, share=True)
    '90.0 % [80.0 %, 100.0 %†]'
    >>> estimate({"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "flag": "too_few_events"})
    '0.00 (too few events)'
    >>> estimate({"mean": 3.2, "ci_low": 1.0, "ci_high": 5.4, "flag": "skewed",
    ...           "boot_low": 1.9, "boot_high": 6.1})
    '3.20 [1.90, 6.10]*'
    """
    show = percent if share else number
    if e.get("mean") is None:
        return "–"
    if e.get("flag") == "too_few_events":
        return f"{show(e['mean'])} (too few events)"
    bounds = interval(e)
    if bounds is None:
        return show(e["mean"])
    low, high, low_mark, high_mark = clipped(bounds, share=share, level=non_negative)
    mark = "*" if e.get("flag") == "skewed" else ""
    return f"{show(e['mean'])} [{show(low)}{low_mark}, {show(high)}{high_mark}]{mark}"
