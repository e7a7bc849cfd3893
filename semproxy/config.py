"""Settings from flags, environment (SEMPROXY_*) and defaults. The only reader of the environment.

Precedence: a command-line flag, then `SEMPROXY_<NAME>` in the environment, then the default.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from semproxy.errors import ConfigError

AUTH_METHODS = ("trust",)


@dataclass(frozen=True)
class Settings:
    models: Path = Path("semantic-models")
    database: str = "data/demo.duckdb"
    engine: str = "duckdb"
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

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
        """Build settings from the environment and then the non-None `overrides` (flags)."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SEMPROXY_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.name, raw, cls)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = _coerce(name, value, cls) if isinstance(value, str) else value
        return replace(cls(), **values).checked()

    def checked(self) -> Settings:
        if self.auth is not None and self.auth not in AUTH_METHODS:
            raise ConfigError(f"unknown auth method {self.auth!r}; known: {', '.join(AUTH_METHODS)}")
        if (self.auth in (None, "trust")) and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} without authentication: trust is only allowed "
                "on a loopback address (127.0.0.1, ::1, localhost); configure an auth method or "
                "listen on 127.0.0.1"
            )
        if self.engine != "duckdb":
            raise ConfigError(f"unknown engine {self.engine!r}; known: duckdb")
        return self


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
