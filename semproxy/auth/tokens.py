"""Sign-in tokens: JWTs that say who a user is and what their roles are.

The HTTP port issues them (`POST /api/auth/login`) and both sides accept them: the HTTP API
as `Authorization: Bearer <token>`, the Postgres side as the password of auth method `jwt`.
Permissions are computed from the roles by the configuration at verification time, so a
change to `role_permissions` applies to tokens already issued.

    token = issue_token(User("alice", "alice@example.com", ("analyst",)), settings)
    user = verify_token(token, settings)    # InvalidPassword if expired, tampered or malformed
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt

from semproxy.config import Settings
from semproxy.errors import InvalidPassword

ISSUER = "semproxy"
ROLES = ("user", "analyst", "engineer", "admin")


@dataclass(frozen=True)
class User:
    id: str  # the user name, or the Databricks user name
    email: str | None = None
    roles: tuple[str, ...] = ("user",)

    def permissions(self, settings: Settings) -> frozenset[str]:
        by_role = settings.permissions_by_role
        return frozenset().union(*(by_role.get(role, frozenset()) for role in self.roles))


def issue_token(user: User, settings: Settings, now: dt.datetime | None = None) -> str:
    """A signed token for `user`, valid for `settings.access_token_expire_minutes`."""
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": user.id,
        "email": user.email,
        "roles": list(user.roles),
        "permissions": sorted(user.permissions(settings)),
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + dt.timedelta(minutes=settings.access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.jwt_algorithm)


def expires_at(token: str) -> dt.datetime:
    """The expiry of a token this process issued (read without checking it again)."""
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    return dt.datetime.fromtimestamp(exp, dt.UTC)


def verify_token(token: str, settings: Settings) -> User:
    """The user a token names, if its signature, issuer and expiry hold; InvalidPassword otherwise.

    Only the configured algorithm is accepted (never `none`), and the message never
    repeats the token."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[settings.jwt_algorithm],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidPassword("the token has expired", hint="sign in again") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidPassword(f"invalid token: {type(exc).__name__}") from None
    roles = claims.get("roles") or []
    if not isinstance(claims["sub"], str) or not isinstance(roles, list):
        raise InvalidPassword("invalid token: malformed claims")
    email = claims.get("email")
    return User(claims["sub"], email if isinstance(email, str) else None, tuple(str(r) for r in roles))
