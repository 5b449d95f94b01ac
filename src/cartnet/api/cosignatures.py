"""``/cosignatures``: steps awaiting co-signature, signed by each co-signer in their own session.

A step that needs several independent signatures is answered ``202`` with
``pending`` set by the step's own endpoint; each co-signer lists what awaits them
here and signs with their password and the step's meaning (step-up re-authentication
in their own client). The last signature takes the step.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cartnet.api.deps import IDENTIFIER, Caller, Context
from cartnet.api.problems import READ, SIGNED, WRITE
from cartnet.service import cosign
from cartnet.service.schemas import CosignatureList, CosignatureView, CosignInput, CosignResult

router = APIRouter(prefix="/cosignatures", tags=["signatures"])
RequestId = Annotated[
    str, Path(max_length=64, pattern=IDENTIFIER, description="The co-signature request's id")
]


@router.get("", response_model=CosignatureList, responses=READ)
def list_cosignatures(ctx: Context, caller: Caller) -> CosignatureList:
    """Steps awaiting your co-signature (your role and tenant), and yours awaiting others."""
    return cosign.cosignatures(ctx, caller)


@router.post("/{request_id}/sign", response_model=CosignResult, responses=SIGNED)
def sign(ctx: Context, caller: Caller, request_id: RequestId, body: CosignInput) -> CosignResult:
    """Co-sign with your password and the step's meaning; the last signature takes the step.

    Every refusal for a wrong password, an unknown request or a person the rule does not
    let sign is the same ``403 cosignature-refused``.
    """
    request, result = cosign.cosign(ctx, caller, request_id, body)
    return CosignResult(request=request, result=result)


@router.post("/{request_id}/withdraw", response_model=CosignatureView, responses=WRITE)
def withdraw(ctx: Context, caller: Caller, request_id: RequestId) -> CosignatureView:
    """The first signer withdraws a step that still awaits co-signature (403 for anyone
    else, as for an unknown request)."""
    return cosign.withdraw(ctx, caller, request_id)
