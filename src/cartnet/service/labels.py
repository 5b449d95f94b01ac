"""What an order's label shows: identifiers, product, site, expiry; never the patient."""

from __future__ import annotations

from cartnet.identity import ChainOfIdentityId, DonationIdentificationNumber, SingleEuropeanCode
from cartnet.identity.labels import LabelContent
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext
from cartnet.service.orders.view import order_view

LABEL_READERS = frozenset({Role.CENTER_COORDINATOR, Role.SITE_OPERATOR, Role.QA, Role.LOGISTICS})


def label_content(ctx: ServiceContext, principal: Principal, order_id: str) -> LabelContent:
    principal.require(LABEL_READERS, "print labels")
    with ctx.reading() as session:
        row = load_order(session, principal, order_id)
        view = order_view(ctx, session, row)
    return LabelContent(
        coi=ChainOfIdentityId.parse(row.coi),
        din=None if row.din is None else DonationIdentificationNumber.parse(row.din),
        product_name=ctx.network.product(row.product).name,
        expiry=view.expiry,
        sec=None if view.sec is None else SingleEuropeanCode.parse(view.sec),
        pseudonym=row.pseudonym,
        site_name=None if row.site is None else ctx.network.site(row.site).name,
    )
