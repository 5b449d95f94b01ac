"""The FastAPI application: routers, error handling, limits, health check."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cartnet import __version__
from cartnet.api import accounts, network, orders
from cartnet.api.problems import FieldProblem, Problem, problem_response
from cartnet.service.context import ServiceContext
from cartnet.service.errors import ServiceError

log = logging.getLogger("cartnet.api")
API_PREFIX = "/api/v1"


def create_app(ctx: ServiceContext) -> FastAPI:
    """The API over one service context (its database, network and keys)."""
    app = FastAPI(
        title="cartnet",
        version=__version__,
        summary="Orchestration of autologous CAR-T therapies: orders, chain of identity "
        "and custody, audit trail",
        description="Every endpoint but `/healthz` and `POST /api/v1/auth/tokens` needs a "
        "bearer token. Errors are RFC 9457 problem details.",
    )
    app.state.ctx = ctx
    for module in (accounts, orders, network):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/healthz", tags=["health"], responses={503: {"model": Problem}})
    def healthz() -> dict[str, str]:
        """Liveness and database reachability; needs no token."""
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    limit = ctx.settings.max_upload_bytes

    @app.middleware("http")
    async def body_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return problem_response(
                    400, "Bad request", "Content-Length is not a number", field="Content-Length"
                )
            if int(length) > limit:
                return problem_response(
                    413,
                    "Request body too large",
                    f"the body has {length} bytes; the limit is {limit}",
                    field="body",
                )
        return await call_next(request)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError) -> Response:
        return problem_response(
            err.status,
            err.title,
            err.detail,
            instance=request.url.path,
            code=err.code,
            field=err.field,
            headers={"WWW-Authenticate": "Bearer"} if err.status == 401 else None,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> Response:
        problems = [_field_problem(e) for e in err.errors()]
        if any(e.get("type") == "json_invalid" for e in err.errors()):
            return problem_response(
                400,
                "Malformed JSON",
                "the request body is not valid JSON",
                instance=request.url.path,
                field="body",
                errors=problems,
            )
        first = problems[0] if problems else FieldProblem(field="body", message="invalid")
        return problem_response(
            422,
            "Invalid request",
            f"{first.field}: {first.message}",
            instance=request.url.path,
            field=first.field,
            errors=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        return problem_response(
            err.status_code, _title(err.status_code), str(err.detail), instance=request.url.path
        )

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, err: OperationalError) -> Response:
        log.error("database error on %s: %s", request.url.path, err)
        return problem_response(
            503,
            "Service unavailable",
            "the database is busy or unreachable; try again",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return problem_response(
            500,
            "Internal error",
            "the server failed; nothing was changed",
            instance=request.url.path,
        )

    return app


def _field_problem(error: dict[str, Any]) -> FieldProblem:
    location = [str(part) for part in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        at = location[1] if len(location) > 1 else "?"
        reason = (error.get("ctx") or {}).get("error", "JSON decode error")
        return FieldProblem(field="body", message=f"not valid JSON at character {at}: {reason}")
    if location and location[0] in ("body", "query", "path", "header"):
        where = location[0]
        rest = location[1:]
        name = ".".join(rest) if rest else where
        if where == "body" and rest:
            name = "body." + ".".join(rest)
        elif where != "body":
            name = f"{where}.{name}" if rest else where
    else:
        name = ".".join(location) or "body"
    return FieldProblem(field=name, message=str(error.get("msg", "invalid")))


def _title(status: int) -> str:
    return {404: "Not found", 405: "Method not allowed", 401: "Not authenticated"}.get(
        status, "Error"
    )
