"""The portal in the service's process: its routes, static files and error pages.

:func:`mount_portal` adds the pages to the API's FastAPI application, so one process
serves both on the same use cases, accounts and tenancy. The security headers of its
pages (the Content-Security-Policy, ``no-store``) are set with the API's, by
:class:`cartnet.api.headers.SecurityHeaders`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cartnet.web.assets import API_DOCS_DIR, STATIC_DIR
from cartnet.web.page import TEMPLATES, LoginRequired, anonymous_page, login_url

API_DOCS_PATHS = ("/docs", "/redoc")
"""Swagger UI and ReDoc start from an inline script: they get no CSP, and no data."""
NOT_PORTAL = ("/api/", "/healthz", "/openapi.json", "/static/")


def is_portal(request: Request) -> bool:
    """Whether errors on this path are answered as pages rather than problem details."""
    path = request.url.path
    return not path.startswith(NOT_PORTAL) and path not in API_DOCS_PATHS


def page_routers() -> list[APIRouter]:
    """The routers of the portal's pages, in the order they are mounted."""
    from cartnet.web import (
        center,
        coordinator,
        custody,
        events,
        logistics,
        orders,
        planner,
        planner_design,
        planner_network,
        planner_optimize,
        quality,
        quotas,
        signatures,
        signin,
        site,
        tower,
    )

    modules = (
        signin, coordinator, center, orders, custody, events, signatures, site, quality,
        logistics, planner, planner_optimize, planner_design, planner_network, quotas,
        tower,
    )  # fmt: skip
    return [module.router for module in modules]


def mount_portal(app: FastAPI) -> None:
    """Add the portal's pages, static files, offline API docs and page headers."""
    app.mount("/static/api-docs", StaticFiles(directory=API_DOCS_DIR), name="api-docs")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in page_routers():
        app.include_router(router, include_in_schema=False)

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="cartnet API",
            swagger_js_url="/static/api-docs/swagger-ui-bundle.js",
            swagger_css_url="/static/api-docs/swagger-ui.css",
            swagger_favicon_url="/static/api-docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="cartnet API",
            redoc_js_url="/static/api-docs/redoc.standalone.js",
            redoc_favicon_url="/static/api-docs/favicon.png",
            with_google_fonts=False,
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, err: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(login_url(target), status_code=303)
        return error_page(request, 401, "Not logged in", f"{err.reason}: log in and try again")


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error as a page of the portal, with the same status the API would answer."""
    page = anonymous_page(request)
    return page.render("error.html", status=status, title=title, detail=detail)


__all__ = ["TEMPLATES", "error_page", "is_portal", "mount_portal"]
