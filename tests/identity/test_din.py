"""Donation Identification Numbers: check character, flags, parsing, allocation."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from cartnet.identity import (
    AllocationError,
    DinAllocator,
    DinError,
    DonationIdentificationNumber,
    FacilityId,
    FlagType,
)
from cartnet.identity.check_character import ALPHABET
from cartnet.identity.facility import FIN_FIRST

fins = st.builds(
    lambda first, digits: FacilityId(first + digits),
    st.sampled_from(FIN_FIRST),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
)
dins = st.builds(
    DonationIdentificationNumber,
    fins,
    st.integers(0, 99),
    st.integers(0, 999_999),
)


def keyed(din: DonationIdentificationNumber) -> str:
    """The 13 characters and the check character, as typed without spaces."""
    return din.code + din.check_character


def test_domain_worked_example() -> None:
    """The worked example of docs/background/domain.md §2: check character H, flags 77."""
    din = DonationIdentificationNumber.parse("G123498654321")
    assert (din.facility, din.year, din.sequence) == (FacilityId("G1234"), 98, 654_321)
    assert din.check_character == "H"
    assert din.check_value == 17
    assert din.check_flags == "77"
    assert din.eye_readable() == "G1234 98 654321 H"
    assert din.barcode_data() == "=G12349865432177"


@pytest.mark.parametrize(
    ("code", "check"),
    [
        ("G123417654321", "A"),  # ST-001 Appendix A worked example (flags 70)
        ("A999818123456", "N"),  # ST-001 §7.5.1.1 printing example
        ("W000009123456", "G"),  # ST-001 §7.4.1 flag printing example
        ("A999921123456", "3"),  # ST-001 Figure 2
    ],
)
def test_check_characters_of_the_iccbba_examples(code: str, check: str) -> None:
    """Our check character agrees with the examples printed in ISBT 128 ST-001."""
    assert DonationIdentificationNumber.parse(code).check_character == check


def test_appendix_a_type_3_flags() -> None:
    """ST-001 Appendix A: check value 10 is carried in the bar code as flags 70."""
    din = DonationIdentificationNumber.parse("G123417654321")
    assert (din.check_value, din.check_flags) == (10, "70")


@pytest.mark.parametrize(
    "text",
    [
        "G123498654321",
        "G123498654321H",
        "G1234 98 654321 H",
        "  G1234 98 654321  ",
        "G12 349 865 4321 H",
        "=G12349865432177",
        "=G12349865432100",
    ],
)
def test_every_written_or_scanned_form_reads_as_the_same_din(text: str) -> None:
    """Keyboard text, eye-readable text (any grouping) and bar code data all parse."""
    assert DonationIdentificationNumber.parse(text) == DonationIdentificationNumber(
        FacilityId("G1234"), 98, 654_321
    )


def test_national_grouping_from_st001_reads() -> None:
    """ST-001 §7.4.1 allows national groupings such as 'A123 4140 12346'."""
    assert DonationIdentificationNumber.parse("A123 4140 12346").code == "A123414012346"


def test_wrong_check_character_is_reported_as_a_mistyping() -> None:
    """A mistyped digit is caught: the error names the check character and the right one."""
    with pytest.raises(DinError) as caught:
        DonationIdentificationNumber.parse("G1234 98 654312 H")
    assert caught.value.part == "check character"
    assert caught.value.position == 14
    assert "their check character is 'J'" in str(caught.value)


def test_keyboard_entry_can_require_the_check_character() -> None:
    """With require_check_character, a DIN typed without its K is refused."""
    with pytest.raises(DinError, match="check character: missing"):
        DonationIdentificationNumber.parse("G1234 98 654321", require_check_character=True)
    din = DonationIdentificationNumber.parse("G1234 98 654321 H", require_check_character=True)
    assert din.sequence == 654_321


@pytest.mark.parametrize(
    ("text", "part", "position"),
    [
        ("O1234 98 654321", "facility identification number (FIN), first character", 1),
        ("G12B4 98 654321", "facility identification number (FIN), facility number", 4),
        ("G1234 9X 654321", "year", 7),
        ("G1234 98 65432I", "sequence number", 13),
        ("G1234 98 654321 ?", "check character", 14),
        ("G1234 98 65432", "length", None),
        ("G1234 98 654321 HH", "length", None),
        ("=G12349865432176", "flag characters", 14),
        ("=G123498654321I0", "flag characters", 14),
        ("=G1234986543217", "length", None),
    ],
)
def test_invalid_din_names_the_part_and_position(
    text: str, part: str, position: int | None
) -> None:
    """Each fault is attributed to FIN, year, sequence, check character, flags or length."""
    with pytest.raises(DinError) as caught:
        DonationIdentificationNumber.parse(text)
    assert caught.value.part == part
    assert caught.value.position == position
    assert caught.value.text == text


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        ("00", FlagType.NOT_USED),
        ("01", FlagType.ICCBBA),
        ("19", FlagType.ICCBBA),
        ("25", FlagType.LOCAL),
        ("77", FlagType.CHECK),
        ("97", FlagType.RESERVED),
        ("A1", FlagType.RESERVED),
    ],
)
def test_scanned_flags_are_kept_and_classified(flags: str, kind: FlagType) -> None:
    """A bar code's flags are returned with their ST-001 Table 3 meaning."""
    scan = DonationIdentificationNumber.read_barcode(f"=G123498654321{flags}")
    assert scan.din.code == "G123498654321"
    assert (scan.flags, scan.flag_type) == (flags, kind)


