"""Sign-in on the HTTP port: `/api/auth/*`, and the dependencies that guard every other route.

    POST /api/auth/login        {username, password} against the users file, or
                                {databricks_token} verified by the engine (Databricks only)
    GET  /api/auth/me           the signed-in user
    POST /api/auth/refresh      a fresh token for a still-valid one
    GET  /api/auth/permissions  the user's roles and permissions, and the role mapping

Passwords are checked against the Postgres port's users file (the one `users` setting,
`--users`, written by `semproxy users add`): one file, read by one UsersFile, serves both
ports. Databricks tokens go through the Server's DatabricksTokens, whose cache the Postgres
side's `databricks` auth method shares. Roles come from `user_roles`
(`alice=admin;bob=analyst`), and anyone not named there has role `user`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from semproxy.auth.databricks import DatabricksTokens
from semproxy.auth.tokens import User, expires_at, issue_token, verify_token
from semproxy.auth.users import UsersFile
from semproxy.config import Settings
from semproxy.errors import InvalidPassword

log = structlog.get_logger("semproxy.admin.auth")
router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=1000)
    databricks_token: str | None = Field(default=None, max_length=4000)


def check_password(request: Request, username: str, password: str) -> User:
    """The user, if the users file (`--users`, shared with the Postgres port) verifies the password."""
    settings = settings_of(request)
    users: UsersFile | None = request.app.state.server.users
    secrets = users.get(username) if users is not None else None
    if secrets is None or not secrets.scram.matches(password):
        raise InvalidPassword("wrong user name or password")
    return User(username, None, settings.roles_of(username))


def user_view(user: User, settings: Settings) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "roles": list(user.roles),
        "permissions": sorted(user.permissions(settings)),
    }


def token_answer(user: User, settings: Settings) -> dict[str, Any]:
    token = issue_token(user, settings)
    expiry = expires_at(token)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": settings.access_token_expire_minutes * 60,
        "expires_at": iso(expiry),
        "user": user_view(user, settings),
    }


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.server.settings
    return settings


def current_user(request: Request) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("not signed in: send Authorization: Bearer <token> from POST /api/auth/login")
    try:
        return verify_token(token.strip(), settings_of(request))
    except InvalidPassword as exc:
        raise _unauthorized(exc.message) from None


CurrentUser = Annotated[User, Depends(current_user)]


def require(permission: str) -> Any:
    """A dependency: the signed-in user, if they hold `permission` (403 otherwise)."""

    def check(request: Request, user: CurrentUser) -> User:
        if permission not in user.permissions(settings_of(request)):
            raise HTTPException(403, f"this needs the {permission!r} permission")
        return user

    return Depends(check)


@router.post("/login")
async def login(body: LoginRequest, request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    try:
        if body.databricks_token:
            user = await _databricks_user(request, body.databricks_token)
        elif body.username and body.password is not None:
            user = check_password(request, body.username, body.password)
        else:
            raise HTTPException(422, "send username and password, or databricks_token")
    except InvalidPassword as exc:
        log.warning("sign-in refused", user=body.username)
        raise _unauthorized(exc.message) from None
    log.info("signed in", user=user.id)
    return token_answer(user, settings)


async def _databricks_user(request: Request, token: str) -> User:
    """The Databricks user a personal access token belongs to (`SELECT current_user()` run
    with that token, remembered for the cache TTL)."""
    server = request.app.state.server
    tokens: DatabricksTokens | None = server.databricks_tokens
    if tokens is None:
        raise HTTPException(
            400,
            f"the {server.engine.dialect} engine cannot verify Databricks tokens; sign in with username and password",
        )
    name = await tokens.user_of(token)
    return User(name, name if "@" in name else None, settings_of(request).roles_of(name))


@router.get("/me")
async def me(request: Request, user: CurrentUser) -> dict[str, Any]:
    return user_view(user, settings_of(request))


@router.post("/refresh")
async def refresh(request: Request, user: CurrentUser) -> dict[str, Any]:
    return token_answer(user, settings_of(request))


@router.get("/permissions")
async def permissions(request: Request, user: CurrentUser) -> dict[str, Any]:
    settings = settings_of(request)
    return {
        **user_view(user, settings),
        "roles_permissions": {role: sorted(p) for role, p in settings.permissions_by_role.items()},
    }
