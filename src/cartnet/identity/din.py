"""The ISBT 128 Donation Identification Number (DIN, data structure 001).

A DIN names one collection (for CAR-T: one apheresis) uniquely for a hundred years. Its
13 characters are ``αppppyynnnnnn``:

* ``αpppp``: the Facility Identification Number (FIN) of the facility that assigned it;
* ``yy``: the last two digits of the nominal year of assignment;
* ``nnnnnn``: a six-digit sequence number within that FIN and year.

In a bar code the DIN is data structure ``=αppppyynnnnnnff``: the data identifier ``=``
(its second character ``α`` is also the DIN's first), the 13 characters and two flag
characters ``ff``, which are *not* part of the DIN (ST-001 §2.4.1, Table 3):

====== ==========================================================================
``00``  flag not used
01-19   process control defined by ICCBBA (type 1; e.g. 01-04 container 1-4 of a set)
20-59   process control defined by the local facility (type 2)
60-96   type 3: ``60 +`` the ISO/IEC 7064 Mod 37-2 check value of the 13 characters
97-99   reserved (and so are alphanumeric flags)
====== ==========================================================================

Printed, the DIN's text is followed by its keyboard entry check character K, the same
Mod 37-2 check over the 13 characters, drawn in a box. The worked example of
docs/background/domain.md §2:

>>> din = DonationIdentificationNumber.parse("G123498654321")
>>> din.check_character, din.check_value, din.check_flags
('H', 17, '77')
>>> din.eye_readable()
'G1234 98 654321 H'
>>> din.barcode_data()
'=G12349865432177'

A mistyped character is caught by K (and a scan by the type 3 flags):

>>> DonationIdentificationNumber.parse("G1234 98 654312 H")
Traceback (most recent call last):
...
cartnet.identity.errors.DinError: DIN 'G1234 98 654312 H': check character: 'H' does not \
match the 13 characters (their check character is 'J'); a character was probably mistyped \
(character 14)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema

from cartnet.identity._pydantic import string_schema
from cartnet.identity.check_character import ALPHABET, check_character, check_value
from cartnet.identity.errors import AllocationError, DinError
from cartnet.identity.facility import FacilityId, fin_problem

DIN_LENGTH = 13
"""Characters of the DIN proper (``αppppyynnnnnn``), without flags or check character."""
DATA_IDENTIFIER = "="
"""First character of data structure 001 (the second one is the DIN's own first)."""
CHECK_FLAG_OFFSET = 60
"""Type 3 flags are ``60 +`` the Mod 37-2 check value (ST-001 Table 3)."""
MAX_SEQUENCE = 999_999
FLAG_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXY"
"""Characters allowed in the flags: 0-9, A-H, J-N, P, R-Y (ST-001 §2.4.1)."""


class FlagType(Enum):
    """What the two flag characters of a scanned DIN bar code mean (ST-001 Table 3)."""

    NOT_USED = "not used"
    ICCBBA = "process control defined by ICCBBA (type 1)"
    LOCAL = "process control defined by the facility (type 2)"
    CHECK = "Mod 37-2 check value (type 3)"
    RESERVED = "reserved for future assignment"

    @classmethod
    def of(cls, flags: str) -> FlagType:
        """The type of a two-character flag value.

        >>> FlagType.of("00").name, FlagType.of("03").name, FlagType.of("77").name
        ('NOT_USED', 'ICCBBA', 'CHECK')
        """
        if not flags.isdigit():
            return cls.RESERVED
        value = int(flags)
        if value == 0:
            return cls.NOT_USED
        if value <= 19:
            return cls.ICCBBA
        if value <= 59:
            return cls.LOCAL
        if value <= 96:
            return cls.CHECK
        return cls.RESERVED


@dataclass(frozen=True, slots=True, order=True)
class DonationIdentificationNumber:
    """One ISBT 128 DIN: facility, two-digit nominal year and sequence number.

    ``year`` is the two-digit year as written (``98`` for 1998 or 2098); ``sequence`` is
    0-999 999. Use :meth:`parse` for text and :class:`DinAllocator` for new numbers.
    """

    facility: FacilityId
    year: int
    sequence: int

    def __post_init__(self) -> None:
        text = f"{self.facility} year {self.year} sequence {self.sequence}"
        if not 0 <= self.year <= 99:
            raise DinError(text, "year", f"must be 0-99 (two digits), got {self.year}")
        if not 0 <= self.sequence <= MAX_SEQUENCE:
            raise DinError(
                text, "sequence number", f"must be 0-{MAX_SEQUENCE}, got {self.sequence}"
            )

    @property
    def code(self) -> str:
        """The 13 characters ``αppppyynnnnnn``."""
        return f"{self.facility.code}{self.year:02d}{self.sequence:06d}"

    @property
    def check_character(self) -> str:
        """The keyboard entry check character K printed beside the DIN's text."""
        return check_character(self.code)

    @property
    def check_value(self) -> int:
        """The Mod 37-2 check value (0-36) of the 13 characters."""
        return check_value(self.code)

    @property
    def check_flags(self) -> str:
        """The type 3 flag characters: ``60 +`` the check value, ``'60'``-``'96'``."""
        return f"{CHECK_FLAG_OFFSET + self.check_value:02d}"

    def eye_readable(self) -> str:
        """The printed text: FIN, year, sequence and check character, space separated.

        ST-001 §7.4.1 leaves the grouping to national authorities; this is the usual
        ``FIN yy nnnnnn K``. Flags are not printed (type 3 flags never are; types 1 and
        2 are printed rotated or as an icon, which is the label renderer's business).
        """
        code = self.code
        return f"{code[:5]} {code[5:7]} {code[7:]} {self.check_character}"

    def barcode_data(self, flags: str | None = None) -> str:
        """Data structure 001 for a bar code: ``=`` + 13 characters + 2 flag characters.

        Without ``flags`` the type 3 check flags are used.

        >>> DonationIdentificationNumber.parse("G123498654321").barcode_data("01")
        '=G12349865432101'
        """
        if flags is None:
            flags = self.check_flags
        _require_flags(self, flags, f"{self.code}{flags}", position=DIN_LENGTH + 1)
        return f"{DATA_IDENTIFIER}{self.code}{flags}"

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(
        cls, text: str, *, require_check_character: bool = False
    ) -> DonationIdentificationNumber:
        """The DIN written or scanned in ``text``.

        Accepted forms (spaces are ignored, so any national grouping of the eye-readable
        text reads):

        * the 13 characters, ``G123498654321``;
        * the 13 characters and the check character K, ``G1234 98 654321 H``;
        * bar code data ``=G12349865432177`` (the flags are checked, and must match the
          DIN when they are type 3 check flags).

        With ``require_check_character`` (keyboard entry) typed text must end in K (bar code
        data never carries K: Code 128 has its own check).
        A wrong K raises :class:`DinError` naming the check character.
        """
        if text.strip().startswith(DATA_IDENTIFIER):
            return cls.read_barcode(text).din
        chars = "".join(text.split())
        if chars.startswith("&"):
            raise DinError(
                text,
                "data identifier",
                f"a DIN bar code starts with {DATA_IDENTIFIER!r}; {chars[:2]!r} starts "
                "another ISBT 128 data structure (a CoI identifier is '&/')",
                position=1,
            )
        if len(chars) not in (DIN_LENGTH, DIN_LENGTH + 1):
            raise DinError(
                text,
                "length",
                f"expected {DIN_LENGTH} characters, or {DIN_LENGTH + 1} with the check "
                f"character, got {len(chars)}",
            )
        din = cls._from_code(text, chars[:DIN_LENGTH])
        if len(chars) == DIN_LENGTH:
            if require_check_character:
                raise DinError(
                    text,
                    "check character",
                    "missing; type the character printed in the box after the DIN",
                )
            return din
        given = chars[DIN_LENGTH]
        if given not in ALPHABET:
            raise DinError(
                text,
                "check character",
                f"{given!r} is not a check character (0-9, A-Z or *)",
                position=DIN_LENGTH + 1,
            )
        if given != din.check_character:
            raise DinError(
                text,
                "check character",
                f"{given!r} does not match the 13 characters (their check character is "
                f"{din.check_character!r}); a character was probably mistyped",
                position=DIN_LENGTH + 1,
            )
        return din

    @classmethod
    def read_barcode(cls, data: str) -> DinBarcode:
        """The DIN and flags of scanned data structure 001, ``=αppppyynnnnnnff``.

        >>> scan = DonationIdentificationNumber.read_barcode("=G12349865432177")
        >>> str(scan.din), scan.flags, scan.flag_type.name
        ('G123498654321', '77', 'CHECK')
        """
        raw = data.strip()
        if not raw.startswith(DATA_IDENTIFIER):
            raise DinError(data, "data identifier", "a DIN bar code starts with '='")
        content = raw[len(DATA_IDENTIFIER) :]
        if len(content) != DIN_LENGTH + 2:
            raise DinError(
                data,
                "length",
                f"expected '=' and {DIN_LENGTH + 2} characters (13 of the DIN, 2 flags), "
                f"got {len(content)}",
            )
        din = cls._from_code(data, content[:DIN_LENGTH])
        flags = content[DIN_LENGTH:]
        _require_flags(din, flags, data, position=DIN_LENGTH + 1)
        return DinBarcode(din, flags)

    @classmethod
    def _from_code(cls, text: str, code: str) -> DonationIdentificationNumber:
        problem = fin_problem(code[:5])
        if problem is not None:
            part, why, position = problem
            raise DinError(
                text, f"facility identification number (FIN), {part}", why, position=position
            )
        for part, start, end in (("year", 5, 7), ("sequence number", 7, DIN_LENGTH)):
            for i in range(start, end):
                if not ("0" <= code[i] <= "9"):
                    raise DinError(
                        text,
                        part,
                        f"characters {start + 1}-{end} must be digits; found {code[i]!r}",
                        position=i + 1,
                    )
        return cls(FacilityId(code[:5]), int(code[5:7]), int(code[7:]))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return string_schema(cls, cls.parse)


@dataclass(frozen=True, slots=True)
class DinBarcode:
    """A scanned DIN bar code: the DIN and its two flag characters."""

    din: DonationIdentificationNumber
    flags: str

    @property
    def flag_type(self) -> FlagType:
        return FlagType.of(self.flags)


def _require_flags(
    din: DonationIdentificationNumber, flags: str, text: str, *, position: int
) -> None:
    if len(flags) != 2:
        raise DinError(text, "flag characters", f"must be 2 characters, got {len(flags)}")
    for i, c in enumerate(flags):
        if c not in FLAG_CHARACTERS:
            raise DinError(
                text,
                "flag characters",
                f"{c!r} is not allowed (0-9, A-H, J-N, P, R-Y)",
                position=position + i,
            )
    if FlagType.of(flags) is FlagType.CHECK and flags != din.check_flags:
        raise DinError(
            text,
            "flag characters",
            f"check flags {flags} do not match the 13 characters (expected "
            f"{din.check_flags}); the scan or the label is corrupt",
            position=position,
        )


class DinAllocator:
    """Hands out new DINs for one facility and nominal year, in sequence.

    The allocator holds only a counter: the caller persists :attr:`next_sequence` (the
    store's job) and builds the allocator again from it, so a number is never issued
    twice. Sequence numbers start at 1; after 999 999 the year's numbers are used up and
    :class:`AllocationError` is raised.

    >>> allocator = DinAllocator(FacilityId("G1234"), 2098, next_sequence=654_321)
    >>> allocator.allocate().eye_readable()
    'G1234 98 654321 H'
    >>> allocator.next_sequence, allocator.remaining
    (654322, 345678)
    """

    def __init__(self, facility: FacilityId, year: int, *, next_sequence: int = 1) -> None:
        if not 0 <= year <= 9999:
            raise ValueError(f"year must be a calendar year such as 2026, got {year}")
        if not 0 <= next_sequence <= MAX_SEQUENCE + 1:
            raise ValueError(f"next_sequence must be 0-{MAX_SEQUENCE + 1}, got {next_sequence}")
        self.facility = facility
        self.year = year
        self._next = next_sequence

    @property
    def next_sequence(self) -> int:
        """The sequence number the next :meth:`allocate` will use (persist this)."""
        return self._next

    @property
    def remaining(self) -> int:
        """How many DINs are left for this facility and year."""
        return MAX_SEQUENCE + 1 - self._next

    def allocate(self) -> DonationIdentificationNumber:
        """The next DIN of the sequence."""
        if self._next > MAX_SEQUENCE:
            raise AllocationError(
                f"all {MAX_SEQUENCE} DIN sequence numbers of {self.facility} for "
                f"{self.year} are used; use another FIN"
            )
        din = DonationIdentificationNumber(self.facility, self.year % 100, self._next)
        self._next += 1
        return din
