"""The EU Single European Code (SEC) for tissues and cells.

Directive 2006/86/EC, as amended by Commission Directive (EU) 2015/565 (Annex VII),
requires a 40-character code on tissues and cells distributed in the EU:

================================ ===================================== ======
donation identification sequence ISO 3166-1 country code                2 alpha
(21 characters)                  tissue establishment number            6 alnum
                                 unique donation number                13 alnum
product identification sequence  coding system: E EUTC, A ISBT 128,     1 alpha
(19 characters)                  B Eurocode
                                 product number                         7 alnum
                                 split number                           3 alnum
                                 expiry date YYYYMMDD (00000000: none)  8 digits
================================ ===================================== ======

It is printed preceded by "SEC", the two sequences separated by a single space (or on
two lines). ISBT 128 carries the same 40 characters in a bar code as data structure 038,
``&,4`` + the code.

With ISBT 128 (ICCBBA ST-012) the unique donation number is the 13-character DIN, the
product number is ``00`` + the 5-character Product Description Code, and the split
number is the last three characters of the 8-character ISBT 128 Product Code (type of
donation and divisions). ST-012's example, a DIN ``Z5499 17 123456`` of tissue
establishment ``PL001499``, product code ``T0416003``, expiring 31 Dec 2017:

>>> from datetime import date
>>> from cartnet.identity.din import DonationIdentificationNumber
>>> sec = SingleEuropeanCode.from_din(
...     DonationIdentificationNumber.parse("Z549917123456"),
...     tissue_establishment=TissueEstablishmentCode.parse("PL001499"),
...     product_code="T0416003",
...     expiry=date(2017, 12, 31),
... )
>>> sec.eye_readable()
'SEC: PL001499Z549917123456 A00T041600320171231'
>>> len(sec.code)
40
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema

from cartnet.identity._pydantic import string_schema
from cartnet.identity.din import DonationIdentificationNumber
from cartnet.identity.errors import IdentifierError, SecError

SEC_LENGTH = 40
DONATION_SEQUENCE_LENGTH = 21
PRODUCT_SEQUENCE_LENGTH = 19
PREFIX = "SEC"
PRINTED_PREFIX = "SEC: "
"""What precedes the code in print. The directive asks for the acronym "SEC"; the colon
and space follow the example of ICCBBA ST-012."""
DATA_IDENTIFIER = "&,4"
"""ISBT 128 data identifier of data structure 038 (the SEC in a bar code)."""
NO_EXPIRY = "00000000"

_ALPHA = string.ascii_uppercase
# The directive says "alphanumeric"; ISBT 128 data structure 038 allows A-Z, a-z and 0-9
# (the last character of an ISBT 128 product code, part of the split number, is lower case).
_ALNUM = string.ascii_uppercase + string.ascii_lowercase + string.digits


class CodingSystem(StrEnum):
    """The product coding system named by the first character of the product sequence."""

    EUTC = "E"
    ISBT_128 = "A"
    EUROCODE = "B"


# (part, start, end, allowed characters, what they are) of the 40-character code.
_PARTS: tuple[tuple[str, int, int, str, str], ...] = (
    ("country code", 0, 2, _ALPHA, "capital letters (ISO 3166-1 alpha-2)"),
    ("tissue establishment number", 2, 8, _ALNUM, "letters or digits"),
    ("unique donation number", 8, 21, _ALNUM, "letters or digits"),
    ("coding system", 21, 22, "EAB", "E (EUTC), A (ISBT 128) or B (Eurocode)"),
    ("product number", 22, 29, _ALNUM, "letters or digits"),
    ("split number", 29, 32, _ALNUM, "letters or digits"),
    ("expiry date", 32, 40, string.digits, "digits YYYYMMDD"),
)


def _check_parts(text: str, code: str, first: int, last: int) -> None:
    """Raise SecError for the first bad character among code[first:last]."""
    for part, start, end, allowed, what in _PARTS:
        for i in range(max(start, first), min(end, last)):
            if code[i] not in allowed:
                raise SecError(
                    text,
                    part,
                    f"characters {start + 1}-{end} must be {what}; found {code[i]!r}",
                    position=i + 1,
                )


@dataclass(frozen=True, slots=True, order=True)
class TissueEstablishmentCode:
    """The EU tissue establishment code: ISO country code and 6-character number.

    >>> TissueEstablishmentCode.parse("PL001499")
    TissueEstablishmentCode(country='PL', number='001499')
    """

    country: str
    number: str

    def __post_init__(self) -> None:
        text = f"{self.country}{self.number}"
        if len(self.country) != 2 or len(self.number) != 6:
            raise SecError(
                text,
                "tissue establishment code",
                "must be a 2-letter country code and a 6-character number, got "
                f"{len(self.country)} and {len(self.number)} characters",
            )
        _check_parts(text, text, 0, 8)

    @classmethod
    def parse(cls, text: str) -> TissueEstablishmentCode:
        """The code written as 8 characters, e.g. ``PL001499`` (whitespace ignored)."""
        chars = "".join(text.split())
        if len(chars) != 8:
            raise SecError(
                text,
                "tissue establishment code",
                f"must be 8 characters (country code and number), got {len(chars)}",
            )
        return cls(chars[:2], chars[2:])

    def __str__(self) -> str:
        return f"{self.country}{self.number}"


@dataclass(frozen=True, slots=True, order=True)
class SingleEuropeanCode:
    """One Single European Code: donation and product identification sequences."""

    tissue_establishment: TissueEstablishmentCode
    donation_number: str
    coding_system: CodingSystem
    product_number: str
    split_number: str
    expiry: date | None

    def __post_init__(self) -> None:
        lengths = (
            ("unique donation number", self.donation_number, 13),
            ("product number", self.product_number, 7),
            ("split number", self.split_number, 3),
        )
        for part, value, length in lengths:
            if len(value) != length:
                raise SecError(repr(self), part, f"must be {length} characters, got {len(value)}")
        if not isinstance(self.coding_system, CodingSystem):
            raise SecError(repr(self), "coding system", "must be a CodingSystem")
        _check_parts(self.code, self.code, 8, 32)

    @property
    def donation_identification_sequence(self) -> str:
        """The first 21 characters: country, tissue establishment, unique donation number."""
        return f"{self.tissue_establishment}{self.donation_number}"

    @property
    def product_identification_sequence(self) -> str:
        """The last 19 characters: coding system, product, split number, expiry date."""
        e = self.expiry
        expiry = NO_EXPIRY if e is None else f"{e.year:04d}{e.month:02d}{e.day:02d}"
        return f"{self.coding_system}{self.product_number}{self.split_number}{expiry}"

    @property
    def code(self) -> str:
        """The 40 characters, without separator (also the content of data structure 038)."""
        return self.donation_identification_sequence + self.product_identification_sequence

    def eye_readable(self) -> str:
        """The printed form: ``SEC:``, a space, the donation sequence, a space, the product
        sequence."""
        return (
            f"{PRINTED_PREFIX}{self.donation_identification_sequence} "
            f"{self.product_identification_sequence}"
        )

    def barcode_data(self) -> str:
        """ISBT 128 data structure 038: ``&,4`` + the 40 characters."""
        return DATA_IDENTIFIER + self.code

    @property
    def din(self) -> DonationIdentificationNumber | None:
        """The unique donation number read as an ISBT 128 DIN, or None when it is not one."""
        try:
            return DonationIdentificationNumber.parse(self.donation_number)
        except IdentifierError:
            return None

    def __str__(self) -> str:
        return self.code

    @classmethod
    def from_din(
        cls,
        din: DonationIdentificationNumber,
        *,
        tissue_establishment: TissueEstablishmentCode,
        product_code: str,
        expiry: date | None,
    ) -> SingleEuropeanCode:
        """The SEC of an ISBT 128 labelled product (coding system A).

        ``product_code`` is the 8-character ISBT 128 Product Code ``αooootds`` (data
        structure 003 without its ``=<``): Product Description Code ``αoooo``, type of
        donation ``t`` and divisions ``ds``. The SEC's product number is ``00`` + the
        Product Description Code and its split number is ``tds`` (ICCBBA ST-012).
        ``expiry`` None is written 00000000.
        """
        check_isbt_product_code(product_code)
        return cls(
            tissue_establishment=tissue_establishment,
            donation_number=din.code,
            coding_system=CodingSystem.ISBT_128,
            product_number="00" + product_code[:5],
            split_number=product_code[5:],
            expiry=expiry,
        )

    @classmethod
    def parse(cls, text: str) -> SingleEuropeanCode:
        """The SEC in ``text``: printed, bare, or scanned.

        Accepted forms:

        * printed: ``SEC`` (a colon optional), then the 21- and 19-character sequences
          separated by whitespace (a space or a line break);
        * the 40 characters alone;
        * ISBT 128 bar code data ``&,4`` + the 40 characters.
        """
        stripped = text.strip()
        compact = "".join(stripped.split())
        if stripped.startswith(DATA_IDENTIFIER):
            code = stripped[len(DATA_IDENTIFIER) :]
            if len(code) != SEC_LENGTH:
                raise SecError(
                    text, "length", f"expected '&,4' and {SEC_LENGTH} characters, got {len(code)}"
                )
        elif len(compact) == SEC_LENGTH:
            # The 40 characters, perhaps with the space between the sequences. Checked
            # before the printed form: a Swedish code can itself begin "SEC...".
            code = compact
        elif compact.upper().startswith(PREFIX):
            rest = stripped[len(PREFIX) :].removeprefix(":")
            sequences = rest.split()
            if [len(s) for s in sequences] != [DONATION_SEQUENCE_LENGTH, PRODUCT_SEQUENCE_LENGTH]:
                raise SecError(
                    text,
                    "layout",
                    f"after 'SEC' expected a {DONATION_SEQUENCE_LENGTH}-character donation "
                    f"sequence and a {PRODUCT_SEQUENCE_LENGTH}-character product sequence "
                    "separated by a space, got "
                    + (" + ".join(str(len(s)) for s in sequences) or "nothing"),
                )
            code = "".join(sequences)
        else:
            raise SecError(
                text,
                "length",
                f"expected {SEC_LENGTH} characters, 'SEC' and the two sequences, or '&,4' "
                f"and {SEC_LENGTH} characters; got {len(compact)} characters",
            )
        _check_parts(text, code, 0, SEC_LENGTH)
        expiry_text = code[32:]
        expiry: date | None = None
        if expiry_text != NO_EXPIRY:
            try:
                expiry = date(int(expiry_text[:4]), int(expiry_text[4:6]), int(expiry_text[6:]))
            except ValueError as err:
                raise SecError(
                    text,
                    "expiry date",
                    f"{expiry_text} is not a date YYYYMMDD ({err})",
                    position=33,
                ) from None
        return cls(
            tissue_establishment=TissueEstablishmentCode(code[:2], code[2:8]),
            donation_number=code[8:21],
            coding_system=CodingSystem(code[21]),
            product_number=code[22:29],
            split_number=code[29:32],
            expiry=expiry,
        )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return string_schema(cls, cls.parse)


def check_isbt_product_code(product_code: str) -> None:
    """Validate an 8-character ISBT 128 Product Code ``αooootds`` (ST-001 §2.4.3)."""
    rules = (
        ("Product Description Code", 0, 1, _ALPHA, "a capital letter"),
        (
            "Product Description Code",
            1,
            5,
            string.ascii_uppercase + string.digits,
            "capital letters or digits",
        ),
        ("type of donation", 5, 6, _ALNUM, "a letter or digit"),
        ("division", 6, 7, string.ascii_uppercase + string.digits, "a capital letter or digit"),
        ("division", 7, 8, string.ascii_lowercase + string.digits, "a small letter or digit"),
    )
    if len(product_code) != 8:
        raise SecError(
            product_code,
            "ISBT 128 product code",
            f"must be 8 characters (Product Description Code, type of donation, divisions), "
            f"got {len(product_code)}",
        )
    for part, start, end, allowed, what in rules:
        for i in range(start, end):
            if product_code[i] not in allowed:
                raise SecError(
                    product_code,
                    f"ISBT 128 product code, {part}",
                    f"character {i + 1} must be {what}; found {product_code[i]!r}",
                    position=i + 1,
                )
