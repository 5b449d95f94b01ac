"""What a twin run assumes beyond the network file, with the reasons for each default."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegative = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class TwinSettings(BaseModel):
    """Horizon, warm-up and the patient-side assumptions of a simulation.

    Defaults are assumptions, chosen against the figures of docs/background/domain.md §5:

    * ``loss_hazard_per_day`` 0.006: calibrated so that about 14-16 % of apheresed
      patients of the reference network are not infused (progression, death and
      manufacturing failures together), inside the 10-25 % that published series
      bracket: real-world 9 % (US tisa-cel, Am J Hematol 2021), 9 % of orders
      (France, DESCAR-T 2021), 18 % (Spain tisa-cel, Kwon et al., Haematologica
      2023); trials 9-30 % of enrolled patients (Front Immunol 2021). The twin's
      apheresis-to-infusion time (about 25 days) is shorter than the real-world
      40-55 days (it leaves out bridging therapy and scheduling), so the daily
      hazard is higher than a disease model would give.
    * ``apheresis_days`` 1: leukapheresis and cryopreservation before the
      shipment leaves (i-SHIPMENT uses 1 day).
    * ``infusion_days`` 2: lymphodepleting chemotherapy ends and the product is
      infused two days after delivery.
    * OOS outcomes: half re-manufactured from stored apheresis, 30 % need a new
      apheresis, 20 % released out of specification under expanded access.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    start: date | None = None
    """First simulated day; default: the network's reference date."""
    horizon_days: Annotated[float, Field(gt=0, le=36_500)] = 365.0
    """At most a hundred years: dates beyond that leave the calendar."""
    warmup_days: NonNegative = 90.0
    drain_days: NonNegative = 240.0
    """Arrivals go on after the horizon so the last patients of the cohort finish."""
    loss_hazard_per_day: NonNegative = 0.006
    apheresis_days: NonNegative = 1.0
    infusion_days: NonNegative = 2.0
    oos_remanufacture: Share = 0.5
    oos_new_apheresis: Share = 0.3
    oos_release: Share = 0.2
    call_ahead_per_line: NonNegative | None = None
    """Extra patients a site calls forward per line so material is waiting when a
    line frees up; default: enough to cover a typical 3-day lead time."""

    @model_validator(mode="after")
    def _consistent(self) -> TwinSettings:
        if self.horizon_days <= self.warmup_days:
            raise ValueError(
                f"the horizon ({self.horizon_days:g} days) must be longer than the "
                f"warm-up ({self.warmup_days:g} days)"
            )
        total = self.oos_remanufacture + self.oos_new_apheresis + self.oos_release
        if abs(total - 1) > 1e-9:
            raise ValueError(f"OOS outcome shares must add up to 1 (they add up to {total:g})")
        return self
