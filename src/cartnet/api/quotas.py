"""``/quotas``: planners hold a site's slots for a center, market or trial; audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from cartnet.api.deps import IDENTIFIER, Caller, Context
from cartnet.api.problems import READ, WRITE
from cartnet.service import quotas
from cartnet.service.quotas import NewQuota, QuotaChange, QuotaList, QuotaRetirement, QuotaView

router = APIRouter(prefix="/quotas", tags=["quotas"])
QuotaId = Annotated[str, Path(max_length=64, pattern=IDENTIFIER, description="The quota's id")]


@router.get("", response_model=QuotaList, responses=READ)
def list_quotas(
    ctx: Context,
    caller: Caller,
    site: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER)] = None,
    retired: Annotated[bool, Query(description="Include retired quotas")] = False,
) -> QuotaList:
    """Quotas with the slots each holds, how many its holder used, how many are left."""
    return quotas.list_quotas(ctx, caller, site=site, retired=retired)


@router.post("", response_model=QuotaView, status_code=201, responses=WRITE)
def create_quota(ctx: Context, caller: Caller, body: NewQuota) -> QuotaView:
    """Hold slots of a site for a center, market or trial over a period (planners)."""
    return quotas.create_quota(ctx, caller, body)


@router.get("/{quota_id}", response_model=QuotaView, responses=READ)
def get_quota(ctx: Context, caller: Caller, quota_id: QuotaId) -> QuotaView:
    return quotas.get_quota(ctx, caller, quota_id)


@router.patch("/{quota_id}", response_model=QuotaView, responses=WRITE)
def change_quota(ctx: Context, caller: Caller, quota_id: QuotaId, body: QuotaChange) -> QuotaView:
    """Change a quota's slots or share, period or release rule, with a reason."""
    return quotas.change_quota(ctx, caller, quota_id, body)


@router.delete("/{quota_id}", response_model=QuotaView, responses=WRITE)
def retire_quota(
    ctx: Context, caller: Caller, quota_id: QuotaId, body: Annotated[QuotaRetirement, Body()]
) -> QuotaView:
    """Retire a quota, with a reason: it holds nothing from now on; it is kept, marked retired."""
    return quotas.retire_quota(ctx, caller, quota_id, body)
