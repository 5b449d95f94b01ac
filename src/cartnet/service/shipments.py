"""Shipments of an order and their temperature-logger files.

A shipment carries the limits of what travels in it: the product's starting material
on the way to the site (fresh 2-8 °C or cryopreserved ≤ -150 °C), the cryopreserved
product on the way back. A logger CSV is read strictly (a bad line is a 422 naming
line and column, and nothing is stored). Excursions beyond the limits are grouped into
episodes (:mod:`cartnet.ledger.episodes`); each episode raises an exception on the order,
which blocks release or infusion until QA closes it. One log raises at most
``max_exceptions_per_log`` exceptions, so a flickering logger cannot flood the queue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartnet.ledger.custody import (
    CRYOPRESERVED,
    FRESH,
    Excursion,
    Reading,
    TemperatureLimits,
    TemperatureLogError,
    excursions,
    read_temperature_log,
)
from cartnet.ledger.episodes import ExcursionEpisode, episodes
from cartnet.ledger.lifecycle import OrderState
from cartnet.ledger.roles import Role
from cartnet.network.entities import StartingMaterial
from cartnet.service.access import Principal, load_order
from cartnet.service.context import ServiceContext, new_id
from cartnet.service.errors import Conflict, Forbidden, Invalid, NotFound
from cartnet.service.quality import raise_exception
from cartnet.service.schemas import (
    EpisodeView,
    EventTime,
    ExcursionView,
    NewShipment,
    ShipmentView,
    TemperatureLogResult,
)
from cartnet.service.timing import check_not_ahead
from cartnet.store.evidence import written_fields
from cartnet.store.tables import OrderExceptionRow, OrderRow, ShipmentRow, TemperatureLogRow

EVENT_TIME: TypeAdapter[datetime] = TypeAdapter(EventTime)
SHIPPERS = {
    "to_site": frozenset({Role.CENTER_COORDINATOR, Role.LOGISTICS}),
    "to_center": frozenset({Role.SITE_OPERATOR, Role.LOGISTICS}),
}
STATES = {
    "to_site": frozenset({OrderState.APHERESIS_COLLECTED, OrderState.SHIPPED_TO_SITE}),
    "to_center": frozenset({OrderState.RELEASED, OrderState.SHIPPED_TO_CENTER}),
}


def _view(session: Session, row: ShipmentRow) -> ShipmentView:
    logs, found = session.execute(
        select(func.count(), func.coalesce(func.sum(TemperatureLogRow.excursions), 0)).where(
            TemperatureLogRow.shipment_id == row.id
        )
    ).one()
    return ShipmentView(
        id=row.id,
        order_id=row.order_id,
        direction=row.direction,
        courier=row.courier,
        tracking=row.tracking,
        low_c=row.low_c,
        high_c=row.high_c,
        created_at=row.created_at,
        logs=logs,
        excursions=found,
    )


def limits_for(ctx: ServiceContext, order: OrderRow, direction: str) -> TemperatureLimits:
    if direction == "to_site":
        material = ctx.network.product(order.product).starting_material
        return FRESH if material is StartingMaterial.FRESH else CRYOPRESERVED
    return CRYOPRESERVED


def create_shipment(
    ctx: ServiceContext, principal: Principal, order_id: str, body: NewShipment
) -> ShipmentView:
    principal.require(SHIPPERS[body.direction], f"create {body.direction} shipments")
    with ctx.transaction() as session:
        order = load_order(session, principal, order_id, for_update=True)
        if OrderState(order.state) not in STATES[body.direction]:
            raise Conflict(
                f"order is {order.state}; a {body.direction} shipment needs one of "
                f"{', '.join(sorted(STATES[body.direction]))}",
                code="illegal-transition",
            )
        low, high = limits_for(ctx, order, body.direction)
        row = ShipmentRow(
            id=new_id("shp"),
            order_id=order.id,
            direction=body.direction,
            courier=body.courier,
            tracking=body.tracking,
            low_c=low,
            high_c=high,
            created_at=ctx.now(),
            created_by=principal.user_id,
        )
        ctx.add_record(
            session,
            principal,
            row,
            "shipment",
            lambda r: f"{order.id}/shipment/{r.id}",
            written_fields("shipments"),
        )
        return _view(session, row)


def shipments(ctx: ServiceContext, principal: Principal, order_id: str) -> list[ShipmentView]:
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        rows = session.scalars(
            select(ShipmentRow)
            .where(ShipmentRow.order_id == order.id)
            .order_by(ShipmentRow.created_at)
        )
        return [_view(session, r) for r in rows]


def upload_temperature_log(
    ctx: ServiceContext, principal: Principal, order_id: str, shipment_id: str, data: bytes
) -> TemperatureLogResult:
    """Store a logger file and raise an exception on the order for each excursion episode."""
    if len(data) > ctx.settings.max_upload_bytes:
        raise Invalid(
            f"the file has {len(data)} bytes; the limit is {ctx.settings.max_upload_bytes}",
            field="body",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Invalid(f"the file is not UTF-8 text (byte {err.start + 1})", field="body") from None
    try:
        readings = read_temperature_log(text)
    except TemperatureLogError as err:
        raise Invalid(str(err), field=f"body.line[{err.line}]") from None
    if not readings:
        raise Invalid("the temperature log has a header but no readings", field="body")
    _check_reading_times(ctx, readings)
    with ctx.transaction() as session:
        order = load_order(session, principal, order_id, for_update=True)
        shipment = session.get(ShipmentRow, shipment_id)
        if shipment is None or shipment.order_id != order.id:
            raise NotFound(f"order {order_id} has no shipment {shipment_id!r}", field="shipment_id")
        if principal.role not in SHIPPERS[shipment.direction] | {Role.QA}:
            raise Forbidden(
                f"role {principal.role.value!r} may not upload logs of "
                f"{shipment.direction} shipments"
            )
        found = excursions(readings, shipment.low_c, shipment.high_c)
        grouped = episodes(found, ctx.settings.excursion_episode_gap_minutes)
        log = TemperatureLogRow(
            shipment_id=shipment.id,
            uploaded_at=ctx.now(),
            uploaded_by=principal.user_id,
            sha256=hashlib.sha256(data).hexdigest(),
            content=text,
            readings=len(readings),
            excursions=len(found),
        )
        ctx.add_record(
            session,
            principal,
            log,
            "temperature_log",
            lambda r: f"{order.id}/temperature-log/{r.id}",
            written_fields("temperature_logs"),
        )
        details = episode_details(shipment, grouped, ctx.settings.max_exceptions_per_log)
        for detail in details:
            exception = OrderExceptionRow(
                order_id=order.id,
                kind="temperature_excursion",
                detail=detail,
                raised_at=ctx.now(),
                raised_by=principal.user_id,
            )
            raise_exception(ctx, session, principal, exception)
        return TemperatureLogResult(
            shipment=_view(session, shipment),
            readings=len(readings),
            excursions=[
                ExcursionView(
                    side=e.side.value,
                    start=e.start,
                    end=e.end,
                    minutes=round(e.minutes, 1),
                    limit_c=e.limit_c,
                    extreme_c=e.extreme_c,
                    ongoing=e.ongoing,
                )
                for e in found
            ],
            episodes=[_episode_view(e) for e in grouped],
            exceptions_raised=len(details),
        )


def _check_reading_times(ctx: ServiceContext, readings: Sequence[Reading]) -> None:
    """Readings are in time order: the first and the last bound them all.

    Line numbers count the header, as the parser's do.
    """
    for line, reading in ((2, readings[0]), (len(readings) + 1, readings[-1])):
        where = f"body.line[{line}]"
        try:
            EVENT_TIME.validate_python(reading.at)
        except ValidationError as err:
            message = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise Invalid(f"line {line}: {reading.at.isoformat()} {message}", field=where) from None
        check_not_ahead(ctx, reading.at, where)


def _episode_view(episode: ExcursionEpisode) -> EpisodeView:
    peak = episode.peak
    return EpisodeView(
        start=episode.start,
        end=episode.end,
        minutes=round(episode.minutes, 1),
        minutes_outside=round(episode.minutes_outside, 1),
        excursions=len(episode.excursions),
        side=peak.side.value,
        limit_c=peak.limit_c,
        peak_c=peak.extreme_c,
        ongoing=episode.ongoing,
    )


def episode_details(
    shipment: ShipmentRow, grouped: Sequence[ExcursionEpisode], cap: int
) -> list[str]:
    """The text of one exception per episode; past ``cap`` the last one sums up the rest."""
    where = f"shipment {shipment.id} ({shipment.direction})"
    texts = [f"{where}: {_describe(e)}" for e in grouped[: cap - 1]]
    rest = grouped[cap - 1 :]
    if len(rest) == 1:
        texts.append(f"{where}: {_describe(rest[0])}")
    elif rest:
        merged = ExcursionEpisode(tuple(x for e in rest for x in e.excursions))
        texts.append(
            f"{where}: {len(rest)} further excursion episodes (more than the "
            f"{cap} exceptions one log raises): {_describe(merged)}"
        )
    return texts


def _describe(episode: ExcursionEpisode) -> str:
    peak = episode.peak
    limit = f"{peak.limit_c:g} °C"
    end = ", still outside at log end" if episode.ongoing else ""
    span = f"from {episode.start.isoformat()} to {episode.end.isoformat()}"
    if len(episode.excursions) == 1:
        return (
            f"{peak.side.value} {limit} {span} ({episode.minutes:.0f} min, "
            f"extreme {peak.extreme_c:g} °C{end})"
        )
    return (
        f"{len(episode.excursions)} excursions {span} ({episode.minutes:.0f} min, "
        f"{episode.minutes_outside:.0f} min outside the limits), peak {peak.extreme_c:g} °C "
        f"{peak.side.value} {limit}{end}"
    )


@dataclass(frozen=True, slots=True)
class TemperatureTrace:
    """One stored logger file of a shipment, read again: its readings and excursions."""

    shipment_id: str
    log_id: int
    uploaded_at: datetime
    sha256: str
    low_c: float | None
    high_c: float | None
    readings: list[Reading]
    excursions: list[Excursion]


def temperature_traces(
    ctx: ServiceContext, principal: Principal, order_id: str
) -> list[TemperatureTrace]:
    """Every temperature log of the order's shipments, as stored, with its excursions.

    The stored text is read with the parser that accepted it at upload; its SHA-256 is
    checked first, so a plot never shows a file other than the one uploaded.
    """
    with ctx.reading() as session:
        order = load_order(session, principal, order_id)
        rows = session.execute(
            select(TemperatureLogRow, ShipmentRow)
            .join(ShipmentRow, ShipmentRow.id == TemperatureLogRow.shipment_id)
            .where(ShipmentRow.order_id == order.id)
            .order_by(ShipmentRow.created_at, TemperatureLogRow.id)
        ).all()
        traces = []
        for log, shipment in rows:
            if hashlib.sha256(log.content.encode("utf-8")).hexdigest() != log.sha256:
                raise Conflict(
                    f"temperature log {log.id} of shipment {shipment.id} does not match its "
                    "stored SHA-256",
                    code="integrity",
                )
            readings = read_temperature_log(log.content)
            traces.append(
                TemperatureTrace(
                    shipment_id=shipment.id,
                    log_id=log.id,
                    uploaded_at=log.uploaded_at,
                    sha256=log.sha256,
                    low_c=shipment.low_c,
                    high_c=shipment.high_c,
                    readings=readings,
                    excursions=excursions(readings, shipment.low_c, shipment.high_c),
                )
            )
        return traces
