"""CoI identifiers: precise parse errors; allocation without repeats and without patient data."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from cartnet.identity import (
    AllocationError,
    ChainOfIdentityId,
    CoiError,
    FacilityId,
    RandomCoiAllocator,
    SequentialCoiAllocator,
)
from cartnet.identity.check_character import ALPHABET
from cartnet.identity.coi import SEQUENCE_ALPHABET, SEQUENCE_COUNT, sequence_of
from cartnet.identity.facility import FIN_FIRST

fins = st.builds(
    lambda first, digits: FacilityId(first + digits),
    st.sampled_from(FIN_FIRST),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
)
cois = st.builds(
    ChainOfIdentityId,
    fins,
    st.integers(0, 99),
    st.text(SEQUENCE_ALPHABET, min_size=6, max_size=6),
)
FIN = FacilityId("G1234")


def test_example_in_every_form() -> None:
    """A scanned CoI bar code gives the 15 data characters, K and the eye-readable text."""
    coi = ChainOfIdentityId.parse("&/CHG123426A1B2C3")
    assert (coi.facility, coi.year, coi.sequence) == (FIN, 26, "A1B2C3")
    assert coi.data_content == "CHG123426A1B2C3"
    assert coi.barcode_data() == "&/CHG123426A1B2C3"
    assert coi.check_character == mod_37_2.calc_check_digit("CHG123426A1B2C3") == "4"
    assert coi.eye_readable() == "CH G1234 26 A1B2C3 4"
    assert ChainOfIdentityId.parse("CH G1234 26 A1B2C3 4", require_check_character=True) == coi
    assert ChainOfIdentityId.parse("CHG123426A1B2C3") == coi


@pytest.mark.parametrize(
    ("text", "part", "position"),
    [
        ("&CHG123426A1B2C3", "data identifier", None),
        ("&/CHG123426A1B2C", "length", None),
        ("&/", "literal", 1),
        ("CHG123426A1B2C34X", "length", None),
        ("&/CXG123426A1B2C3", "literal", 1),
        ("G123426A1B2C3000", "literal", 1),
        ("&/CHO123426A1B2C3", "issuing facility identification number (FIN), first character", 3),
        ("&/CHG12A426A1B2C3", "issuing facility identification number (FIN), facility number", 6),
        ("&/CHG1234X6A1B2C3", "year", 8),
        ("&/CHG123426A1b2C3", "sequence", 12),
        ("&/CHG123426A1-2C3", "sequence", 12),
        ("CH G1234 26 A1B2C3 5", "check character", 16),
        ("CH G1234 26 A1B2C3 %", "check character", 16),
    ],
)
def test_invalid_text_names_the_part_that_is_wrong(
    text: str, part: str, position: int | None
) -> None:
    """Errors say whether the data identifier, CH, FIN, year, sequence or K is wrong, and where."""
    with pytest.raises(CoiError) as caught:
        ChainOfIdentityId.parse(text)
    assert caught.value.part == part
    assert caught.value.position == position


def test_lower_case_sequence_letters_are_explained() -> None:
    """A lower-case letter in the sequence is reported as such, not as a foreign character."""
    with pytest.raises(CoiError, match="'b' must be a capital letter"):
        ChainOfIdentityId.parse("&/CHG123426A1b2C3")


def test_keyboard_entry_can_require_the_check_character() -> None:
    """Typed without K, the identifier is refused when K is required."""
    with pytest.raises(CoiError, match="check character: missing"):
        ChainOfIdentityId.parse("CHG123426A1B2C3", require_check_character=True)


def test_a_din_is_not_taken_for_a_coi() -> None:
    """Scanning the DIN where the CoI identifier is expected fails on the literal CH."""
    with pytest.raises(CoiError, match="starts with 'CH'"):
        ChainOfIdentityId.parse("G123498654321")


def test_sequential_allocator_counts_in_base_36_and_resumes() -> None:
    """000001, 000002, ...; rebuilt from next_number it goes on where it stopped."""
    allocator = SequentialCoiAllocator(FIN, 2026)
    assert [allocator.allocate().sequence for _ in range(2)] == ["000001", "000002"]
    resumed = SequentialCoiAllocator(FIN, 2026, next_number=allocator.next_number)
    assert resumed.allocate().data_content == "CHG123426000003"


def test_sequential_allocator_stops_when_the_space_is_used() -> None:
    """After ZZZZZZ there is no sequence left for that FIN and year."""
    allocator = SequentialCoiAllocator(FIN, 2026, next_number=SEQUENCE_COUNT - 1)
    assert allocator.allocate().sequence == "ZZZZZZ"
    with pytest.raises(AllocationError):
        allocator.allocate()


def test_random_allocator_is_reproducible_from_its_seed() -> None:
    """Same seed, same identifiers (randomness only through a numpy Generator)."""
    first = RandomCoiAllocator(FIN, 2026, np.random.default_rng(7))
    again = RandomCoiAllocator(FIN, 2026, np.random.default_rng(7))
    assert [first.allocate() for _ in range(5)] == [again.allocate() for _ in range(5)]


def test_random_allocator_skips_identifiers_already_issued() -> None:
    """Draws found in the issued set are drawn again: the result is never one of them."""
    clone = RandomCoiAllocator(FIN, 2026, np.random.default_rng(11))
    draws = [clone.allocate() for _ in range(6)]
    taken = set(draws[:5])
    allocator = RandomCoiAllocator(FIN, 2026, np.random.default_rng(11), taken=taken)
    assert allocator.allocate() == draws[5]


def test_random_allocator_gives_up_when_nothing_is_free() -> None:
    """When every draw is taken the allocator says so instead of looping forever."""

    class Everything:
        def __contains__(self, item: object) -> bool:
            return True

    allocator = RandomCoiAllocator(
        FIN, 2026, np.random.default_rng(1), taken=Everything(), max_attempts=10
    )
    with pytest.raises(AllocationError, match="after 10 random draws"):
        allocator.allocate()


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_cois_are_unique_across_many_allocations(seed: int) -> None:
    """20,000 random allocations, then 5,000 more avoiding them: no identifier twice."""
    allocator = RandomCoiAllocator(FIN, 2026, np.random.default_rng(seed))
    issued = {allocator.allocate() for _ in range(20_000)}
    assert len(issued) == 20_000
    # A second allocator (after a restart, freshly seeded), told what was issued.
    after_restart = RandomCoiAllocator(FIN, 2026, np.random.default_rng(seed + 1), taken=issued)
    more = {after_restart.allocate() for _ in range(5_000)}
    assert len(more) == 5_000
    assert not more & issued


def test_sequential_cois_are_unique_across_many_allocations() -> None:
    """A counter never repeats: 50,000 allocations, 50,000 identifiers."""
    allocator = SequentialCoiAllocator(FIN, 2026)
    assert len({allocator.allocate() for _ in range(50_000)}) == 50_000


ISSUER_PARAMETERS = {"self", "facility", "year", "next_number", "rng", "taken", "max_attempts"}


@pytest.mark.parametrize(
    "allocator_type",
    [SequentialCoiAllocator, RandomCoiAllocator],
)
def test_allocators_accept_no_patient_information(
    allocator_type: type[SequentialCoiAllocator] | type[RandomCoiAllocator],
) -> None:
    """HIPAA 164.514(c): the code is not derived from patient data, so the API takes none."""
    parameters = inspect.signature(allocator_type).parameters.values()
    assert {p.name for p in parameters} <= ISSUER_PARAMETERS
    assert all(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)
    allocate = inspect.signature(allocator_type.allocate)
    assert list(allocate.parameters) == ["self"]
    with pytest.raises(TypeError):
        allocator_type(FIN, 2026, patient_name="Jane Doe")  # type: ignore[call-arg]


def test_sequence_numbers_cover_the_alphabet_in_order() -> None:
    """Base 36 with digits first: 0 -> 000000, 35 -> 00000Z, 36 -> 000010."""
    assert [sequence_of(n) for n in (0, 35, 36, SEQUENCE_COUNT - 1)] == [
        "000000",
        "00000Z",
        "000010",
        "ZZZZZZ",
    ]
    with pytest.raises(ValueError, match="sequence number"):
        sequence_of(SEQUENCE_COUNT)


@given(cois)
def test_parse_of_every_rendering_is_the_same_coi(coi: ChainOfIdentityId) -> None:
    """parse(format(x)) == x for data content, bar code data and eye-readable text."""
    assert ChainOfIdentityId.parse(coi.data_content) == coi
    assert ChainOfIdentityId.parse(coi.barcode_data()) == coi
    assert ChainOfIdentityId.parse(coi.eye_readable(), require_check_character=True) == coi
    assert mod_37_2.is_valid(coi.data_content + coi.check_character)


@given(cois, st.integers(0, 15), st.sampled_from(ALPHABET))
def test_any_single_character_change_of_the_typed_coi_is_detected(
    coi: ChainOfIdentityId, position: int, replacement: str
) -> None:
    """Changing any one of the 16 typed characters (K included) never yields a valid CoI."""
    typed = coi.data_content + coi.check_character
    if typed[position] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    changed = typed[:position] + replacement + typed[position + 1 :]
    with pytest.raises(CoiError):
        ChainOfIdentityId.parse(changed)
