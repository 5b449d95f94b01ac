"""Request dependencies: the service context and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cartnet.service import accounts
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Unauthorized

IDENTIFIER = r"^[!-~]+$"
"""Ids, cursors and codes in paths and queries: printable ASCII, no spaces."""

bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/tokens")


async def context(request: Request) -> ServiceContext:
    """The service context (async: FastAPI runs it on the event loop, no thread)."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(context)]


def principal(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from the ``Authorization: Bearer`` header; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send a bearer token: Authorization: Bearer <token>")
    return accounts.authenticate(ctx, credentials.credentials)


Caller = Annotated[Principal, Depends(principal)]


async def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy: as uvicorn's
    ``--forwarded-allow-ips`` lets it read ``X-Forwarded-For``); throttles count by it."""
    return request.client.host if request.client is not None else "unknown"


def raw_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    if credentials is None:
        raise Unauthorized("send a bearer token: Authorization: Bearer <token>")
    return credentials.credentials
