"""Errors for identifiers that do not parse or cannot be allocated.

A scanner or a keyboard hands us text; when it is not a valid identifier the person at
the bench needs to know *which part* is wrong (the facility number, the year, the
sequence, the check character), not just that it is wrong. Every parse error therefore
carries the kind of identifier, the text as given, the part at fault and, where one
character is to blame, its 1-based position among the identifier's data characters:
spaces of the eye-readable form, the ``SEC:`` prefix and bar code data identifiers
(``=`` of a DIN, ``&/`` of a CoI identifier, ``&,4`` of a SEC) are not counted.

All of them are ``ValueError``: pydantic turns them into validation errors with field
paths, and a caller that does not care which identifier failed can catch one class.
"""

from __future__ import annotations


class IdentifierError(ValueError):
    """A text that is not a valid identifier of the given kind.

    >>> err = IdentifierError("DIN", "G1234 98 65432I", "sequence number", "must be digits",
    ...                       position=13)
    >>> str(err)
    "DIN 'G1234 98 65432I': sequence number: must be digits (character 13)"
    >>> err.part, err.position
    ('sequence number', 13)
    """

    def __init__(
        self, kind: str, text: str, part: str, problem: str, *, position: int | None = None
    ) -> None:
        self.kind = kind
        self.text = text
        self.part = part
        self.problem = problem
        self.position = position
        where = f" (character {position})" if position is not None else ""
        super().__init__(f"{kind} {text!r}: {part}: {problem}{where}")


class FacilityIdError(IdentifierError):
    """An ISBT 128 Facility Identification Number (FIN) that is not valid."""

    def __init__(self, text: str, part: str, problem: str, *, position: int | None = None):
        super().__init__("FIN", text, part, problem, position=position)


class DinError(IdentifierError):
    """A Donation Identification Number that is not valid."""

    def __init__(self, text: str, part: str, problem: str, *, position: int | None = None):
        super().__init__("DIN", text, part, problem, position=position)


class CoiError(IdentifierError):
    """A Chain of Identity identifier that is not valid."""

    def __init__(self, text: str, part: str, problem: str, *, position: int | None = None):
        super().__init__("CoI identifier", text, part, problem, position=position)


class SecError(IdentifierError):
    """A Single European Code that is not valid."""

    def __init__(self, text: str, part: str, problem: str, *, position: int | None = None):
        super().__init__("SEC", text, part, problem, position=position)


class AllocationError(RuntimeError):
    """No new identifier can be handed out (sequence used up, or no free value found)."""
