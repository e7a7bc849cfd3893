"""Databricks personal access tokens as proof of who someone is.

    tokens = DatabricksTokens.for_engine(engine, settings)   # None unless the engine is Databricks
    name = await tokens.user_of(token)                        # 'alice@example.com', or InvalidPassword

The warehouse is asked once (`SELECT current_user()` run with the token) and the answer
is remembered for `databricks_token_cache_minutes`, so a client that reconnects does not
pay a round trip to Databricks each time. The cache is keyed by the token's SHA-256 and
logs name a token by a short prefix of that hash: the token itself is never kept as a key
nor written anywhere. A revoked token may still sign in until its entry expires; its
queries are refused by Databricks at once, since they run with the token itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from semproxy.errors import InvalidPassword

if TYPE_CHECKING:
    from semproxy.config import Settings
    from semproxy.engines.base import Engine
    from semproxy.engines.databricks import DatabricksEngine

log = structlog.get_logger("semproxy.auth.databricks")


def fingerprint(token: str) -> str:
    """A name for a token in logs: 12 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class DatabricksTokens:
    def __init__(
        self, engine: DatabricksEngine, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._clock = clock
        self._known: dict[bytes, tuple[str, float]] = {}  # sha256(token) -> (user name, expiry)

    @classmethod
    def for_engine(cls, engine: Engine, settings: Settings) -> DatabricksTokens | None:
        from semproxy.engines.databricks import DatabricksEngine

        if not isinstance(engine, DatabricksEngine):
            return None
        return cls(engine, settings.databricks_token_cache_minutes * 60.0)

    async def user_of(self, token: str) -> str:
        """The Databricks user name of `token`; InvalidPassword if Databricks does not accept it."""
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        known = self._known.get(key)
        if known is not None and known[1] > now:
            return known[0]
        try:
            name = await self.engine.current_user(token)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the token is not accepted
            log.warning("Databricks token refused", token=fingerprint(token), reason=type(exc).__name__)
            raise InvalidPassword("Databricks did not accept the token") from None
        self._known = {k: v for k, v in self._known.items() if v[1] > now}  # expired entries go
        self._known[key] = (name, now + self.ttl_s)
        log.info("Databricks token verified", user=name, token=fingerprint(token))
        return name
