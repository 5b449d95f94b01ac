"""RFC 9457 problem details: one JSON shape for every error the API returns."""

from __future__ import annotations

from typing import Any, TypeAlias

from fastapi.responses import JSONResponse
from pydantic import BaseModel

PROBLEM_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """What went wrong: a title per kind, a detail for this case, the field at fault."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str | None = None
    field: str | None = None
    errors: list[FieldProblem] = []


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    code: str | None = None,
    field: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        field=field,
        errors=errors or [],
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_TYPE,
        headers=headers,
    )


Responses: TypeAlias = dict[int | str, dict[str, Any]]


def _doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


UNAUTHORIZED: Responses = {401: _doc("No valid bearer token: missing, unknown, expired or revoked")}
FORBIDDEN: Responses = {403: _doc("This role may not do this")}
NOT_FOUND: Responses = {404: _doc("No such record visible to this user")}
CONFLICT: Responses = {
    409: _doc("The record's state does not allow it (illegal step, slot taken, wrong scan)")
}
INVALID: Responses = {
    400: _doc("Malformed request body (not JSON)"),
    413: _doc("Request body too large"),
    422: _doc("A field is missing, of the wrong type, unknown or out of range"),
}
SCANS_LIMITED: Responses = {
    429: _doc(
        "A wrong scan beyond the refused-scan limit of the order or the user: refused, "
        "not recorded again; retry after Retry-After"
    )
}
UNAVAILABLE: Responses = {503: _doc("The database is busy or unreachable; retry (Retry-After)")}
THROTTLED: Responses = {
    429: _doc("Too many failed logins, or every password check is busy; retry (Retry-After)")
}
READ: Responses = {**UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND, **INVALID, **UNAVAILABLE}
SIGNED: Responses = {**READ, **CONFLICT, **THROTTLED}
"""A write that checks a password (an e-signature): a locked account or busy checks give 429."""
WRITE: Responses = {**READ, **CONFLICT}