def test_check_flags_that_do_not_match_reject_the_scan() -> None:
    """Type 3 flags (60-96) must be 60 + the check value, else the scan is corrupt."""
    with pytest.raises(DinError, match=r"check flags 76 do not match .*expected 77"):
        DonationIdentificationNumber.read_barcode("=G12349865432176")


def test_a_barcode_without_the_data_identifier_is_refused() -> None:
    """read_barcode wants data structure 001, which starts with '='."""
    with pytest.raises(DinError) as caught:
        DonationIdentificationNumber.read_barcode("G12349865432177")
    assert caught.value.part == "data identifier"


def test_barcode_data_with_process_control_flags() -> None:
    """Type 1 or 2 flags can be written instead of the check flags; bad ones are refused."""
    din = DonationIdentificationNumber.parse("G123498654321")
    assert din.barcode_data("01") == "=G12349865432101"
    with pytest.raises(DinError, match="flag characters"):
        din.barcode_data("7")
    with pytest.raises(DinError, match="check flags 70"):
        din.barcode_data("70")


def test_out_of_range_parts_are_refused_on_construction() -> None:
    """Year is two digits, sequence six."""
    fin = FacilityId("G1234")
    with pytest.raises(DinError, match="year"):
        DonationIdentificationNumber(fin, 100, 1)
    with pytest.raises(DinError, match="sequence number"):
        DonationIdentificationNumber(fin, 26, 1_000_000)


def test_allocator_hands_out_the_sequence_and_can_resume() -> None:
    """DINs come in sequence; an allocator rebuilt from next_sequence goes on without repeats."""
    first = DinAllocator(FacilityId("G1234"), 2026)
    issued = [first.allocate() for _ in range(3)]
    assert [d.code for d in issued] == ["G123426000001", "G123426000002", "G123426000003"]
    resumed = DinAllocator(FacilityId("G1234"), 2026, next_sequence=first.next_sequence)
    assert resumed.allocate().code == "G123426000004"


def test_allocator_stops_when_the_years_numbers_are_used() -> None:
    """After sequence 999999 no DIN is left for that FIN and year."""
    allocator = DinAllocator(FacilityId("G1234"), 2026, next_sequence=999_999)
    assert allocator.allocate().sequence == 999_999
    assert allocator.remaining == 0
    with pytest.raises(AllocationError, match="used"):
        allocator.allocate()


@settings(max_examples=50)
@given(fins, st.integers(2000, 2099), st.integers(1, 999_900), st.integers(1, 50))
def test_every_allocated_din_validates_and_its_check_character_is_stdnums(
    fin: FacilityId, year: int, start: int, count: int
) -> None:
    """Allocated DINs are valid: K is python-stdnum's Mod 37-2 and every form parses back."""
    allocator = DinAllocator(fin, year, next_sequence=start)
    for _ in range(count):
        din = allocator.allocate()
        assert din.year == year % 100
        assert din.check_character == mod_37_2.calc_check_digit(din.code)
        assert mod_37_2.is_valid(keyed(din))
        assert (
            DonationIdentificationNumber.parse(din.eye_readable(), require_check_character=True)
            == din
        )
        assert DonationIdentificationNumber.read_barcode(din.barcode_data()).din == din


@given(dins, st.integers(0, 13), st.sampled_from(ALPHABET))
def test_any_single_character_change_is_detected(
    din: DonationIdentificationNumber, position: int, replacement: str
) -> None:
    """Changing any one of the 14 typed characters never yields a valid DIN."""
    typed = keyed(din)
    if typed[position] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    changed = typed[:position] + replacement + typed[position + 1 :]
    with pytest.raises(DinError):
        DonationIdentificationNumber.parse(changed)


@given(dins, st.integers(0, 12))
def test_any_swap_of_neighbouring_characters_is_detected(
    din: DonationIdentificationNumber, position: int
) -> None:
    """Swapping two adjacent, different characters (check character included) is caught."""
    typed = keyed(din)
    a, b = typed[position], typed[position + 1]
    assume(a != b)
    swapped = typed[:position] + b + a + typed[position + 2 :]
    with pytest.raises(DinError):
        DonationIdentificationNumber.parse(swapped)


@given(dins)
def test_parse_of_every_rendering_is_the_same_din(din: DonationIdentificationNumber) -> None:
    """parse(format(x)) == x for the 13 characters, the eye-readable text and bar code data."""
    assert DonationIdentificationNumber.parse(din.code) == din
    assert DonationIdentificationNumber.parse(str(din)) == din
    assert DonationIdentificationNumber.parse(din.eye_readable()) == din
    assert DonationIdentificationNumber.parse(din.barcode_data()) == din
