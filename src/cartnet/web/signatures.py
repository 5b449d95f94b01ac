"""Signatures awaiting you: co-sign a step in your own session, or withdraw your own.

Where a country asks for several independent signatures at a step, the first signer's
form leaves the step awaiting co-signature (:mod:`cartnet.service.cosign`). This page
lists the steps the logged-in person may co-sign (their role and tenant, by the
step's rule) with what they sign, and the steps they signed first that still wait. A
co-signer re-enters their password and confirms the step's meaning; the last
signature takes the step and leads to the order.
"""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import ValidationError

from cartnet.api.deps import IDENTIFIER
from cartnet.service import cosign
from cartnet.service.errors import ServiceError
from cartnet.service.schemas import CosignInput
from cartnet.web.page import FORM_ERROR, AnyUser, Page, form_values

router = APIRouter()
RequestId = Path(max_length=64, pattern=IDENTIFIER)


def password_field(request_id: str) -> str:
    """The password field of one request's co-signature form."""
    return f"password_{request_id}"


@router.get("/signatures")
async def signatures(page: AnyUser) -> Response:
    """Steps awaiting your co-signature, and yours awaiting others'."""
    return await _render(page, {}, 200)


@router.post("/signatures/{request_id}/sign")
async def sign(page: AnyUser, request_id: str = RequestId) -> Response:
    form = await page.form()
    values = form_values(form)
    try:
        body = CosignInput.model_validate(
            {"password": values.get("password"), "meaning": values.get("meaning")}
        )
        _, result = await page.call(cosign.cosign, page.ctx, page.principal, request_id, body)
    except ValidationError as err:
        first = err.errors()[0]
        where = first["loc"][0] if first.get("loc") else ""
        message = "required" if first.get("type") == "missing" else str(first.get("msg"))
        name = password_field(request_id) if where == "password" else FORM_ERROR
        return await _render(page, {name: message}, 422)
    except ServiceError as err:
        name = password_field(request_id) if err.field == "password" else FORM_ERROR
        return await _render(page, {name: err.detail}, err.status)
    if result is not None:
        return page.redirect(f"/orders/{result.order.id}")
    return page.redirect("/signatures")


@router.post("/signatures/{request_id}/withdraw")
async def withdraw(page: AnyUser, request_id: str = RequestId) -> Response:
    await page.form()
    try:
        await page.call(cosign.withdraw, page.ctx, page.principal, request_id)
    except ServiceError as err:
        return await _render(page, {FORM_ERROR: err.detail}, err.status)
    return page.redirect("/signatures")


async def _render(page: Page, errors: dict[str, str], status: int) -> Response:
    listed = await page.call(cosign.cosignatures, page.ctx, page.principal)
    shown = {password_field(r.id) for r in listed.awaiting_you}
    errors = {k if k in shown or k == FORM_ERROR else FORM_ERROR: v for k, v in errors.items()}
    return page.render(
        "signatures/list.html",
        status=status,
        awaiting=listed.awaiting_you,
        yours=listed.yours,
        password_field=password_field,
        errors=errors,
    )
