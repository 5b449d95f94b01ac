"""Identifiers as pydantic field types: read from scanned text, written back as text."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from cartnet.identity import (
    ChainOfIdentityId,
    DonationIdentificationNumber,
    FacilityId,
    SingleEuropeanCode,
)


class Bag(BaseModel):
    issuer: FacilityId
    coi: ChainOfIdentityId
    din: DonationIdentificationNumber
    sec: SingleEuropeanCode | None = None


SCANNED = {
    "issuer": "G1234",
    "coi": "&/CHG123426A1B2C3",
    "din": "=G12349865432177",
    "sec": "SEC: PL001499Z549917123456 A00T041600320171231",
}


def test_scanned_text_validates_and_serialises_as_canonical_strings() -> None:
    """A model reads bar code text and writes each identifier as its canonical string."""
    bag = Bag.model_validate(SCANNED)
    assert bag.din == DonationIdentificationNumber.parse("G123498654321")
    assert bag.model_dump(mode="json") == {
        "issuer": "G1234",
        "coi": "CHG123426A1B2C3",
        "din": "G123498654321",
        "sec": "PL001499Z549917123456A00T041600320171231",
    }
    assert Bag.model_validate_json(bag.model_dump_json()) == bag


def test_instances_are_accepted_as_they_are() -> None:
    """Python callers can pass identifier objects instead of text."""
    coi = ChainOfIdentityId.parse("CHG123426A1B2C3")
    bag = Bag(issuer=FacilityId("G1234"), coi=coi, din=DonationIdentificationNumber.parse(
        "G123498654321"))  # fmt: skip
    assert bag.coi is coi


def test_an_invalid_identifier_is_reported_under_its_field_with_the_part() -> None:
    """The validation error has the field path and our precise message."""
    with pytest.raises(ValidationError) as caught:
        Bag.model_validate({**SCANNED, "coi": "&/CHG1234X6A1B2C3"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("coi",)
    assert "year: characters 8-9 must be digits" in error["msg"]


def test_other_types_are_refused() -> None:
    """A number where an identifier belongs is refused with a plain message."""
    with pytest.raises(ValidationError, match="expected text or a DonationIdentificationNumber"):
        Bag.model_validate({**SCANNED, "din": 123})


def test_json_schema_describes_identifiers_as_strings() -> None:
    """API documentation shows each identifier as a string."""
    properties = Bag.model_json_schema()["properties"]
    assert properties["coi"]["type"] == "string"
    assert properties["din"]["type"] == "string"
