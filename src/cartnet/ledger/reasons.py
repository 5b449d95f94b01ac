"""Why a GxP record was changed: the reason codes an audit entry files a change under.

EU GMP Annex 11 §9 asks for the reason of every change; a fixed list of codes lets a
report count them, and ``other`` carries free text. Kept apart from the audit entry
because forms, lifecycle rules and the API offer these codes too.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ReasonCode"]


class ReasonCode(StrEnum):
    """Why a record was changed, in categories a report can count (Annex 11 §9)."""

    DATA_ENTRY_ERROR = "data_entry_error"
    PATIENT_REQUEST = "patient_request"
    CLINICAL_DECISION = "clinical_decision"
    PATIENT_PROGRESSED = "patient_progressed"
    PATIENT_INELIGIBLE = "patient_ineligible"
    PATIENT_DECEASED = "patient_deceased"
    CAPACITY_CHANGE = "capacity_change"
    LOGISTICS_DELAY = "logistics_delay"
    MANUFACTURING_FAILURE = "manufacturing_failure"
    DEVIATION = "deviation"
    EXPANDED_ACCESS = "expanded_access"
    NETWORK_OPTIMIZATION = "network_optimization"
    OTHER = "other"

    @property
    def description(self) -> str:
        """One line for pick lists and reference pages."""
        return _REASON_DESCRIPTIONS[self]

    @property
    def needs_text(self) -> bool:
        """Whether a free-text reason must go with the code (only ``other``)."""
        return self is ReasonCode.OTHER


_REASON_DESCRIPTIONS = {
    ReasonCode.DATA_ENTRY_ERROR: "a value was entered wrongly and is corrected",
    ReasonCode.PATIENT_REQUEST: "the patient asked for it",
    ReasonCode.CLINICAL_DECISION: "the treating physician decided it",
    ReasonCode.PATIENT_PROGRESSED: "the disease progressed before infusion",
    ReasonCode.PATIENT_INELIGIBLE: "the patient became ineligible for the therapy",
    ReasonCode.PATIENT_DECEASED: "the patient died before infusion",
    ReasonCode.CAPACITY_CHANGE: "manufacturing or apheresis capacity changed",
    ReasonCode.LOGISTICS_DELAY: "courier, customs or shipping delay",
    ReasonCode.MANUFACTURING_FAILURE: "the batch failed in manufacturing or QC",
    ReasonCode.DEVIATION: "a deviation from the procedure, with its own report",
    ReasonCode.EXPANDED_ACCESS: "release of an out-of-specification product under expanded access",
    ReasonCode.NETWORK_OPTIMIZATION: (
        "a planner applied a move of a signed network optimization plan"
    ),
    ReasonCode.OTHER: "another reason, given as free text",
}
