"""``/auth`` and ``/users``: log in and out, enrol, change passwords, manage accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from cartnet.api.deps import IDENTIFIER, Caller, Context, client_address, raw_token
from cartnet.api.problems import INVALID, READ, THROTTLED, UNAUTHORIZED, WRITE
from cartnet.service import accounts
from cartnet.service.schemas import (
    AccountChange,
    Enrolment,
    EnrolRequest,
    Login,
    NewUser,
    PasswordChange,
    TokenIssued,
    UserView,
)
from cartnet.service.throttle import guard_of

router = APIRouter()
UserId = Annotated[str, Path(max_length=64, pattern=IDENTIFIER)]
Address = Annotated[str, Depends(client_address)]


@router.post(
    "/auth/tokens",
    response_model=TokenIssued,
    status_code=201,
    responses={**UNAUTHORIZED, **INVALID, **THROTTLED},
    tags=["auth"],
)
async def log_in(ctx: Context, body: Login, address: Address) -> TokenIssued:
    """Exchange username (any case) and password for a bearer token (it expires).

    Failed logins slow down and then lock the account and the client address (429 with
    ``Retry-After``); so does a server busy checking as many passwords as it has cores.
    """
    guard = guard_of(ctx)
    guard.addresses.check(address, ctx.now())
    with guard.slots.slot():  # taken here: a refused login costs no thread and no query
        return await run_in_threadpool(accounts.login, ctx, body.username, body.password, address)


@router.delete("/auth/tokens/current", status_code=204, responses=UNAUTHORIZED, tags=["auth"])
def log_out(ctx: Context, caller: Caller, token: Annotated[str, Depends(raw_token)]) -> Response:
    """Revoke the token of this request."""
    accounts.revoke_token(ctx, caller, token)
    return Response(status_code=204)


@router.post(
    "/auth/enrolment",
    response_model=UserView,
    responses={**UNAUTHORIZED, **INVALID, **THROTTLED},
    tags=["auth"],
)
def enrol(ctx: Context, body: EnrolRequest, address: Address) -> UserView:
    """Set your own password with the one-time enrolment token an administrator gave you."""
    return accounts.enrol(ctx, body.token, body.password, address)


@router.post(
    "/auth/password",
    status_code=204,
    responses={**UNAUTHORIZED, **INVALID, **THROTTLED},
    tags=["auth"],
)
def change_password(ctx: Context, body: PasswordChange, address: Address) -> Response:
    """Change your own password with the old one (works when it has expired too)."""
    accounts.change_password(ctx, body.username, body.old_password, body.new_password, address)
    return Response(status_code=204)


@router.get("/me", response_model=UserView, responses=UNAUTHORIZED, tags=["auth"])
def me(ctx: Context, caller: Caller) -> UserView:
    """Who the token belongs to: role and tenant."""
    return UserView(
        id=caller.user_id,
        username=caller.username,
        printed_name=caller.name,
        role=caller.role,
        center=caller.center,
        site=caller.site,
        active=True,
    )


@router.post("/users", response_model=Enrolment, status_code=201, responses=WRITE, tags=["users"])
def create_user(ctx: Context, caller: Caller, body: NewUser, request: Request) -> Enrolment:
    """Create an account (administrators): the answer carries its one-time enrolment
    token, with which the person sets their own password (POST /auth/enrolment)."""
    return _with_url(request, accounts.create_user(ctx, caller, body))


@router.get("/users", response_model=list[UserView], responses=READ, tags=["users"])
def list_users(ctx: Context, caller: Caller) -> list[UserView]:
    """Every account (administrators), with failed logins, lockouts and pending grants."""
    return accounts.list_users(ctx, caller)


@router.patch("/users/{user_id}", response_model=UserView, responses=WRITE, tags=["users"])
def change_user(ctx: Context, caller: Caller, user_id: UserId, body: AccountChange) -> UserView:
    """Disable or re-enable an account, change its role, tenant or printed name
    (administrators, not on their own account); GxP roles may wait for a second one."""
    return accounts.change_user(ctx, caller, user_id, body)


@router.post("/users/{user_id}/approval", response_model=Enrolment, responses=WRITE, tags=["users"])
def approve(ctx: Context, caller: Caller, user_id: UserId, request: Request) -> Enrolment:
    """Approve another administrator's pending GxP grant, account or reset."""
    return _with_url(request, accounts.approve(ctx, caller, user_id))


@router.post(
    "/users/{user_id}/password-reset", response_model=Enrolment, responses=WRITE, tags=["users"]
)
def reset_password(ctx: Context, caller: Caller, user_id: UserId, request: Request) -> Enrolment:
    """Force a new password: sessions end, the person enrols again with a new token."""
    return _with_url(
        request, accounts.reset_password(ctx, caller, user_id, "password reset by an administrator")
    )


@router.delete("/users/{user_id}/lockout", response_model=UserView, responses=WRITE, tags=["users"])
def unlock(ctx: Context, caller: Caller, user_id: UserId) -> UserView:
    """Lift a lockout after failed logins (administrators)."""
    return accounts.unlock(ctx, caller, user_id)


@router.delete("/users/{user_id}/tokens", status_code=204, responses=READ, tags=["users"])
def revoke_tokens(ctx: Context, caller: Caller, user_id: UserId) -> Response:
    """Revoke every live token and portal session of a user (administrators)."""
    accounts.revoke_user_tokens(ctx, caller, user_id)
    return Response(status_code=204)


def _with_url(request: Request, enrolment: Enrolment) -> Enrolment:
    if enrolment.enrolment_token is None:
        return enrolment
    url = str(request.base_url).rstrip("/") + "/enrol"  # the token is entered there, not sent
    return enrolment.model_copy(update={"enrolment_url": url})
