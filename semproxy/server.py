"""The process: a Postgres-protocol listener and the HTTP port, sharing one registry,
one engine and one catalog server, on one asyncio (uvloop) event loop."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import signal
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlglot import exp

from semproxy.auth.databricks import DatabricksTokens
from semproxy.auth.users import UsersFile
from semproxy.auth.verifiers import password_verifier
from semproxy.catalog.server import CatalogServer
from semproxy.catalog.specs import table_specs
from semproxy.catalog.sync import sync_catalog
from semproxy.config import Settings
from semproxy.engines.base import Engine
from semproxy.errors import ConfigError, ModelError
from semproxy.semantic.load import ModelErrors
from semproxy.semantic.registry import Registry

if TYPE_CHECKING:
    from semproxy.session import Session

log = structlog.get_logger("semproxy.server")
LISTEN_BACKLOG = 4096
RETYPE_POLL_S = 5.0  # how often an engine that was down when the catalog was typed is asked again


class Server:
    def __init__(self, settings: Settings, registry: Registry, engine: Engine, catalog: CatalogServer) -> None:
        self.settings = settings
        self.registry = registry
        self.engine = engine
        self.catalog = catalog
        self.sessions: dict[int, Session] = {}
        self.column_types: dict[tuple[str, str], dict[str, str]] = {}  # (schema, table) -> column -> DDL type
        self.model_errors: list[ModelError] = []  # of the last reload that failed, until one succeeds
        self._reload_lock = asyncio.Lock()
        self._retyping: asyncio.Task[None] | None = None  # see _retype_when_the_engine_answers
        self._pids = itertools.count(os.getpid() * 1000 % 2_000_000_000 + 1)
        self.tls = tls_context(settings)
        self.users = UsersFile(Path(settings.users)) if settings.users else None  # both ports' users
        self.databricks_tokens = DatabricksTokens.for_engine(engine, settings)  # None unless Databricks
        # the cleartext methods' check (password: the users file; jwt; databricks)
        self.password_verifier = password_verifier(settings, self.users, self.databricks_tokens)

    @property
    def server_version(self) -> str:
        return self.catalog.version

    def next_pid(self) -> int:
        return next(self._pids)

    def forget(self, session: Session) -> None:
        self.sessions.pop(session.pid, None)

    def cancel(self, pid: int, key: bytes) -> None:
        """A CancelRequest: only the right secret key cancels, and nothing is said either way."""
        session = self.sessions.get(pid)
        if session is not None and hmac.compare_digest(session.key, key):
            session.cancel()

    async def install(self, registry: Registry) -> None:
        """Make `registry` the served set: catalog relations first (one transaction), then the
        registry itself, so a client that lists a table can also query it."""
        specs = await table_specs(registry, self.engine)
        await sync_catalog(self.catalog, specs.tables, sorted(registry.categories))
        self.column_types = {(s.schema, s.name): {c.name: c.pg_type for c in s.columns} for s in specs.tables}
        self.registry = registry  # the plan cache is per registry, so it goes with it
        if not specs.typed_by_engine and self._retyping is None:
            self._retyping = asyncio.create_task(self._retype_when_the_engine_answers())

    async def _retype_when_the_engine_answers(self) -> None:
        """The engine was down when the catalog was typed (its types are guesses): reload
        the models once it answers again, so the columns get the warehouse's types."""
        try:
            while True:
                await asyncio.sleep(RETYPE_POLL_S)
                try:
                    await asyncio.wait_for(self.engine.health(), RETYPE_POLL_S)
                    break
                except Exception:  # noqa: BLE001, S112 - still down: ask again later
                    continue
        finally:
            self._retyping = None
        log.info("the engine answers again: typing the catalog")
        await self.reload_models()

    async def reload_models(self) -> list[ModelError]:
        """Load the models directory again. An invalid set is reported and the last good one
        keeps serving. Concurrent reloads are serialized."""
        async with self._reload_lock:
            try:
                registry = await asyncio.to_thread(Registry.load, self.settings.models)
            except ModelErrors as exc:
                self.model_errors = list(exc.errors)
                for error in exc.errors:
                    log.error("invalid model; the previous models keep serving", error=str(error))
                return self.model_errors
            await self.install(registry)
            self.model_errors = []
            log.info("models reloaded", categories=sorted(registry.categories))
            return []

    def column_type(self, search_path: Sequence[str], tables: Sequence[exp.Table], column: str) -> str | None:
        """The DDL type of `column` in the first of `tables` (resolved on `search_path`) that has it."""
        for table in tables:
            for schema in [table.db] if table.db else search_path:
                found = self.column_types.get((schema, table.name), {}).get(column)
                if found is not None:
                    return found
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from semproxy.session import Session

        session = Session(self, reader, writer)
        if len(self.sessions) >= self.settings.max_connections:
            await session.refuse_too_many()
            return
        self.sessions[session.pid] = session
        await session.run()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server side of TLS from the configured certificate and key; None when not configured."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate {settings.tls_cert} and key {settings.tls_key}: {exc}"
        ) from exc
    return context


async def serve(
    settings: Settings,
    registry: Registry,
    engine: Engine,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start everything, serve until SIGINT/SIGTERM (or until `stop` is set, when given: then
    signals are left alone, as for a server run inside a test), then stop everything."""
    from semproxy.admin.app import serve_http

    catalog = await CatalogServer.start(settings.state_dir, settings.database_name)
    try:
        server = Server(settings, registry, engine, catalog)
        await server.install(registry)
        listener = await asyncio.start_server(
            server.handle, settings.host, settings.port, backlog=LISTEN_BACKLOG, reuse_address=True
        )
        reloads: set[asyncio.Task[list[ModelError]]] = set()

        def reload() -> None:
            task = asyncio.create_task(server.reload_models())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            loop.add_signal_handler(signal.SIGHUP, reload)
        http = asyncio.create_task(serve_http(server, stop))
        log.info(
            "serving",
            postgres=f"{settings.host}:{settings.port}",
            http=f"{settings.host}:{settings.http_port}",
            catalog_version=catalog.version,
        )
        print(
            f"semproxy is serving: psql -h {settings.host} -p {settings.port} -U semproxy {settings.database_name}",
            flush=True,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping")
        listener.close()
        for session in list(server.sessions.values()):
            session.writer.close()
        await asyncio.wait([http], timeout=5)
    finally:
        await engine.aclose()
        await catalog.stop()
