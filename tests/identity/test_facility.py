"""The Facility Identification Number: five characters, and a clear word when it is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet.identity import FacilityId, FacilityIdError
from cartnet.identity.facility import FIN_FIRST

fins = st.builds(
    lambda first, digits: FacilityId(first + digits),
    st.sampled_from(FIN_FIRST),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
)


@pytest.mark.parametrize("code", ["G1234", "A9999", "19999", "Z0000", "N0001", "P1234"])
def test_registered_forms_are_accepted(code: str) -> None:
    """A letter A-N or P-Z, or a digit 1-9, then four digits, is a FIN."""
    assert FacilityId(code).code == code
    assert str(FacilityId.parse(f"  {code}\n")) == code


@pytest.mark.parametrize(
    ("code", "part", "position", "words"),
    [
        ("O1234", "first character", 1, "letter O and the digit 0 are excluded"),
        ("01234", "first character", 1, "letter O and the digit 0 are excluded"),
        ("g1234", "first character", 1, "must be a capital letter"),
        ("#1234", "first character", 1, "use A-N, P-Z or 1-9"),
        ("G12A4", "facility number", 4, "must be digits; found 'A'"),
        ("G123", "length", None, "must be 5 characters, got 4"),
        ("G12345", "length", None, "must be 5 characters, got 6"),
    ],
)
def test_invalid_fin_names_the_part_and_position(
    code: str, part: str, position: int | None, words: str
) -> None:
    """The error says which character is wrong and what is allowed there."""
    with pytest.raises(FacilityIdError) as caught:
        FacilityId(code)
    assert caught.value.part == part
    assert caught.value.position == position
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


@given(fins)
def test_parse_of_the_printed_fin_is_the_same_fin(fin: FacilityId) -> None:
    """parse(str(fin)) == fin for every valid FIN."""
    assert FacilityId.parse(str(fin)) == fin
