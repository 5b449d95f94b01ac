"""What an ISBT 128 chain-of-identity product label says: its content, checked.

Every bag and tube of an autologous therapy carries its CoI identifier so that each
handoff can scan it and check the product still belongs to its patient. A label shows
the CoI identifier (data structure 040, ``&/...``) and, once there is a collection, its
DIN (data structure 001, ``=...``), the product name, the expiry, the EU SEC when the
product has one, the order's pseudonym and the site. :mod:`cartnet.report.labels` draws
it (bar codes, fonts, PNG or PDF); this module says what goes on it and refuses what may
not.

**The label carries no patient identity.** :class:`LabelContent` has no field for a
name, a date of birth or a medical record number: the CoI identifier and the order's
pseudonym are re-identification codes whose link to the patient stays with the
treatment center (see :mod:`cartnet.identity.coi`). Whoever fills ``pseudonym`` must
pass the pseudonym, never a patient identifier.

>>> from datetime import date
>>> from cartnet.identity import ChainOfIdentityId, DonationIdentificationNumber
>>> content = LabelContent(
...     coi=ChainOfIdentityId.parse("&/CHG123426A1B2C3"),
...     din=DonationIdentificationNumber.parse("G123426000123"),
...     product_name="CAR-T cell suspension for infusion",
...     expiry=date(2026, 5, 31),
... )
>>> dict(label_fields(content))["Expiry"]
'2026-05-31'
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from cartnet.identity.coi import ChainOfIdentityId
from cartnet.identity.din import DonationIdentificationNumber
from cartnet.identity.sec import SingleEuropeanCode

NO_DIN = "no DIN assigned"
NO_EXPIRY = "no expiry set"


@dataclass(frozen=True)
class LabelContent:
    """What one label shows. Identifiers only, no patient identity (see the module doc).

    ``din`` is None before the first collection; ``expiry`` None prints "no expiry set".
    A SEC must name the same donation and expiry as the label: two different ones on
    one bag would be a mislabelled product.
    """

    coi: ChainOfIdentityId
    din: DonationIdentificationNumber | None
    product_name: str
    expiry: date | None
    sec: SingleEuropeanCode | None = None
    pseudonym: str | None = None
    site_name: str | None = None

    def __post_init__(self) -> None:
        _require_printable("product_name", self.product_name)
        if self.pseudonym is not None:
            _require_printable("pseudonym", self.pseudonym)
        if self.site_name is not None:
            _require_printable("site_name", self.site_name)
        if self.sec is not None:
            sec_din = self.sec.din
            if self.din is not None and sec_din is not None and sec_din != self.din:
                raise ValueError(
                    f"sec: its donation number {self.sec.donation_number} is not the label's "
                    f"DIN {self.din.code}; a label must name one donation"
                )
            if self.sec.expiry != self.expiry:
                raise ValueError(
                    f"sec: its expiry {expiry_text(self.sec.expiry)} is not the label's "
                    f"expiry {expiry_text(self.expiry)}"
                )


def _require_printable(field: str, text: str) -> None:
    if not text.strip():
        raise ValueError(f"{field}: must not be empty")
    for i, char in enumerate(text, start=1):
        if unicodedata.category(char).startswith("C"):
            raise ValueError(
                f"{field} {text!r}: character {i} ({char!r}) cannot be printed; "
                "use one line of visible text"
            )


def expiry_text(expiry: date | None) -> str:
    return NO_EXPIRY if expiry is None else expiry.isoformat()


def label_fields(content: LabelContent) -> tuple[tuple[str, str], ...]:
    """The captions and texts the label prints, in reading order.

    The same words :func:`cartnet.report.labels.render_label` draws, for a preview or
    for the record of what was printed. Absent optional fields (SEC, pseudonym, site) are left out.
    """
    fields = [
        ("Chain of identity (CoI)", content.coi.eye_readable()),
        ("Donation (DIN)", NO_DIN if content.din is None else content.din.eye_readable()),
        ("Product", content.product_name),
        ("Expiry", expiry_text(content.expiry)),
    ]
    if content.sec is not None:
        fields.append(("SEC", content.sec.eye_readable()))
    if content.pseudonym is not None:
        fields.append(("Order pseudonym", content.pseudonym))
    if content.site_name is not None:
        fields.append(("Site", content.site_name))
    return tuple(fields)
