"""Field errors as people read them: ``sites[3].approvals[0].regulator: unknown key``.

One wording for pydantic's validation errors wherever cartnet reads input
(network files, backlogs, settings), so a planner sees the same kind of message
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def field_path(parts: Sequence[str | int]) -> str:
    """``("sites", 3, "lines")`` → ``sites[3].lines``.

    >>> field_path(["sites", 3, "approvals", 0, "regulator"])
    'sites[3].approvals[0].regulator'
    """
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def field_message(err: Any) -> str:
    """The message of one pydantic error, with the bad value when it is short."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    if "input" in err and not isinstance(err["input"], dict | list):
        message += f" (got {err['input']!r})"
    return message
