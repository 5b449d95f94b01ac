"""Who acts in the ledger: the roles of the orchestration system and the acting person.

Authority checks (21 CFR 11.10(g)) need a fixed list of roles to say who may perform a
step; audit entries, custody events and e-signatures all need the person's id *and*
printed name, because a record shown to an inspector must name a human, not an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A role in the orchestration system; one person may hold several, one per action."""

    CENTER_COORDINATOR = "center_coordinator"
    SITE_OPERATOR = "site_operator"
    QA = "qa"
    LOGISTICS = "logistics"
    PLANNER = "planner"
    ADMIN = "admin"

    @property
    def description(self) -> str:
        """What a person in this role does, for reference pages and forms."""
        return _ROLE_DESCRIPTIONS[self]


_ROLE_DESCRIPTIONS = {
    Role.CENTER_COORDINATOR: "treatment center staff: enrolment, apheresis, receipt, infusion",
    Role.SITE_OPERATOR: "manufacturing site staff: receipt, manufacturing, dispatch",
    Role.QA: "quality assurance at the site: QC review, batch release, OOS disposition",
    Role.LOGISTICS: "courier and supply chain: pickup, transport, handover",
    Role.PLANNER: "network planning: slot booking and rebooking",
    Role.ADMIN: "system administration: accounts and configuration, no order steps",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting: account id, printed name (shown on records) and acting role.

    >>> Actor("u-017", "Jane Doe", Role.QA)
    Actor(id='u-017', name='Jane Doe', role=<Role.QA: 'qa'>)
    """

    id: str
    name: str
    role: Role

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("actor id must not be empty")
        if not self.name.strip():
            raise ValueError(f"actor {self.id!r}: printed name must not be empty")
        if not isinstance(self.role, Role):
            raise ValueError(f"actor {self.id!r}: role must be a Role, got {self.role!r}")
