"""The FastAPI application: routers, error handling, limits, health check."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cartnet import __version__
from cartnet.api import accounts, cosignatures, network, orders, quotas
from cartnet.api.headers import SecurityHeaders
from cartnet.api.problems import (
    PROBLEM_TYPE,
    UNAVAILABLE,
    FieldProblem,
    Problem,
    problem_response,
)
from cartnet.service.context import ServiceContext
from cartnet.service.errors import ServiceError, TooManyRequests
from cartnet.service.job_runner import JobRunner
from cartnet.web import error_page, is_portal, mount_portal

log = logging.getLogger("cartnet.api")
API_PREFIX = "/api/v1"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@asynccontextmanager
async def _job_runner(app: FastAPI) -> AsyncIterator[None]:
    """Run the planners' background jobs while the server runs (``job_slots`` of them)."""
    ctx: ServiceContext = app.state.ctx
    settings = ctx.settings
    runner = JobRunner(
        ctx, slots=settings.job_slots, workers=settings.job_workers, scheduler=settings.scheduler
    )
    app.state.jobs = runner
    if settings.job_slots:
        runner.start()
    try:
        yield
    finally:
        runner.stop()


def create_app(ctx: ServiceContext) -> FastAPI:
    """The API over one service context (its database, network and keys)."""
    app = FastAPI(
        lifespan=_job_runner,
        title="cartnet",
        version=__version__,
        summary="Orchestration of autologous CAR-T therapies: orders, chain of identity "
        "and custody, audit trail",
        description="Every endpoint but `/healthz`, `POST /api/v1/auth/tokens`, "
        "`/auth/enrolment` and `/auth/password` needs a bearer token. Errors are RFC 9457 "
        "problem details; 429 (with `Retry-After`) after too many failed logins.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    for module in (accounts, orders, cosignatures, network, quotas):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/healthz", tags=["health"], responses=UNAVAILABLE)
    def healthz() -> dict[str, str]:
        """Liveness and database reachability; needs no token."""
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    mount_portal(app)
    app.add_middleware(BodyLimit, limit=ctx.settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError) -> Response:
        if is_portal(request):
            page = error_page(request, err.status, err.title, err.detail)
            if isinstance(err, TooManyRequests):
                page.headers["Retry-After"] = str(err.retry_after)
            return page
        return problem_response(
            err.status,
            err.title,
            err.detail,
            instance=request.url.path,
            code=err.code,
            field=err.field,
            headers=error_headers(err),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> Response:
        problems = [_field_problem(e) for e in err.errors()]
        if is_portal(request):
            what = "; ".join(f"{p.field}: {p.message}" for p in problems)
            return error_page(request, 422, "Invalid request", what)
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
        headers = dict(err.headers or {})
        if err.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        if is_portal(request):
            page = error_page(request, err.status_code, _title(err.status_code), str(err.detail))
            page.headers.update(headers)
            return page
        if err.status_code == 400 and err.__cause__ is not None:
            # FastAPI could not parse the body: JSON nested deeper than the parser goes.
            deep = isinstance(err.__cause__, RecursionError)
            return problem_response(
                400,
                "Malformed JSON",
                "the request body is nested too deeply to be read"
                if deep
                else "the request body cannot be read as JSON",
                instance=request.url.path,
                field="body",
            )
        return problem_response(
            err.status_code,
            _title(err.status_code),
            str(err.detail),
            instance=request.url.path,
            headers=headers or None,
        )

    @app.exception_handler(DataError)
    async def unstorable(request: Request, err: DataError) -> Response:
        return problem_response(
            422,
            "Invalid value",
            "a value cannot be stored (out of range, or a control character)",
            instance=request.url.path,
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

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            for path in document["paths"].values():
                for operation in path.values():
                    for status, response in operation.get("responses", {}).items():
                        if status[0] in "45":
                            response["content"] = {
                                PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, chunked uploads included.

    The body is read (up to the limit) before the application sees it, so a refused
    request never reaches a use case and nothing is written.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send, length.decode(errors="replace"))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send, f"more than {self.limit}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        if not size.isdigit() and not size.startswith("more"):
            response = problem_response(
                400, "Bad request", "Content-Length is not a number", field="Content-Length"
            )
        else:
            response = problem_response(
                413,
                "Request body too large",
                f"the body has {size} bytes; the limit is {self.limit}",
                instance=scope.get("path"),
                field="body",
            )
        await response(scope, receive, send)


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


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (RFC 9110 15.5.6: a 405 lists them).

    Starlette answers 405 from the first route whose path matched, so its ``Allow``
    names that route's methods only (``POST`` for ``/orders``, which also has ``GET``).
    """
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def error_headers(err: ServiceError) -> dict[str, str] | None:
    """``WWW-Authenticate`` on 401, ``Retry-After`` when a limit says when to retry."""
    if err.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(err, TooManyRequests):
        return {"Retry-After": str(err.retry_after)}
    return None


def _title(status: int) -> str:
    return {404: "Not found", 405: "Method not allowed", 401: "Not authenticated"}.get(
        status, "Error"
    )
