"""What every portal page shares: the logged-in user, templates, forms, CSRF, redirects.

A page handler takes a :class:`Page` (a logged-in user; anyone else is sent to the
login page) and calls the service's use cases through :meth:`Page.call`, exactly as the
API does, so the rules and the tenancy live in one place. Forms post back to the page;
a refusal re-renders the form with the message next to the field and status 422.
Pages read fully without JavaScript; with htmx (``hx-boost``) links and forms swap the
page body instead of reloading it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from cartnet import __version__
from cartnet.ledger.roles import Role
from cartnet.service.access import Principal
from cartnet.service.context import ServiceContext
from cartnet.service.errors import Forbidden, ServiceError, Unauthorized
from cartnet.service.sessions import PortalSession, csrf_matches, resume_session
from cartnet.web.assets import HTMX
from cartnet.web.bell import bell_for

SESSION_COOKIE = "cartnet_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_ERROR = "_form"
"""Key of a message about the whole form rather than one field."""

_TEMPLATES = Path(__file__).resolve().parent / "templates"
P = ParamSpec("P")
T = TypeVar("T")


class LoginRequired(Exception):  # noqa: N818  (a redirect, not an error)
    """No live session: a GET goes to the login page, anything else is refused (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfRefused(Forbidden):
    """A state-changing request without the session's CSRF token."""

    def __init__(self) -> None:
        super().__init__(
            "the form has no valid CSRF token (it may be older than your session); "
            "reload the page and send it again",
            code="csrf",
        )


def when(value: datetime | None) -> str:
    """A moment in UTC with its zone, to the minute: ``2026-12-04 15:52 UTC``."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def local_time(value: datetime, offset_minutes: int) -> str:
    """A moment at the place it happened, with its offset: ``2026-12-04 16:52 UTC+01:00``."""
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    local = value.astimezone(UTC) + timedelta(minutes=offset_minutes)
    return f"{local:%Y-%m-%d %H:%M} UTC{sign}{hours:02d}:{minutes:02d}"


def day(value: date | None) -> str:
    return "—" if value is None else value.isoformat()


def label(value: object) -> str:
    """An enum value or identifier as words: ``shipped_to_site`` → ``shipped to site``."""
    return str(getattr(value, "value", value)).replace("_", " ")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, local_time=local_time, day=day, label=label)
    env.globals.update(version=__version__, htmx=HTMX, Role=Role, CSRF_FIELD=CSRF_FIELD)
    return env


TEMPLATES = _environment()


@dataclass
class Page:
    """One request to the portal: who asks, their session, and how to answer."""

    request: Request
    ctx: ServiceContext
    session: PortalSession | None

    @property
    def principal(self) -> Principal:
        if self.session is None:
            raise LoginRequired("you are not logged in")
        return self.session.principal

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        """The template as a page; every template sees the user, their CSRF token, the path."""
        user = None if self.session is None else self.session.principal
        context = {
            "user": user,
            "bell": bell_for(self.ctx, user),
            "csrf": None if self.session is None else self.session.csrf_token,
            "network": self.ctx.network,
            "path": self.request.url.path,
            "errors": {},
            "form": {},
            **values,
        }
        html = TEMPLATES.get_template(template).render(context)
        return HTMLResponse(html, status_code=status)

    async def form(self) -> FormData:
        """The posted form, once its CSRF token is checked; :class:`CsrfRefused` if not."""
        data = await self.request.form()
        if self.session is None:
            raise LoginRequired("you are not logged in")
        given = self.request.headers.get(CSRF_HEADER) or _text(data.get(CSRF_FIELD))
        if not csrf_matches(self.session.csrf_token, given):
            raise CsrfRefused()
        return data

    async def call(self, use_case: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a use case off the event loop (it blocks on the database)."""
        return await run_in_threadpool(use_case, *args, **kwargs)

    def redirect(self, url: str) -> Response:
        """After a successful post: 303 to ``url``; under htmx, a full load of ``url``.

        A full load (``HX-Redirect``) rather than a swap: the next page is another record,
        and its address belongs in the browser's bar and history.
        """
        if self.request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def form_values(form: FormData) -> dict[str, str]:
    """The text fields of a form, stripped; empty ones left out (as not given)."""
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key != CSRF_FIELD and value.strip():
            values[key] = value.strip()
    return values


def field_errors(err: ValidationError | ServiceError) -> dict[str, str]:
    """Messages by form field, from a refused request; ``_form`` for the whole form."""
    if isinstance(err, ServiceError):
        name = (err.field or FORM_ERROR).split(".")[-1]
        return {name: err.detail}
    errors: dict[str, str] = {}
    for problem in err.errors():
        location = [str(part) for part in problem.get("loc", ())]
        name = location[-1] if location else FORM_ERROR
        errors.setdefault(name, _message(problem))
    return errors


def _message(problem: Mapping[str, Any]) -> str:
    kind = problem.get("type", "")
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch":
        return "contains characters that are not allowed"
    return str(problem.get("msg", "invalid")).removeprefix("Value error, ")


def _session(request: Request) -> PortalSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    ctx: ServiceContext = request.app.state.ctx
    try:
        return resume_session(ctx, token)
    except Unauthorized:
        return None


def anonymous_page(request: Request) -> Page:
    """A page anyone may see (the login page): the session if there is one."""
    return Page(request, request.app.state.ctx, _session(request))


def user_page(request: Request) -> Page:
    """A page for a logged-in user; others go to the login page."""
    page = anonymous_page(request)
    if page.session is None:
        raise LoginRequired("log in to continue")
    return page


def role_page(*roles: Role) -> Callable[[Request], Page]:
    """A page for some roles only: others get 403, as the API would answer them."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> Page:
        page = user_page(request)
        page.principal.require(allowed, f"open {request.url.path}")
        return page

    return dependency


AnyUser = Annotated[Page, Depends(user_page)]
Anonymous = Annotated[Page, Depends(anonymous_page)]


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")
