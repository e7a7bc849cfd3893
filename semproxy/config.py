"""Settings from flags, environment (SEMPROXY_*) and defaults. The only reader of the environment.

Precedence: a command-line flag, then `SEMPROXY_<NAME>` in the environment, then the plain
names of the backend plan (`SECRET_KEY`, `ACCESS_TOKEN_EXPIRE_MINUTES`, `CORS_ORIGINS`, ...),
then a `.env` file in the working directory, then the default.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from semproxy.errors import ConfigError

AUTH_METHODS = ("trust", "password", "md5", "scram-sha-256", "jwt", "databricks")
# the password is a token that says who the user is: no users file needed
TOKEN_AUTH_METHODS = ("jwt", "databricks")
DEFAULT_SECRET_KEY = "semproxy-development-secret-change-me"
# env names of the backend plan, read when SEMPROXY_<NAME> is not set
PLAIN_NAMES = {
    "environment": "ENVIRONMENT",
    "secret_key": "SECRET_KEY",
    "jwt_algorithm": "ALGORITHM",
    "access_token_expire_minutes": "ACCESS_TOKEN_EXPIRE_MINUTES",
    "cors_origins": "CORS_ORIGINS",
    "metadata_cache_ttl_minutes": "METADATA_CACHE_TTL_MINUTES",
    "databricks_host": "DATABRICKS_HOST",
    "databricks_http_path": "DATABRICKS_HTTP_PATH",
    "databricks_warehouse_id": "DATABRICKS_WAREHOUSE_ID",
    "databricks_token": "DATABRICKS_TOKEN",
    "databricks_client_id": "DATABRICKS_CLIENT_ID",
    "databricks_client_secret": "DATABRICKS_CLIENT_SECRET",
    "databricks_profile": "DATABRICKS_CONFIG_PROFILE",
}
ENGINES = ("duckdb", "postgres", "spark", "databricks")


@dataclass(frozen=True)
class Settings:
    models: Path = Path("semantic-models")
    database: str = "data/demo.duckdb"
    engine: str = "duckdb"  # duckdb | postgres | spark | databricks; --database is its target
    engine_timeout: int = 120  # seconds a warehouse statement may run before it is canceled (57014)
    databricks_host: str | None = None
    databricks_http_path: str | None = None
    databricks_warehouse_id: str | None = None
    databricks_token: str | None = field(default=None, repr=False)
    databricks_client_id: str | None = None
    databricks_client_secret: str | None = field(default=None, repr=False)
    databricks_profile: str | None = None
    # how long a Databricks token's user, once verified, is remembered (auth databricks, sign-in)
    databricks_token_cache_minutes: int = 10
    host: str = "127.0.0.1"
    port: int = 5433
    http_port: int = 8080
    state_dir: Path = Path(".state")
    catalog_dsn: str | None = None
    database_name: str = "semantic"
    auth: str | None = None
    environment: str = "development"
    log_level: str = "info"
    max_connections: int = 1000
    # the Postgres listener: its users file (hashed secrets), TLS, limits
    users: str | None = None  # `semproxy users add` writes it; scram-sha-256 is then the default auth
    tls_cert: str | None = None
    tls_key: str | None = None
    require_tls: bool = False
    idle_session_timeout: int = 0  # seconds a session may sit idle between statements; 0 = forever
    max_message: int = 64 << 20  # bytes; a longer frontend message ends its connection
    # the HTTP side: sign-in tokens, CORS, metadata cache, uploads
    secret_key: str = DEFAULT_SECRET_KEY
    jwt_algorithm: str = "HS256"
    access_token_expire_minutes: int = 30
    cors_origins: str = ""  # comma-separated origins; "*" for any
    metadata_cache_ttl_minutes: int = 5
    user_roles: str = ""  # name=role,role;... for the users file's users; anyone else has role "user"
    max_upload_bytes: int = 1 << 20
    # role=permission,permission;... (permissions: read, write, delete, execute)
    role_permissions: str = "user=read;analyst=read,execute;engineer=read,write,execute;admin=read,write,delete,execute"

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
        """Build settings from the environment and then the non-None `overrides` (flags)."""
        env = {**_dotenv(), **os.environ} if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SEMPROXY_{f.name.upper()}", env.get(PLAIN_NAMES.get(f.name, "")))
            if raw is not None:
                values[f.name] = _coerce(f.name, raw, cls)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = _coerce(name, value, cls) if isinstance(value, str) else value
        return replace(cls(), **values).checked()

    def checked(self) -> Settings:
        if self.auth is not None and self.auth not in AUTH_METHODS:
            raise ConfigError(f"unknown auth method {self.auth!r}; known: {', '.join(AUTH_METHODS)}")
        if self.auth_method == "trust" and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without authentication: trust is only allowed "
                "on a loopback address (127.0.0.1, ::1, localhost); configure an auth method or "
                "listen on 127.0.0.1"
            )
        if self.auth_method == "databricks" and self.engine != "databricks":
            raise ConfigError("auth databricks verifies Databricks tokens: it needs --engine databricks")
        if self.auth_method not in ("trust", *TOKEN_AUTH_METHODS) and self.users is None:
            raise ConfigError(f"auth {self.auth_method} needs a users file (--users); see `semproxy users add`")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
        if self.require_tls and self.tls_cert is None:
            raise ConfigError("--require-tls needs a certificate and key (--tls-cert, --tls-key)")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; known: {', '.join(ENGINES)}")
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ConfigError(
                f"refusing to start in environment {self.environment!r} with the default secret key; "
                "set SECRET_KEY (or SEMPROXY_SECRET_KEY) to a long random value"
            )
        _ = self.permissions_by_role  # parse it now, so a malformed mapping stops the start
        return self

    @property
    def auth_method(self) -> str:
        """The Postgres listener's auth method: as configured, else scram-sha-256 with a users file, else trust."""
        return self.auth or ("scram-sha-256" if self.users else "trust")

    def roles_of(self, user: str) -> tuple[str, ...]:
        """The roles `user_roles` gives `user`, else ("user",)."""
        for part in self.user_roles.split(";"):
            name, _, roles = part.partition("=")
            if name.strip() == user:
                return tuple(r.strip() for r in roles.split(",") if r.strip()) or ("user",)
        return ("user",)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def permissions_by_role(self) -> dict[str, frozenset[str]]:
        """`role_permissions` parsed: {"admin": {"read", "write", ...}, ...}."""
        mapping: dict[str, frozenset[str]] = {}
        for part in filter(None, (p.strip() for p in self.role_permissions.split(";"))):
            role, sep, perms = part.partition("=")
            granted = frozenset(p.strip() for p in perms.split(",") if p.strip())
            if not sep or not role.strip() or not granted <= PERMISSIONS:
                raise ConfigError(
                    f"role_permissions: cannot read {part!r}; write role=permission,... with "
                    f"permissions among {', '.join(sorted(PERMISSIONS))}"
                )
            mapping[role.strip()] = granted
        return mapping


PERMISSIONS = frozenset({"read", "write", "delete", "execute"})


def _dotenv(path: Path = Path(".env")) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, raw: str, cls: type[Settings]) -> Any:
    default = next(f for f in fields(cls) if f.name == name).default
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw
