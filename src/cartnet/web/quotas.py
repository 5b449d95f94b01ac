"""The planner's quota page: which slots are held for whom, how much is used, add, retire.

Every quota of the service is listed with the slots it holds, what its holder has used
and what it still holds; a form adds one (slots or a share of the site's starts over a
period, with its release rule and a reason), and each active quota has a retire form
that asks for the reason. The same use cases serve ``/api/v1/quotas``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.ledger.reasons import ReasonCode
from cartnet.ledger.roles import Role
from cartnet.schedule.capacity import HolderKind
from cartnet.service import quotas
from cartnet.service.errors import ServiceError
from cartnet.service.quotas import NewQuota, QuotaRetirement
from cartnet.web.events import reason_choices, status_of
from cartnet.web.page import FORM_ERROR, Page, field_errors, form_values, role_page

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
QuotaId = Path(max_length=64, pattern=IDENTIFIER)
REASONS = reason_choices(c for c in ReasonCode if c is not ReasonCode.EXPANDED_ACCESS)


async def _render(
    page: Page, form: dict[str, Any], errors: dict[str, str], status: int, retired: bool
) -> Response:
    found = await page.call(quotas.list_quotas, page.ctx, page.principal, retired=retired)
    net = page.ctx.network
    return page.render(
        "planner/quotas.html",
        status=status,
        quotas=found.items,
        retired=retired,
        sites=[(s.id, s.name) for s in net.sites],
        kinds=[(k.value, k.value) for k in HolderKind],
        centers=[c.id for c in net.treatment_centers],
        markets=[m.id for m in net.markets],
        trials=sorted({a.trial for s in net.sites for a in s.approvals if a.trial}),
        reasons=REASONS,
        form=form,
        errors=errors,
    )


@router.get("/planner/quotas")
async def quota_page(page: Planner, retired: Annotated[bool, Query()] = False) -> Response:
    """The quotas, their use, and the form to add one."""
    today = page.ctx.today().isoformat()
    form = {"period_start": today, "period_end": today, "release_days": "14"}
    return await _render(page, form, {}, 200, retired)


@router.post("/planner/quotas")
async def add_quota(page: Planner) -> Response:
    values = form_values(await page.form())
    try:
        new = NewQuota.model_validate(
            {
                k: values.get(k)
                for k in (
                    "site", "holder_kind", "holder", "slots", "share", "period_start",
                    "period_end", "release_days", "reason_code", "reason_text",
                )
                if k in values
            }
        )  # fmt: skip
        await page.call(quotas.create_quota, page.ctx, page.principal, new)
    except (ValidationError, ServiceError) as err:
        return await _render(page, values, field_errors(err), status_of(err), False)
    return page.redirect("/planner/quotas")


@router.post("/planner/quotas/{quota_id}/retire")
async def retire(page: Planner, quota_id: str = QuotaId) -> Response:
    values = form_values(await page.form())
    try:
        body = QuotaRetirement.model_validate(
            {k: values[k] for k in ("reason_code", "reason_text") if k in values}
        )
        await page.call(quotas.retire_quota, page.ctx, page.principal, quota_id, body)
    except (ValidationError, ServiceError) as err:
        problem = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in field_errors(err).items())
        errors = {FORM_ERROR: f"quota {quota_id} not retired: {problem}"}
        return await _render(page, {}, errors, status_of(err), False)
    return page.redirect("/planner/quotas")
