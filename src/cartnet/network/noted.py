"""The small types every part of a network file shares: ids, country codes, notes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
]
"""Ids are short slugs (``les-ulis``, ``tisagenlecleucel``) so they read well in files and URLs."""

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Noted(BaseModel):
    """Where a figure comes from: a ``source`` for sourced facts, an ``assumption`` otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    assumption: str | None = None
