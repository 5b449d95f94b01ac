"""The EU Single European Code: 40 characters, printed after 'SEC', built from a DIN."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartnet.identity import (
    CodingSystem,
    DonationIdentificationNumber,
    SecError,
    SingleEuropeanCode,
    TissueEstablishmentCode,
)

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

establishments = st.builds(
    TissueEstablishmentCode,
    st.text(UPPER, min_size=2, max_size=2),
    st.text(ALNUM, min_size=6, max_size=6),
)
secs = st.builds(
    SingleEuropeanCode,
    tissue_establishment=establishments,
    donation_number=st.text(ALNUM, min_size=13, max_size=13),
    coding_system=st.sampled_from(CodingSystem),
    product_number=st.text(ALNUM, min_size=7, max_size=7),
    split_number=st.text(ALNUM, min_size=3, max_size=3),
    expiry=st.none() | st.dates(),
)

ST012 = "SEC: PL001499Z549917123456 A00T041600320171231"
"""The eye-readable example of ICCBBA ST-012."""


def st012_sec() -> SingleEuropeanCode:
    return SingleEuropeanCode.from_din(
        DonationIdentificationNumber.parse("Z5499 17 123456"),
        tissue_establishment=TissueEstablishmentCode("PL", "001499"),
        product_code="T0416003",
        expiry=date(2017, 12, 31),
    )


def test_sec_built_from_a_din_matches_the_iccbba_example() -> None:
    """ISBT 128: coding system A, the DIN as donation number, 00 + PDC, split = t + ds."""
    sec = st012_sec()
    assert sec.eye_readable() == ST012
    assert sec.donation_identification_sequence == "PL001499Z549917123456"
    assert sec.product_identification_sequence == "A00T041600320171231"
    assert sec.code == "PL001499Z549917123456A00T041600320171231"
    assert sec.barcode_data() == "&,4PL001499Z549917123456A00T041600320171231"
    assert sec.coding_system is CodingSystem.ISBT_128
    assert sec.din == DonationIdentificationNumber.parse("Z549917123456")


def test_no_expiry_is_written_as_eight_zeros() -> None:
    """Annex VII: 00000000 when no expiry date applies; it reads back as None."""
    sec = SingleEuropeanCode.from_din(
        DonationIdentificationNumber.parse("G123498654321"),
        tissue_establishment=TissueEstablishmentCode("DE", "ABC123"),
        product_code="S1128A00",
        expiry=None,
    )
    assert sec.code.endswith("00000000")
    assert SingleEuropeanCode.parse(sec.eye_readable()).expiry is None


@pytest.mark.parametrize(
    "text",
    [
        ST012,
        "SEC PL001499Z549917123456 A00T041600320171231",
        "sec: PL001499Z549917123456 A00T041600320171231",
        "SEC:\nPL001499Z549917123456\nA00T041600320171231\n",
        "PL001499Z549917123456 A00T041600320171231",
        "PL001499Z549917123456A00T041600320171231",
        "&,4PL001499Z549917123456A00T041600320171231",
    ],
)
def test_printed_two_line_bare_and_scanned_forms_read_the_same(text: str) -> None:
    """Printed on one line or two, without the prefix, or from a DS038 bar code."""
    assert SingleEuropeanCode.parse(text) == st012_sec()


def test_a_code_that_itself_starts_with_sec_is_read_as_a_code() -> None:
    """A Swedish establishment number starting with C gives a bare code 'SEC...'."""
    code = "SEC00001" + "Z549917123456" + "A00T041600320171231"
    sec = SingleEuropeanCode.parse(code)
    assert str(sec.tissue_establishment) == "SEC00001"
    assert SingleEuropeanCode.parse(sec.eye_readable()) == sec


@pytest.mark.parametrize(
    ("text", "part", "position"),
    [
        ("SEC: pl001499Z549917123456 A00T041600320171231", "country code", 1),
        ("SEC: PL0014-9Z549917123456 A00T041600320171231", "tissue establishment number", 7),
        ("SEC: PL001499Z5499171234/6 A00T041600320171231", "unique donation number", 20),
        ("SEC: PL001499Z549917123456 X00T041600320171231", "coding system", 22),
        ("SEC: PL001499Z549917123456 A00T04.600320171231", "product number", 28),
        ("SEC: PL001499Z549917123456 A00T0416-0320171231", "split number", 30),
        ("SEC: PL001499Z549917123456 A00T04160032017123X", "expiry date", 40),
        ("SEC: PL001499Z549917123456 A00T041600320171331", "expiry date", 33),
        ("SEC: PL001499Z54991712345 A00T0416003201712310", "layout", None),
        ("SEC: PL001499Z549917123456", "layout", None),
        ("PL001499Z549917123456A00T0416003", "length", None),
        ("&,4PL001499Z549917123456A00T04160032017123", "length", None),
    ],
)
def test_invalid_sec_names_the_part_that_is_wrong(
    text: str, part: str, position: int | None
) -> None:
    """Each fault is attributed to its field of Annex VII, at its position in the 40."""
    with pytest.raises(SecError) as caught:
        SingleEuropeanCode.parse(text)
    assert caught.value.part == part
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("product_code", "part"),
    [
        ("T041600", "ISBT 128 product code"),
        ("t0416003", "ISBT 128 product code, Product Description Code"),
        ("T04-6003", "ISBT 128 product code, Product Description Code"),
        ("T0416-03", "ISBT 128 product code, type of donation"),
        ("T04160a3", "ISBT 128 product code, division"),
        ("T041600A", "ISBT 128 product code, division"),
    ],
)
def test_from_din_checks_the_isbt_product_code(product_code: str, part: str) -> None:
    """The product code must be ISBT 128's 8 characters αooootds."""
    with pytest.raises(SecError) as caught:
        SingleEuropeanCode.from_din(
            DonationIdentificationNumber.parse("Z549917123456"),
            tissue_establishment=TissueEstablishmentCode("PL", "001499"),
            product_code=product_code,
            expiry=None,
        )
    assert caught.value.part == part


