"""The ISBT 128 Facility Identification Number (FIN) of an issuing organisation.

ICCBBA assigns every registered facility a five-character FIN ``αpppp``. It opens the
Donation Identification Number (data structure 001) and the Chain of Identity
identifier (data structure 040), so it says who issued the number.

* ``α``: one of ``A-N``, ``P-Z`` or ``1-9``: the letter ``O`` and the digit ``0`` are never
  used, so they cannot be confused;
* ``pppp``: four digits.

ST-001 (v6.2.2, §2.4.1) notes that the first two ``p`` characters may one day become
alphanumeric (``A-N``, ``P-Z``, ``0-9``); current usage is numeric for all four, and so is
this module. Widening it is a change to :data:`FIN_REST` and :func:`fin_problem`.

>>> FacilityId("G1234")
FacilityId(code='G1234')
>>> FacilityId.parse("O1234")
Traceback (most recent call last):
...
cartnet.identity.errors.FacilityIdError: FIN 'O1234': first character: 'O' is never used \
(the letter O and the digit 0 are excluded); use A-N, P-Z or 1-9 (character 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema

from cartnet.identity._pydantic import string_schema
from cartnet.identity.errors import FacilityIdError

FIN_LENGTH = 5
FIN_FIRST = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"
"""Characters allowed first in a FIN: A-N, P-Z, 1-9."""
FIN_REST = "0123456789"
"""Characters allowed in positions 2-5 of a FIN (current ICCBBA usage: digits)."""


def fin_problem(code: str) -> tuple[str, str, int | None] | None:
    """What is wrong with a FIN, as (part, problem, 1-based position), or None when valid.

    Shared by the identifiers that embed a FIN, so each reports the fault in its own
    terms and at its own position.

    >>> fin_problem("G1234") is None
    True
    >>> fin_problem("G12A4")
    ('facility number', "characters 2-5 must be digits; found 'A'", 4)
    """
    if len(code) != FIN_LENGTH:
        return ("length", f"must be {FIN_LENGTH} characters, got {len(code)}", None)
    first = code[0]
    if first not in FIN_FIRST:
        if first in "O0":
            why = (
                f"{first!r} is never used (the letter O and the digit 0 are excluded); "
                "use A-N, P-Z or 1-9"
            )
        elif first.isalpha() and first.upper() in FIN_FIRST:
            why = f"{first!r} must be a capital letter"
        else:
            why = f"{first!r} is not allowed; use A-N, P-Z or 1-9"
        return ("first character", why, 1)
    for i, c in enumerate(code[1:], start=2):
        if c not in FIN_REST:
            return ("facility number", f"characters 2-5 must be digits; found {c!r}", i)
    return None


@dataclass(frozen=True, slots=True, order=True)
class FacilityId:
    """An ISBT 128 Facility Identification Number, e.g. ``G1234``.

    Construction validates; :meth:`parse` also accepts surrounding whitespace.
    """

    code: str

    def __post_init__(self) -> None:
        problem = fin_problem(self.code)
        if problem is not None:
            part, why, position = problem
            raise FacilityIdError(self.code, part, why, position=position)

    @classmethod
    def parse(cls, text: str) -> FacilityId:
        """The FIN written in ``text`` (leading and trailing whitespace ignored)."""
        return cls(text.strip())

    def __str__(self) -> str:
        return self.code

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return string_schema(cls, cls.parse)
