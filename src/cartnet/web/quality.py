"""Quality: QC results, exceptions and the release decision, each on one page.

QA's home lists the batches in QC and the out-of-specification batches awaiting a
decision. The QC page records a batch's results (site operators and QA, as the
service allows). The exception queue shows the exceptions of every order the user
may see, filtered and paged; QA closes one with a reason code and text. The release
page puts on one screen everything QA weighs: the batch's QC results, the shipments'
temperature excursions plotted against their limits, the open exceptions, the chain
of custody with its gaps flagged, the planned dates and the expiry, and then the
signed release. The service refuses a release without passing results or with open
exceptions; the page shows why next to the field and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.custody import CustodyStep
from cartnet.ledger.lifecycle import OrderEvent, OrderState, transition_rule
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.service import custody, orders, quality, shipments
from cartnet.service.errors import Invalid, ServiceError
from cartnet.service.schemas import (
    CloseException,
    CustodyView,
    NewQcResult,
    OrderView,
)
from cartnet.web.actions import EVENT_PAGES, order_actions
from cartnet.web.center import Cursor, Search, check_search, order_queue
from cartnet.web.charts import temperature_chart
from cartnet.web.custody import OFFSETS, parse_local_time, signed_step_request
from cartnet.web.events import (
    cosigners_needed,
    status_of,
    step_errors,
    taken_or_pending,
    without_passwords,
)
from cartnet.web.page import AnyUser, Page, field_errors, form_values, role_page

router = APIRouter()
OrderId = Path(max_length=64, pattern=IDENTIFIER)
QaUser = Annotated[Page, Depends(role_page(Role.QA))]
QcUser = Annotated[Page, Depends(role_page(Role.SITE_OPERATOR, Role.QA))]
PAGE_SIZE = 25
LONG_TRANSIT = timedelta(hours=48)
"""A handoff to the next one in transit taking longer than this is flagged for QA."""
_TRANSIT_STEPS = frozenset(
    {
        CustodyStep.HANDOVER_TO_COURIER,
        CustodyStep.COURIER_TRANSFER,
        CustodyStep.HANDOVER_TO_COURIER_RETURN,
    }
)
_BEFORE_RELEASE: tuple[CustodyStep, ...] = (
    CustodyStep.COLLECTION,
    CustodyStep.HANDOVER_TO_COURIER,
    CustodyStep.RECEIPT_AT_SITE,
    CustodyStep.START_MANUFACTURING,
)
"""The handoffs every batch has before QA release, in their order."""
EXCEPTION_KINDS = ("scan_mismatch", "temperature_excursion")
_STATUSES = {"open": False, "closed": True, "all": None}


# --- QA home ----------------------------------------------------------------------------


@router.get("/qa")
async def qa_home(
    page: QaUser,
    q: str | None = Search,
    qc_cursor: str | None = Cursor,
    oos_cursor: str | None = Cursor,
) -> Response:
    """Batches in QC, out-of-specification batches awaiting disposition, open exceptions."""
    search = check_search(q)
    in_qc = await order_queue(
        page, [OrderState.IN_QC], cursor_name="qc_cursor", cursor=qc_cursor, search=search
    )
    oos = await order_queue(
        page,
        [OrderState.OUT_OF_SPECIFICATION],
        cursor_name="oos_cursor",
        cursor=oos_cursor,
        search=search,
    )
    exceptions = await page.call(quality.count_exceptions, page.ctx, page.principal, closed=False)
    return page.render(
        "qa/home.html",
        in_qc=in_qc,
        oos=oos,
        oos_actions=[
            (o, [a for a in order_actions(page.principal, o) if a.primary]) for o in oos.items
        ],
        open_exceptions=exceptions,
        form={"q": q or ""},
    )


# --- QC results -------------------------------------------------------------------------


def _qc_defaults(page: Page) -> dict[str, str]:
    return {"tested_at": page.ctx.now().strftime("%Y-%m-%dT%H:%M"), "utc_offset": "0"}


async def _qc_page(
    page: Page, order_id: str, form: dict[str, str], errors: dict[str, str], status: int
) -> Response:
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    results = await page.call(quality.qc_results, ctx, who, order_id)
    current = {r.id for r in await page.call(quality.current_qc_results, ctx, who, order_id)}
    return page.render(
        "qa/qc.html",
        status=status,
        order=order,
        results=results,
        current=current,
        oos_url=_oos_url(page, order),
        offsets=OFFSETS,
        form=form,
        errors=errors,
    )


def _oos_url(page: Page, order: OrderView) -> str | None:
    """The report-OOS page, if this user may report the batch out of specification now."""
    if OrderEvent.REPORT_OOS not in order.allowed_events:
        return None
    if page.principal.role not in transition_rule(order.state, OrderEvent.REPORT_OOS).roles:
        return None
    return EVENT_PAGES[OrderEvent.REPORT_OOS].format(id=order.id)


@router.get("/orders/{order_id}/qc")
async def qc_form(page: QcUser, order_id: str = OrderId) -> Response:
    """The batch's QC results and a form for the next one."""
    return await _qc_page(page, order_id, _qc_defaults(page), {}, 200)


