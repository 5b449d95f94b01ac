"""Enrolment: a new order for a patient, with its chain-of-identity id and sealed identity.

The ISBT 128 CoI id is a counter per issuing facility and year; the pseudonym is
random; the patient's identity is sealed with the vault key and only a center
coordinator of the order's own center can open it, each time leaving an audit entry.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from cartnet.identity import (
    ChainOfIdentityId,
)
from cartnet.identity.coi import SEQUENCE_COUNT, sequence_of
from cartnet.ledger.entry import AuditAction
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.network.entities import Scope
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Invalid
from cartnet.service.orders.view import order_view
from cartnet.service.schemas import (
    NewOrder,
    OrderView,
    PatientIdentity,
)
from cartnet.store.evidence import sha256_text
from cartnet.store.tables import OrderRow

__all__ = ["APHERESIS_AHEAD_DAYS", "PSEUDONYM_ALPHABET", "enroll", "patient_identity"]


PSEUDONYM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
APHERESIS_AHEAD_DAYS = 200
"""How far ahead an earliest apheresis may lie: the offer search (180 days past it)
must stay inside the 400-day capacity calendar."""


def enroll(ctx: ServiceContext, principal: Principal, new: NewOrder) -> OrderView:
    """Create the order for a patient of the coordinator's own center."""
    principal.require({Role.CENTER_COORDINATOR}, "enrol patients")
    net = ctx.network
    center = net.center(principal.center or "")
    if new.product not in center.products:
        raise Invalid(
            f"{center.name} does not offer product {new.product!r} (offers: "
            f"{', '.join(center.products)})",
            field="product",
        )
    if new.scope is Scope.CLINICAL and new.trial is None:
        raise Invalid("a clinical order needs its trial", field="trial")
    if new.scope is Scope.COMMERCIAL and new.trial is not None:
        raise Invalid("a commercial order has no trial", field="trial")
    today = ctx.today()
    if new.earliest_apheresis < today:
        raise Invalid(
            f"earliest apheresis {new.earliest_apheresis} is in the past (today is {today})",
            field="earliest_apheresis",
        )
    if new.earliest_apheresis > today + timedelta(days=APHERESIS_AHEAD_DAYS):
        raise Invalid(
            f"earliest apheresis {new.earliest_apheresis} is beyond the booking horizon",
            field="earliest_apheresis",
        )
    now = ctx.now()
    with ctx.transaction() as session:
        facility = ctx.settings.facility
        number = ctx.next_number(session, f"coi:{facility}:{now.year}")
        if number >= SEQUENCE_COUNT:
            raise Conflict(f"all CoI sequences of {facility} for {now.year} are used")
        coi = ChainOfIdentityId(facility, now.year % 100, sequence_of(number))
        row = OrderRow(
            id=new_id("ord"),
            coi=str(coi),
            center=center.id,
            market=center.market,
            product=new.product,
            scope=new.scope.value,
            trial=new.trial,
            state=OrderState.ENROLLED.value,
            pseudonym=_pseudonym(),
            patient_identity=ctx.vault.seal(new.patient.model_dump(mode="json")),
            country=center.country,
            earliest_apheresis=new.earliest_apheresis,
            created_at=now,
            updated_at=now,
        )
        ctx.add_record(
            session,
            principal,
            row,
            "order",
            lambda r: str(r.id),
            [
                "coi",
                "pseudonym",
                "center",
                "market",
                "country",
                "product",
                "scope",
                "trial",
                "earliest_apheresis",
                "state",
                "created_at",
            ],
            also=[
                ("patient_identity", None, "sealed"),
                ("patient_identity_sha256", None, sha256_text(row.patient_identity)),
            ],
        )
        return order_view(ctx, session, row)


def _pseudonym() -> str:
    return "P-" + "".join(secrets.choice(PSEUDONYM_ALPHABET) for _ in range(10))


def patient_identity(ctx: ServiceContext, principal: Principal, order_id: str) -> PatientIdentity:
    """Open the sealed identity: only the order's center, and every read is audited."""
    principal.require({Role.CENTER_COORDINATOR}, "see patient identity")
    with ctx.transaction() as session:
        row = load_order(session, principal, order_id)
        identity = PatientIdentity.model_validate(ctx.vault.open(row.patient_identity))
        ctx.record(session, principal, AuditAction.READ, "patient_identity", row.id)
    return identity
