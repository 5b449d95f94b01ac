"""The network file in the workspace: the one the server runs, and checking a candidate.

``/planner/network`` shows the served file with line numbers and the network loader's
problems (line, field path, message), each linked to its line. A planner may paste or
upload a candidate file: it is checked by the same loader and shown the same way;
nothing is saved (changing the served network is an operator's configuration step).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from cartnet.ledger.roles import Role
from cartnet.service.errors import ServiceError
from cartnet.service.network_file import (
    MAX_CANDIDATE_BYTES,
    CheckedFile,
    check_network_file,
    served_network_file,
)
from cartnet.web.events import status_of
from cartnet.web.page import Page, field_errors, role_page

router = APIRouter()
Planner = Annotated[Page, Depends(role_page(Role.PLANNER))]
TEXT_FIELD = "network_text"
FILE_FIELD = "network_file"


@router.get("/planner/network")
async def network_file(page: Planner) -> Response:
    """The served network file and its problems, if any."""
    return await _render(page, None, {}, {}, 200)


@router.post("/planner/network/check")
async def check(page: Planner) -> Response:
    """Check a pasted or uploaded network file; it is not saved."""
    form = await page.form()
    upload = form.get(FILE_FIELD)
    pasted = form.get(TEXT_FIELD)
    text = pasted if isinstance(pasted, str) else ""
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_CANDIDATE_BYTES + 1)
            name = upload.filename
        else:
            data, name = text.encode("utf-8"), "pasted network file"
        candidate = await page.call(check_network_file, page.ctx, page.principal, data, name)
    except ServiceError as err:
        return await _render(page, None, {TEXT_FIELD: text}, field_errors(err), status_of(err))
    status = 200 if not candidate.problems else 422
    return await _render(page, candidate, {TEXT_FIELD: text}, {}, status)


async def _render(
    page: Page,
    candidate: CheckedFile | None,
    form: dict[str, str],
    errors: dict[str, str],
    status: int,
) -> Response:
    served = await page.call(served_network_file, page.ctx, page.principal)
    return page.render(
        "planner/network.html",
        status=status,
        served=served,
        scenario=page.ctx.settings.scenario,
        candidate=candidate,
        form=form,
        errors=errors,
        max_bytes=MAX_CANDIDATE_BYTES,
    )