@router.post("/orders/{order_id}/qc")
async def add_qc_result(page: QcUser, order_id: str = OrderId) -> Response:
    form = await page.form()
    values = form_values(form)
    try:
        try:
            tested_at = parse_local_time(values.get("tested_at"), values.get("utc_offset"))
        except Invalid as err:
            field = "tested_at" if err.field == "at" else err.field
            raise Invalid(err.detail, field=field) from None
        passed = values.get("passed")
        if passed not in ("yes", "no"):
            raise Invalid("choose whether the result meets the specification", field="passed")
        body = NewQcResult.model_validate(
            {
                "test": values.get("test"),
                "result": values.get("result"),
                "specification": values.get("specification"),
                "passed": passed == "yes",
                "tested_at": tested_at,
            }
        )
        await page.call(quality.add_qc_result, page.ctx, page.principal, order_id, body)
    except (ValidationError, ServiceError) as err:
        return await _qc_page(page, order_id, values, field_errors(err), status_of(err))
    return page.redirect(f"/orders/{order_id}/qc")


# --- exceptions -------------------------------------------------------------------------


@router.get("/exceptions")
async def exception_queue(
    page: AnyUser,
    kind: str | None = Query(None, max_length=64),
    status: str = Query("open", pattern="^(open|closed|all)$"),
    after: int | None = Query(None, ge=0),
) -> Response:
    """Exceptions on the orders the user may see, oldest first, filtered and counted."""
    ctx, who = page.ctx, page.principal
    chosen = kind or None
    closed = _STATUSES[status]
    items, last = await page.call(
        quality.open_exceptions, ctx, who, kind=chosen, closed=closed, after=after, limit=PAGE_SIZE
    )
    total = await page.call(quality.count_exceptions, ctx, who, kind=chosen, closed=closed)
    next_url = None
    if last is not None:
        kept = [(k, v) for k, v in (("kind", chosen), ("status", status)) if v]
        next_url = "/exceptions?" + urlencode([*kept, ("after", str(last))])
    return page.render(
        "qa/exceptions.html",
        exceptions=items,
        total=total,
        next_url=next_url,
        kinds=[(k, k.replace("_", " ")) for k in EXCEPTION_KINDS],
        statuses=[("open", "open"), ("closed", "closed"), ("all", "open and closed")],
        reasons=_reasons(),
        can_close=who.role is Role.QA,
        back=page.request.url.path
        + (f"?{page.request.url.query}" if page.request.url.query else ""),
        form={"kind": chosen or "", "status": status},
        first_page=after is None,
    )


def _reasons() -> list[tuple[str, str]]:
    return [(c.value, f"{c.value.replace('_', ' ')}: {c.description}") for c in ReasonCode]


