"""The ISBT 128 keyboard entry check character K (ISO/IEC 7064 Mod 37-2).

ISBT 128 (ST-001 §7.5) prints a check character K beside the text of a Donation
Identification Number and of a Chain of Identity identifier, so that a person who types
the identifier by hand is caught when one character is wrong. K is the ISO/IEC 7064
Mod 37-2 check character: the characters ``0-9``, ``A-Z`` have the values 0-35 (``*``
is 36, and only ever a check character) and, for data characters with values
:math:`v_1 \\dots v_n`,

.. math::

    P = \\sum_{i=1}^{n} v_i \\, 2^{\\,n-i+1} \\bmod 37, \\qquad
    c = (1 - P) \\bmod 37, \\qquad K = \\text{alphabet}[c].

Appending K makes the pure-system checksum of the whole string equal to 1. The
arithmetic is python-stdnum's (``stdnum.iso7064.mod_37_2``): a well-kept library does
the job, so we only name the ISBT 128 uses.

The worked example of docs/background/domain.md §2, DIN ``G123498654321``, has check value 17 and so
check character ``H``; ST-001 Appendix A's example ``G123417654321`` gives ``A``:

>>> check_value("G123498654321"), check_character("G123498654321")
(17, 'H')
>>> check_character("G123417654321")
'A'
>>> has_valid_check_character("G123498654321H"), has_valid_check_character("G123498654312H")
(True, False)
"""

from __future__ import annotations

from stdnum.iso7064 import mod_37_2

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
"""Characters of ISO/IEC 7064 Mod 37-2, at the index of their value."""

DATA_CHARACTERS = ALPHABET[:-1]
"""Characters a checked string may contain (``*`` is only ever a check character)."""


def check_value(data: str) -> int:
    """The Mod 37-2 check value (0-36) of ``data`` (characters ``0-9``, ``A-Z`` only).

    >>> check_value("A999921123456")
    3
    """
    return ALPHABET.index(check_character(data))


def check_character(data: str) -> str:
    """The Mod 37-2 check character of ``data`` (characters ``0-9``, ``A-Z`` only).

    >>> check_character("W000009123456")  # ST-001 §7.4.1 label example
    'G'
    """
    _require_data_characters(data)
    return str(mod_37_2.calc_check_digit(data))


def has_valid_check_character(data_and_check: str) -> bool:
    """True when the last character is the Mod 37-2 check character of the others."""
    data, check = data_and_check[:-1], data_and_check[-1:]
    if not data or any(c not in DATA_CHARACTERS for c in data) or check not in ALPHABET:
        return False
    return bool(mod_37_2.is_valid(data_and_check))


def _require_data_characters(data: str) -> None:
    if not data:
        raise ValueError("a check character needs at least one data character")
    for i, c in enumerate(data, start=1):
        if c not in DATA_CHARACTERS:
            raise ValueError(f"{c!r} at character {i} is not one of 0-9, A-Z")
