"""The things a CAR-T manufacturing network is made of.

Products, markets and their regulators, manufacturing sites with their lines and
approvals, and the treatment centers whose patients they serve. These are plain,
frozen pydantic models: the same schema validates network files, API payloads
and documentation examples. No I/O here.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from cartnet.network.calendar import CenterCalendar, WorkingCalendar
from cartnet.network.distributions import Duration
from cartnet.network.importation import Importation
from cartnet.network.noted import CountryCode as CountryCode
from cartnet.network.noted import Identifier as Identifier
from cartnet.network.noted import Noted as Noted

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Regulator(StrEnum):
    """Agencies that approve a site to make a product for their market."""

    FDA = "FDA"
    EMA = "EMA"
    SWISSMEDIC = "Swissmedic"
    MHRA = "MHRA"
    PMDA = "PMDA"
    NMPA = "NMPA"
    TGA = "TGA"
    HEALTH_CANADA = "Health Canada"


class Scope(StrEnum):
    """Commercial supply, or supply to a clinical trial (then a trial id is required)."""

    COMMERCIAL = "commercial"
    CLINICAL = "clinical"


class StartingMaterial(StrEnum):
    """Cryopreserved apheresis can wait months; fresh material lasts hours at 2-8 °C."""

    CRYOPRESERVED = "cryopreserved"
    FRESH = "fresh"


class OperatorKind(StrEnum):
    OWNED = "owned"
    CONTRACT = "contract"


class Product(Noted):
    """An autologous therapy, e.g. tisagenlecleucel (Kymriah)."""

    id: Identifier
    name: str
    starting_material: StartingMaterial = StartingMaterial.CRYOPRESERVED
    stability_hours: Annotated[float, Field(gt=0)] | None = None
    """Fresh material only: hours from apheresis to the start of manufacturing."""
    oos_probability: Probability = 0.0
    """Chance that a batch fails release testing (out of specification)."""

    @model_validator(mode="after")
    def _stability_for_fresh(self) -> Product:
        if self.starting_material is StartingMaterial.FRESH and self.stability_hours is None:
            raise ValueError("a product made from fresh material needs stability_hours")
        return self


class Market(Noted):
    """Patients under one regulator: the US (FDA), the EU (EMA), Japan (PMDA) ..."""

    id: Identifier
    name: str
    regulator: Regulator
    countries: Annotated[list[CountryCode], Field(min_length=1)]
    importation: Importation | None = None
    """Import testing and QP certification for batches made outside ``countries``."""


class Operator(Noted):
    name: str
    kind: OperatorKind


class Approval(Noted):
    """A regulator's permission for a site to make a product, for a scope, from a date."""

    product: Identifier
    regulator: Regulator
    scope: Scope
    trial: str | None = None
    effective: date
    end: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Approval:
        if self.scope is Scope.CLINICAL and not self.trial:
            raise ValueError("a clinical approval needs the trial id it covers (trial)")
        if self.scope is Scope.COMMERCIAL and self.trial:
            raise ValueError("a commercial approval has no trial id; use scope: clinical")
        if self.end is not None and self.end <= self.effective:
            raise ValueError(f"end {self.end} is not after effective {self.effective}")
        return self

    def in_force(self, on: date) -> bool:
        return self.effective <= on and (self.end is None or on < self.end)

    def applies_to(
        self, product: str, regulator: Regulator | str, scope: Scope, trial: str | None = None
    ) -> bool:
        """True when this approval is for ``product`` and this kind of patient, on any date.

        A clinical patient is covered only by an approval for the patient's own trial.
        """
        return (
            self.product == product
            and self.regulator == regulator
            and self.scope is scope
            and (scope is Scope.COMMERCIAL or trial == self.trial)
        )

    def covers(
        self, product: str, regulator: Regulator, scope: Scope, on: date, trial: str | None = None
    ) -> bool:
        """True when this approval lets the site make ``product`` for that regulator's patients."""
        return self.applies_to(product, regulator, scope, trial) and self.in_force(on)

    def key(self) -> tuple[str, str, str, str | None]:
        return (self.product, self.regulator.value, self.scope.value, self.trial)


class Site(Noted):
    """A manufacturing site: lines (suites or isolators), durations, calendar and approvals."""

    id: Identifier
    name: str
    operator: Operator
    city: str
    country: CountryCode
    lat: Latitude
    lon: Longitude
    lines: Annotated[int, Field(ge=0)]
    manufacturing: Duration
    qc: Duration
    calendar: WorkingCalendar = WorkingCalendar()
    starting_materials: Annotated[list[StartingMaterial], Field(min_length=1)] = [
        StartingMaterial.CRYOPRESERVED
    ]
    oos_probability: Probability | None = None
    """Overrides the product's out-of-specification probability at this site."""
    qc_capacity_per_day: Annotated[int, Field(ge=1)] | None = None
    approvals: list[Approval] = []

    def may_make(
        self, product: str, regulator: Regulator, scope: Scope, on: date, trial: str | None = None
    ) -> bool:
        return any(a.covers(product, regulator, scope, on, trial) for a in self.approvals)

    def accepts(self, material: StartingMaterial) -> bool:
        return material in self.starting_materials


class Demand(Noted):
    """Patients a center is expected to enrol per year for one product and scope."""

    product: Identifier
    scope: Scope = Scope.COMMERCIAL
    trial: str | None = None
    patients_per_year: Annotated[float, Field(ge=0)]
    growth_per_year: Annotated[float, Field(gt=-1)] = 0.0
    """Compound annual growth of the rate, 0.3 = +30 % a year."""

    @model_validator(mode="after")
    def _trial_for_clinical(self) -> Demand:
        if self.scope is Scope.CLINICAL and not self.trial:
            raise ValueError("clinical demand needs the trial id (trial)")
        if self.scope is Scope.COMMERCIAL and self.trial:
            raise ValueError("commercial demand has no trial id; use scope: clinical")
        return self


class TreatmentCenter(Noted):
    """A qualified hospital that collects apheresis and infuses the product."""

    id: Identifier
    name: str
    market: Identifier
    city: str
    country: CountryCode
    lat: Latitude
    lon: Longitude
    products: Annotated[list[Identifier], Field(min_length=1)]
    apheresis_per_day: Annotated[int, Field(ge=1)] = 1
    calendar: CenterCalendar | None = None
    """Days without apheresis or infusion; default: the network's ``center_calendar``."""
    demand: list[Demand] = []