def _back(target: str | None, order_id: str) -> str:
    """Where to go after closing: a path of this portal, else the order page."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"/orders/{order_id}"


@router.post("/orders/{order_id}/exceptions/{exception_id}/close")
async def close_exception(
    page: QaUser, exception_id: int = Path(ge=1), order_id: str = OrderId
) -> Response:
    """QA closes an exception after review, with a reason code and a reason text."""
    form = await page.form()
    values = form_values(form)
    back = _back(values.get("next"), order_id)
    ctx, who = page.ctx, page.principal
    try:
        body = CloseException.model_validate(
            {"reason_code": values.get("reason_code"), "reason_text": values.get("reason_text")}
        )
        await page.call(quality.close_exception, ctx, who, order_id, exception_id, body)
    except (ValidationError, ServiceError) as err:
        found = await page.call(quality.order_exceptions, ctx, who, order_id)
        exception = next((e for e in found if e.id == exception_id), None)
        if exception is None:
            raise
        order = await page.call(orders.get_order, ctx, who, order_id)
        return page.render(
            "qa/close.html",
            status=status_of(err),
            order=order,
            exception=exception,
            reasons=_reasons(),
            back=back,
            form=values,
            errors=field_errors(err),
        )
    return page.redirect(back)


# --- release ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainRow:
    """A custody event and what QA should look at in it."""

    event: CustodyView
    flags: list[str]


def chain_with_gaps(chain: list[CustodyView]) -> list[ChainRow]:
    """The custody chain with its gaps flagged: refused scans, missing steps, long transit."""
    rows: list[ChainRow] = []
    seen: set[CustodyStep] = set()
    in_transit_since: datetime | None = None
    for event in chain:
        flags: list[str] = []
        if not event.accepted:
            flags.append(f"refused scan: {event.refusal_reason or 'not this order'}")
        else:
            if event.step in _BEFORE_RELEASE:
                index = _BEFORE_RELEASE.index(event.step)
                missing = [s for s in _BEFORE_RELEASE[:index] if s not in seen]
                if missing:
                    names = ", ".join(s.value.replace("_", " ") for s in missing)
                    flags.append(f"missing before this step: {names}")
            if in_transit_since is not None and event.at - in_transit_since > LONG_TRANSIT:
                hours = (event.at - in_transit_since).total_seconds() / 3600
                flags.append(f"{hours:.0f} h in transit since the previous handoff")
            in_transit_since = event.at if event.step in _TRANSIT_STEPS else None
            seen.add(event.step)
        rows.append(ChainRow(event, flags))
    return rows


@router.get("/orders/{order_id}/release")
async def release_page(page: QaUser, order_id: str = OrderId) -> Response:
    """Everything QA weighs for one batch, then the signed release."""
    return await _release(page, order_id, _release_defaults(page), {}, False, 200)


def _release_defaults(page: Page) -> dict[str, str]:
    return {"at": page.ctx.now().strftime("%Y-%m-%dT%H:%M"), "utc_offset": "0"}


@router.post("/orders/{order_id}/release")
async def release(page: QaUser, order_id: str = OrderId) -> Response:
    form = await page.form()
    ctx, who = page.ctx, page.principal
    values = form_values(form)
    try:
        body = signed_step_request(page, values)
        step = CustodyStep.RELEASE
        result = await page.call(custody.record_signed_step, ctx, who, order_id, step, body)
    except (ValidationError, ServiceError) as err:
        recorded = isinstance(err, ServiceError) and err.code == "coi-mismatch"
        shown = {
            k: v
            for k, v in without_passwords(values).items()
            if not (recorded and k in ("scanned", "typed"))
        }
        return await _release(page, order_id, shown, step_errors(err), recorded, status_of(err))
    return taken_or_pending(page, result, f"/orders/{order_id}")


async def _release(
    page: Page,
    order_id: str,
    form: dict[str, str],
    errors: dict[str, str],
    recorded: bool,
    status: int,
) -> Response:
    ctx, who = page.ctx, page.principal
    order = await page.call(orders.get_order, ctx, who, order_id)
    results = await page.call(quality.current_qc_results, ctx, who, order_id)
    found = await page.call(quality.order_exceptions, ctx, who, order_id)
    chain = await page.call(custody.custody_chain, ctx, who, order_id)
    sent = await page.call(shipments.shipments, ctx, who, order_id)
    traces = await page.call(shipments.temperature_traces, ctx, who, order_id)
    can_release = order.state is OrderState.IN_QC
    rule = transition_rule(order.state, OrderEvent.RELEASE) if can_release else None
    values: dict[str, Any] = {
        "order": order,
        "results": results,
        "failed": [r for r in results if not r.passed],
        "open_exceptions": [e for e in found if e.closed_at is None],
        "chain": chain_with_gaps(chain),
        "shipments": sent,
        "traces": [
            (t, temperature_chart(t.readings, t.low_c, t.high_c, t.excursions))
            for t in traces
            if t.readings
        ],
        "site": None if order.plan is None else ctx.network.site(order.plan.site),
        "rule": rule,
        "cosigners": cosigners_needed(page, order, rule),
        "offsets": OFFSETS,
        "reasons": _reasons(),
        "oos_url": _oos_url(page, order),
        "recorded": recorded,
        "form": form,
        "errors": errors,
    }
    return page.render("qa/release.html", status=status, **values)