def test_fields_of_the_wrong_length_are_refused() -> None:
    """Annex VII lengths are fixed: 13 for the donation number, 7 product, 3 split."""
    with pytest.raises(SecError, match="unique donation number: must be 13 characters"):
        SingleEuropeanCode(
            TissueEstablishmentCode("PL", "001499"), "Z54991712345", CodingSystem.EUTC,
            "0000001", "001", None,
        )  # fmt: skip
    with pytest.raises(SecError, match="tissue establishment code"):
        TissueEstablishmentCode("POL", "001499")


def test_a_donation_number_that_is_not_a_din_has_no_din() -> None:
    """A tissue establishment may number donations itself; then .din is None."""
    sec = SingleEuropeanCode.parse("BE000123" + "0000000000001" + "E0012345001" + "20300101")
    assert sec.din is None


@given(secs)
def test_the_sec_is_40_characters_printed_after_sec_and_a_space(sec: SingleEuropeanCode) -> None:
    """40 characters: 21 + 19; printed 'SEC: ' + 21 + ' ' + 19."""
    assert len(sec.code) == 40
    printed = sec.eye_readable()
    assert printed.startswith("SEC: ")
    donation, product = printed.removeprefix("SEC: ").split(" ")
    assert (len(donation), len(product)) == (21, 19)
    assert donation + product == sec.code
    assert len(printed) == len("SEC: ") + 40 + 1


@given(secs)
def test_parse_of_every_rendering_is_the_same_sec(sec: SingleEuropeanCode) -> None:
    """parse(format(x)) == x for the printed text, the 40 characters and DS038 data."""
    assert SingleEuropeanCode.parse(sec.eye_readable()) == sec
    assert SingleEuropeanCode.parse(sec.code) == sec
    assert SingleEuropeanCode.parse(str(sec)) == sec
    assert SingleEuropeanCode.parse(sec.barcode_data()) == sec
