"""What every permitted role sees of an order: its view, built from the stored row.

The view adds what is derived rather than stored: the eye-readable CoI, the expiry from
QA's release, the Single European Code of EU orders and the count of open exceptions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartnet.identity import (
    ChainOfIdentityId,
    DonationIdentificationNumber,
    SingleEuropeanCode,
    TissueEstablishmentCode,
)
from cartnet.ledger.lifecycle import OrderEvent, OrderState, allowed_events
from cartnet.network.entities import Regulator, Scope
from cartnet.service.context import ServiceContext
from cartnet.service.schemas import (
    OrderView,
    PlannedChain,
)
from cartnet.store.tables import OrderExceptionRow, OrderRow, OrderStepRow

__all__ = ["RELEASE_EVENTS", "default_tissue_establishment", "order_view"]


RELEASE_EVENTS = (OrderEvent.RELEASE.value, OrderEvent.RELEASE_UNDER_EXPANDED_ACCESS.value)


def order_view(ctx: ServiceContext, session: Session, row: OrderRow) -> OrderView:
    """The order as every permitted role sees it: no patient identity."""
    coi = ChainOfIdentityId.parse(row.coi)
    plan = None
    if row.site and row.start_on and row.apheresis_on:
        plan = PlannedChain(
            site=row.site,
            apheresis=row.apheresis_on,
            start=row.start_on,
            release=row.release_on or row.start_on,
            delivery=row.delivery_on or row.start_on,
            infusion=row.infusion_on or row.start_on,
        )
    open_exceptions, released = session.execute(
        select(
            select(func.count())
            .select_from(OrderExceptionRow)
            .where(OrderExceptionRow.order_id == row.id, OrderExceptionRow.closed_at.is_(None))
            .scalar_subquery(),
            select(func.max(OrderStepRow.at))
            .where(OrderStepRow.order_id == row.id, OrderStepRow.event.in_(RELEASE_EVENTS))
            .scalar_subquery(),
        )
    ).one()
    expiry = _expiry(ctx, row, released)
    return OrderView(
        id=row.id,
        coi=row.coi,
        coi_eye_readable=coi.eye_readable(),
        pseudonym=row.pseudonym,
        center=row.center,
        market=row.market,
        country=row.country,
        product=row.product,
        scope=Scope(row.scope),
        trial=row.trial,
        state=OrderState(row.state),
        allowed_events=list(allowed_events(row.state)),
        earliest_apheresis=row.earliest_apheresis,
        din=row.din,
        expiry=expiry,
        sec=_sec(ctx, row, expiry),
        plan=plan,
        open_exceptions=open_exceptions or 0,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _expiry(ctx: ServiceContext, row: OrderRow, released: datetime | None) -> date | None:
    """Shelf life from QA's release; before release, from the planned release day."""
    day = released.date() if released is not None else row.release_on
    return None if day is None else day + timedelta(days=ctx.settings.shelf_life_days)


def _sec(ctx: ServiceContext, row: OrderRow, expiry: date | None) -> str | None:
    """The Single European Code of an EU order once its apheresis has a DIN."""
    market = ctx.network.market(row.market)
    if market.regulator is not Regulator.EMA or row.din is None or row.site is None:
        return None
    site = ctx.network.site(row.site)
    te = ctx.settings.tissue_establishments.get(site.id) or default_tissue_establishment(
        site.country, ctx.settings.fin
    )
    code = ctx.settings.product_codes.get(row.product, ctx.settings.default_product_code)
    sec = SingleEuropeanCode.from_din(
        DonationIdentificationNumber.parse(row.din),
        tissue_establishment=TissueEstablishmentCode.parse(te),
        product_code=code,
        expiry=expiry,
    )
    return sec.eye_readable()


def default_tissue_establishment(country: str, fin: str) -> str:
    """A placeholder EU tissue establishment code from the site's country and the FIN.

    Real codes come from the EU Tissue Establishment Compendium; configure them per
    site (``tissue_establishments``). This keeps the SEC well-formed until then.
    """
    return f"{country}{fin[1:]:0>6}"[:8]
