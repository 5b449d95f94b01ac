"""Identifiers of the chain of identity: ISBT 128 FIN, DIN and CoI identifier, EU SEC.

Plain value objects with parsing, validation and allocation; no database, no network.
What a label says is :mod:`cartnet.identity.labels`; drawing it with its bar codes is
:mod:`cartnet.report.labels` (Pillow and python-barcode stay out of this package). Each identifier
parses the text a scanner or a keyboard produces and says which part is wrong when it
is not valid; each renders its eye-readable text and its bar code data. Identifiers carry
no patient data: allocators take only the issuing facility and the year.

>>> from cartnet.identity import DonationIdentificationNumber
>>> DonationIdentificationNumber.parse("G1234 98 654321 H").check_flags
'77'
"""

from cartnet.identity.check_character import check_character, check_value
from cartnet.identity.coi import (
    ChainOfIdentityId,
    CoiAllocator,
    RandomCoiAllocator,
    SequentialCoiAllocator,
)
from cartnet.identity.din import DinAllocator, DinBarcode, DonationIdentificationNumber, FlagType
from cartnet.identity.errors import (
    AllocationError,
    CoiError,
    DinError,
    FacilityIdError,
    IdentifierError,
    SecError,
)
from cartnet.identity.facility import FacilityId
from cartnet.identity.sec import CodingSystem, SingleEuropeanCode, TissueEstablishmentCode

__all__ = [
    "AllocationError",
    "ChainOfIdentityId",
    "CodingSystem",
    "CoiAllocator",
    "CoiError",
    "DinAllocator",
    "DinBarcode",
    "DinError",
    "DonationIdentificationNumber",
    "FacilityId",
    "FacilityIdError",
    "FlagType",
    "IdentifierError",
    "RandomCoiAllocator",
    "SecError",
    "SequentialCoiAllocator",
    "SingleEuropeanCode",
    "TissueEstablishmentCode",
    "check_character",
    "check_value",
]
