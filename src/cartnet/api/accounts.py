"""``/auth`` and ``/users``: log in and out, manage accounts (administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from cartnet.api.deps import IDENTIFIER, Caller, Context, raw_token
from cartnet.api.problems import INVALID, READ, UNAUTHORIZED, WRITE
from cartnet.service import accounts
from cartnet.service.schemas import Login, NewUser, TokenIssued, UserView

router = APIRouter()


@router.post(
    "/auth/tokens",
    response_model=TokenIssued,
    status_code=201,
    responses={**UNAUTHORIZED, **INVALID},
    tags=["auth"],
)
def log_in(ctx: Context, body: Login) -> TokenIssued:
    """Exchange username and password for a bearer token (it expires; log in again)."""
    return accounts.login(ctx, body.username, body.password)


@router.delete("/auth/tokens/current", status_code=204, responses=UNAUTHORIZED, tags=["auth"])
def log_out(ctx: Context, caller: Caller, token: Annotated[str, Depends(raw_token)]) -> Response:
    """Revoke the token of this request."""
    accounts.revoke_token(ctx, token)
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


@router.post("/users", response_model=UserView, status_code=201, responses=WRITE, tags=["users"])
def create_user(ctx: Context, caller: Caller, body: NewUser) -> UserView:
    """Create an account (administrators)."""
    return accounts.create_user(ctx, caller, body)


@router.get("/users", response_model=list[UserView], responses=READ, tags=["users"])
def list_users(ctx: Context, caller: Caller) -> list[UserView]:
    """Every account (administrators)."""
    return accounts.list_users(ctx, caller)


@router.delete("/users/{user_id}/tokens", status_code=204, responses=READ, tags=["users"])
def revoke_tokens(
    ctx: Context, caller: Caller, user_id: Annotated[str, Path(max_length=64, pattern=IDENTIFIER)]
) -> Response:
    """Revoke every live token of a user (administrators)."""
    accounts.revoke_user_tokens(ctx, caller, user_id)
    return Response(status_code=204)
