"""Which PasswordVerifier checks the cleartext password of each password-type auth method.

    password     the users file (a SCRAM verifier checked against the cleartext)
    jwt          a sign-in token of the HTTP port (`POST /api/auth/login`) whose subject is
                 the user name of the startup packet
    databricks   a Databricks personal access token, verified once per cache TTL; the user
                 name is the token's Databricks user (`alice@example.com`) or `token`, as
                 Databricks' own JDBC/ODBC drivers send it. The session's queries then run
                 with the token, so Unity Catalog's permissions are the user's own.

A refusal says nothing of why (the client sees 28P01 "password authentication failed");
the log says why, without the token.
"""

from __future__ import annotations

import structlog

from semproxy.auth.databricks import DatabricksTokens, fingerprint
from semproxy.auth.methods import Login, PasswordVerifier
from semproxy.auth.tokens import verify_token
from semproxy.auth.users import UsersFile
from semproxy.config import Settings
from semproxy.errors import ConfigError, InvalidPassword

log = structlog.get_logger("semproxy.auth")
TOKEN_USER = "token"  # the user name Databricks' drivers send with a personal access token


def password_verifier(
    settings: Settings, users: UsersFile | None, databricks: DatabricksTokens | None
) -> PasswordVerifier | None:
    """The verifier of `settings.auth_method`; None where the method checks the users file itself."""
    if settings.auth_method == "jwt":
        return jwt_verifier(settings)
    if settings.auth_method == "databricks":
        if databricks is None:
            raise ConfigError("auth databricks verifies Databricks tokens: it needs --engine databricks")
        return databricks_verifier(databricks)
    return None


def jwt_verifier(settings: Settings) -> PasswordVerifier:
    async def verify(user: str, password: str) -> Login | None:
        try:
            who = verify_token(password, settings)
        except InvalidPassword as exc:
            log.info("sign-in token refused", user=user, reason=exc.message)
            return None
        if who.id != user:
            log.info("sign-in token refused", user=user, reason="the token names another user")
            return None
        return Login()

    return verify


def databricks_verifier(tokens: DatabricksTokens) -> PasswordVerifier:
    async def verify(user: str, password: str) -> Login | None:
        try:
            name = await tokens.user_of(password)
        except InvalidPassword:
            return None
        if user != TOKEN_USER and user.casefold() != name.casefold():
            log.info("Databricks token refused", user=user, token=fingerprint(password),
                     reason="the token belongs to another user")  # fmt: skip
            return None
        return Login(engine=tokens.engine.as_user(password))

    return verify
