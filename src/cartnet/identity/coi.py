"""The ISBT 128 Chain of Identity identifier (CoI identifier, data structure 040).

One autologous therapy, from the first apheresis to the infusion, carries one CoI
identifier: it is allocated at or before the first collection and links every
collection, bag and label of that therapy, so every handoff can scan it and verify the
product still belongs to its patient. Its data content is 15 characters
``CHαppppyynnnnnn`` (ST-001 v6.2.2 §2.4.40):

* ``CH``: the literal "CH";
* ``αpppp``: the Facility Identification Number (FIN) of the issuing organisation;
* ``yy``: two-digit nominal year of issue;
* ``nnnnnn``: six characters ``A-Z``, ``0-9`` assigned by the issuing organisation.

In a bar code it follows the data identifier ``&/``. Printed as text it needs the
keyboard entry check character K (ST-001 §7.5, Table 30: "required" for 040), the
ISO/IEC 7064 Mod 37-2 check over the data content.

**No patient data.** The identifier is a re-identification code in the sense of HIPAA
45 CFR 164.514(c): it must not be derived from information about the patient. The
allocators below therefore accept no patient field at all, only the issuing FIN and the
year, and make the sequence from a counter or from random draws. The link from a CoI
identifier to a patient is kept by the treatment center's side, apart (GDPR art. 4(5)).

>>> coi = ChainOfIdentityId.parse("&/CHG123426A1B2C3")
>>> coi.data_content, coi.check_character
('CHG123426A1B2C3', '4')
>>> coi.eye_readable()
'CH G1234 26 A1B2C3 4'
>>> ChainOfIdentityId.parse("CH G1234 26 A1B2CE 4")
Traceback (most recent call last):
...
cartnet.identity.errors.CoiError: CoI identifier 'CH G1234 26 A1B2CE 4': check character: \
'4' does not match the 15 characters (their check character is 'J'); a character was \
probably mistyped (character 16)
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema

from cartnet.identity._pydantic import string_schema
from cartnet.identity.check_character import ALPHABET, check_character
from cartnet.identity.errors import AllocationError, CoiError
from cartnet.identity.facility import FacilityId, fin_problem

DATA_IDENTIFIER = "&/"
LITERAL = "CH"
CONTENT_LENGTH = 15
"""Characters of the data content ``CHαppppyynnnnnn``."""
SEQUENCE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SEQUENCE_LENGTH = 6
SEQUENCE_COUNT = len(SEQUENCE_ALPHABET) ** SEQUENCE_LENGTH
"""Distinct sequences per FIN and year: 36⁶ = 2 176 782 336."""

# Positions (0-based, in the data content) of each part, for parsing and error reports.
_FIN = slice(2, 7)
_YEAR = slice(7, 9)
_SEQUENCE = slice(9, 15)


@dataclass(frozen=True, slots=True, order=True)
class ChainOfIdentityId:
    """One CoI identifier: issuing FIN, two-digit year of issue and 6-character sequence.

    ``year`` is the two-digit year as written (``26`` for 2026). New identifiers come
    from an allocator (:class:`SequentialCoiAllocator`, :class:`RandomCoiAllocator`);
    text from a scanner or a keyboard goes through :meth:`parse`.
    """

    facility: FacilityId
    year: int
    sequence: str

    def __post_init__(self) -> None:
        text = f"{self.facility} year {self.year} sequence {self.sequence!r}"
        if not 0 <= self.year <= 99:
            raise CoiError(text, "year", f"must be 0-99 (two digits), got {self.year}")
        problem = _sequence_problem(self.sequence)
        if problem is not None:
            why, index = problem
            position = None if index is None else _SEQUENCE.start + index + 1
            raise CoiError(text, "sequence", why, position=position)

    @property
    def data_content(self) -> str:
        """The 15 characters ``CHαppppyynnnnnn``: the identifier without data identifier."""
        return f"{LITERAL}{self.facility.code}{self.year:02d}{self.sequence}"

    @property
    def check_character(self) -> str:
        """The keyboard entry check character K, Mod 37-2 over the 15 data characters."""
        return check_character(self.data_content)

    def barcode_data(self) -> str:
        """Data structure 040 for a bar code: ``&/`` + the 15 characters."""
        return DATA_IDENTIFIER + self.data_content

    def eye_readable(self) -> str:
        """The printed text, ``CH FIN yy nnnnnn K``: grouped like the DIN (our choice)."""
        c = self.data_content
        return f"{c[:2]} {c[_FIN]} {c[_YEAR]} {c[_SEQUENCE]} {self.check_character}"

    def __str__(self) -> str:
        return self.data_content

    @classmethod
    def parse(cls, text: str, *, require_check_character: bool = False) -> ChainOfIdentityId:
        """The CoI identifier written or scanned in ``text``.

        Accepted forms (spaces are ignored):

        * bar code data ``&/CHG123426A1B2C3``;
        * the 15 data characters ``CHG123426A1B2C3``;
        * the 15 characters and the check character K, ``CH G1234 26 A1B2C3 4``.

        With ``require_check_character`` (keyboard entry) typed text must end in K (bar code
        data never carries K: Code 128 has its own check).
        Errors name the part that is wrong: data identifier, literal "CH", FIN, year,
        sequence or check character.
        """
        chars = "".join(text.split())
        barcode = chars.startswith("&")
        if barcode:
            if not chars.startswith(DATA_IDENTIFIER):
                raise CoiError(
                    text, "data identifier", f"a CoI bar code starts with {DATA_IDENTIFIER!r}"
                )
            chars = chars[len(DATA_IDENTIFIER) :]
        if not chars.startswith(LITERAL):
            # Checked before the length: a DIN or another code scanned in the wrong place
            # is then reported as "not a CoI identifier" rather than as a length problem.
            raise CoiError(
                text,
                "literal",
                f"a CoI identifier starts with {LITERAL!r}, found {chars[:2]!r}",
                position=1,
            )
        if barcode:
            if len(chars) != CONTENT_LENGTH:
                raise CoiError(
                    text,
                    "length",
                    f"expected {DATA_IDENTIFIER!r} and {CONTENT_LENGTH} characters, "
                    f"got {len(chars)}",
                )
        elif len(chars) not in (CONTENT_LENGTH, CONTENT_LENGTH + 1):
            raise CoiError(
                text,
                "length",
                f"expected {CONTENT_LENGTH} characters, or {CONTENT_LENGTH + 1} with the "
                f"check character, got {len(chars)}",
            )
        coi = cls._from_content(text, chars[:CONTENT_LENGTH])
        if barcode:
            return coi
        if len(chars) == CONTENT_LENGTH:
            if require_check_character:
                raise CoiError(
                    text,
                    "check character",
                    "missing; type the character printed in the box after the identifier",
                )
            return coi
        given = chars[CONTENT_LENGTH]
        if given not in ALPHABET:
            raise CoiError(
                text,
                "check character",
                f"{given!r} is not a check character (0-9, A-Z or *)",
                position=CONTENT_LENGTH + 1,
            )
        if given != coi.check_character:
            raise CoiError(
                text,
                "check character",
                f"{given!r} does not match the {CONTENT_LENGTH} characters (their check "
                f"character is {coi.check_character!r}); a character was probably mistyped",
                position=CONTENT_LENGTH + 1,
            )
        return coi

    @classmethod
    def _from_content(cls, text: str, content: str) -> ChainOfIdentityId:
        problem = fin_problem(content[_FIN])
        if problem is not None:
            part, why, position = problem
            raise CoiError(
                text,
                f"issuing facility identification number (FIN), {part}",
                why,
                position=None if position is None else _FIN.start + position,
            )
        for i in range(_YEAR.start, _YEAR.stop):
            if not ("0" <= content[i] <= "9"):
                raise CoiError(
                    text,
                    "year",
                    f"characters 8-9 must be digits; found {content[i]!r}",
                    position=i + 1,
                )
        sequence = content[_SEQUENCE]
        seq_problem = _sequence_problem(sequence)
        if seq_problem is not None:
            why, index = seq_problem
            position = None if index is None else _SEQUENCE.start + index + 1
            raise CoiError(text, "sequence", why, position=position)
        return cls(FacilityId(content[_FIN]), int(content[_YEAR]), sequence)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return string_schema(cls, cls.parse)


def _sequence_problem(sequence: str) -> tuple[str, int | None] | None:
    if len(sequence) != SEQUENCE_LENGTH:
        return (f"must be {SEQUENCE_LENGTH} characters, got {len(sequence)}", None)
    for i, c in enumerate(sequence):
        if c not in SEQUENCE_ALPHABET:
            if c.isalpha() and c.upper() in SEQUENCE_ALPHABET:
                return (f"{c!r} must be a capital letter", i)
            return (f"{c!r} is not allowed; use A-Z or 0-9", i)
    return None


def sequence_of(number: int) -> str:
    """The 6-character sequence for a number in ``[0, 36⁶)``: base 36, digits first.

    >>> sequence_of(0), sequence_of(35), sequence_of(36), sequence_of(SEQUENCE_COUNT - 1)
    ('000000', '00000Z', '000010', 'ZZZZZZ')
    """
    if not 0 <= number < SEQUENCE_COUNT:
        raise ValueError(f"sequence number must be 0-{SEQUENCE_COUNT - 1}, got {number}")
    chars = []
    for _ in range(SEQUENCE_LENGTH):
        number, digit = divmod(number, len(SEQUENCE_ALPHABET))
        chars.append(SEQUENCE_ALPHABET[digit])
    return "".join(reversed(chars))


class CoiAllocator(Protocol):
    """Hands out CoI identifiers that were never handed out before.

    Implementations take no patient information: only what identifies the issuer.
    """

    def allocate(self) -> ChainOfIdentityId:
        """A new CoI identifier."""
        ...


def _two_digit_year(year: int) -> int:
    if not 0 <= year <= 9999:
        raise ValueError(f"year must be a calendar year such as 2026, got {year}")
    return year % 100


class SequentialCoiAllocator:
    """CoI identifiers from a counter: ``000001``, ``000002``, ... ``ZZZZZZ`` (base 36).

    Never repeats as long as the caller persists :attr:`next_number` and builds the
    allocator again from it. Predictable: whoever sees two identifiers can tell how many
    therapies were started in between; use :class:`RandomCoiAllocator` where that matters.

    >>> allocator = SequentialCoiAllocator(FacilityId("G1234"), 2026, next_number=35)
    >>> [str(allocator.allocate()) for _ in range(2)]
    ['CHG12342600000Z', 'CHG123426000010']
    """

    def __init__(self, facility: FacilityId, year: int, *, next_number: int = 1) -> None:
        if not 0 <= next_number <= SEQUENCE_COUNT:
            raise ValueError(f"next_number must be 0-{SEQUENCE_COUNT}, got {next_number}")
        self.facility = facility
        self.year = year
        self._yy = _two_digit_year(year)
        self._next = next_number

    @property
    def next_number(self) -> int:
        """The counter value the next :meth:`allocate` will use (persist this)."""
        return self._next

    def allocate(self) -> ChainOfIdentityId:
        if self._next >= SEQUENCE_COUNT:
            raise AllocationError(
                f"all {SEQUENCE_COUNT} CoI sequences of {self.facility} for {self.year} "
                "are used; use another FIN"
            )
        coi = ChainOfIdentityId(self.facility, self._yy, sequence_of(self._next))
        self._next += 1
        return coi


class RandomCoiAllocator:
    """CoI identifiers with a random sequence, checked against those already issued.

    Each draw is uniform over the 36⁶ sequences of the FIN and year, from the given
    ``numpy.random.Generator`` (same seed, same identifiers: reproducible tests). A draw
    found in ``taken`` (anything with ``in``: a set, or a repository that asks the
    store) or already issued by this allocator is drawn again, at most ``max_attempts``
    times. With a million identifiers issued a draw collides with probability
    1/2177, so the limit is only reached when the space is nearly full or ``taken`` is
    wrong.

    Seed a running service from fresh entropy (``numpy.random.default_rng()``), not a
    fixed number: an allocator restarted with the seed it had before draws the same
    sequences again, finds each of them in ``taken`` and, after ``max_attempts`` draws,
    raises :class:`AllocationError` (it never repeats an identifier, but it stalls).

    >>> rng = np.random.default_rng(2026)
    >>> allocator = RandomCoiAllocator(FacilityId("G1234"), 2026, rng)
    >>> coi = allocator.allocate()
    >>> coi.facility.code, coi.year, len(coi.sequence)
    ('G1234', 26, 6)
    """

    def __init__(
        self,
        facility: FacilityId,
        year: int,
        rng: np.random.Generator,
        *,
        taken: Container[ChainOfIdentityId] = frozenset(),
        max_attempts: int = 64,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.facility = facility
        self.year = year
        self._yy = _two_digit_year(year)
        self._rng = rng
        self._taken = taken
        self._issued: set[ChainOfIdentityId] = set()
        self.max_attempts = max_attempts

    def allocate(self) -> ChainOfIdentityId:
        for _ in range(self.max_attempts):
            number = int(self._rng.integers(0, SEQUENCE_COUNT))
            coi = ChainOfIdentityId(self.facility, self._yy, sequence_of(number))
            if coi not in self._issued and coi not in self._taken:
                self._issued.add(coi)
                return coi
        raise AllocationError(
            f"no free CoI identifier for {self.facility} in {self.year} after "
            f"{self.max_attempts} random draws; check the set of issued identifiers"
        )
