"""One client connection: startup (semproxy.startup), then the simple query protocol here and
the extended one in semproxy.extended.

Statements about metric tables are compiled and run on the engine; every other statement
is relayed, as the client wrote it, to this session's own connection on the catalog server
(a real PostgreSQL), so catalog answers, errors, transaction state and settings are exactly
Postgres's. After a relayed SET/RESET/DISCARD or the end of a transaction, the settings
that matter to us (search_path, statement_timeout) are read back from the catalog server.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from semproxy.catalog import quirks as catalog_quirks
from semproxy.catalog.relay import CatalogConnection, changes_settings
from semproxy.config import is_loopback
from semproxy.cursors import cursor_name, head, parse_close, parse_declare, parse_fetch
from semproxy.errors import (
    FeatureNotSupported,
    IdleSessionTimeout,
    InFailedTransaction,
    InternalError,
    ProtocolViolation,
    QueryCanceled,
    SemproxyError,
    TooManyConnections,
)
from semproxy.extended import Extended
from semproxy.pg import messages as m
from semproxy.pg.client import decode_backend
from semproxy.pg.codec import FrontendDecoder, encode, encode_error
from semproxy.pg.framing import frame
from semproxy.results import Results
from semproxy.setting_values import parse_duration, parse_search_path
from semproxy.sql.route import Catalog, Empty, Metric, Refused, Routed, route
from semproxy.startup import authenticate, greeting, handshake

EXTENDED = (m.Parse, m.Bind, m.Describe, m.Execute, m.Close, m.Sync, m.Flush)

if TYPE_CHECKING:
    from semproxy.engines.base import Engine
    from semproxy.server import Server

log = structlog.get_logger("semproxy.session")
T = TypeVar("T")

READ_CHUNK = 256 * 1024
OUT_CHUNK = 256 * 1024  # buffered answers beyond this are written (and drained) at once
AUTH_TIMEOUT = 60.0  # Postgres's authentication_timeout: the whole startup must finish by then
# Postgres starts a session with these, and takes them from the startup packet.
CLIENT_SETTABLE = ("application_name", "TimeZone", "DateStyle", "extra_float_digits", "search_path")
# Poisons the catalog server's transaction block after a metric statement failed inside it,
# so that Postgres itself enforces 25P02 until ROLLBACK, exactly as it would have.
_ABORT_BLOCK = "DO $$BEGIN RAISE EXCEPTION 'semproxy: a metric statement failed'; END$$"
_READ_SETTINGS = "SELECT current_setting('search_path'), current_setting('statement_timeout')"


class Disconnected(Exception):
    """The client went away."""


class Session:
    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.engine: Engine = server.engine  # a login may set its own (a Databricks user's token)
        self.reader = reader
        self.writer = writer
        self.decoder = FrontendDecoder(server.settings.max_message)
        self.pid = server.next_pid()
        self.key = secrets.token_bytes(4)
        self.params: dict[str, str] = {}
        self.catalog: CatalogConnection | None = None
        self.timezone = "UTC"
        self.tls = False
        peer = writer.get_extra_info("peername")
        self.peer_is_loopback = isinstance(peer, tuple) and is_loopback(str(peer[0]))
        self.results = Results(self)
        self._search_path = ["production"]
        self.statement_timeout = 0.0  # seconds; 0 = none
        self._running: asyncio.Future[Any] | None = None
        self._cancel_reason = "user request"
        self._stopped: asyncio.Future[Any] | None = None  # the task we cancelled, if any
        self._catalog_cancel: asyncio.Future[None] | None = None
        self._out = bytearray()  # answers not yet written: see send()

    # -- plumbing ---------------------------------------------------------------
    async def next_message(self, timeout: float | None = None) -> m.FrontendMessage:
        while (msg := self.decoder.next_message()) is None:
            self.flush()  # whatever we answered must be out before we wait for the client
            read = self.reader.read(READ_CHUNK)
            try:
                data = await (asyncio.wait_for(read, timeout) if timeout else read)
            except TimeoutError:
                raise IdleSessionTimeout("terminating connection due to idle-session timeout") from None
            if not data:
                raise Disconnected
            self.decoder.feed(data)
        return msg

    # Answers collect in `_out` and leave in one write (one syscall) when the session
    # drains (after ReadyForQuery or Flush, and before each read from the client), or when
    # they pass OUT_CHUNK. Everything sent after startup goes through here, in order.
    def send(self, msg: m.BackendMessage) -> None:
        self._out += encode(msg)

    def send_error(self, exc: SemproxyError) -> None:
        self._out += encode_error(exc)

    def relay_frame(self, type_: bytes, payload: bytes) -> None:
        if type_ == b"S":
            self._note_parameter(payload)
        self._out += frame(type_, payload)

    def write(self, data: bytes) -> None:
        """Already-framed bytes (CopyData headers, relayed frames)."""
        self._out += data

    async def write_rows(self, data: bytes) -> None:
        """Encoded DataRows: small results wait for the next drain; large ones go at once,
        waiting for the client to read them (a slow reader holds the engine back)."""
        if len(self._out) + len(data) < OUT_CHUNK:
            self._out += data
            return
        self.flush()
        self.writer.write(data)
        await self.writer.drain()

    def flush(self) -> None:
        if self._out:
            out, self._out = self._out, bytearray()
            self.writer.write(out)

    async def drain(self) -> None:
        self.flush()
        await self.writer.drain()

    def ready(self) -> None:
        self.send(m.ReadyForQuery(self.status()))

    async def abort_block(self) -> None:
        """After a metric statement failed inside a transaction block, make the catalog
        server's block fail too, so that Postgres itself refuses statements until ROLLBACK."""
        if self.status() == "T" and self.catalog is not None:
            async for _ in self.catalog.simple_query(_ABORT_BLOCK):
                pass

    # -- lifecycle --------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT):
                startup = await handshake(self)
                if startup is None:
                    return
                await authenticate(self, startup)
            self._begin(startup)
            await self._serve()
        except SemproxyError as exc:  # FATAL: protocol violations, failed logins, idle timeout
            log.info("session ended", pid=self.pid, sqlstate=exc.sqlstate, error=exc.message)
            self.send_error(exc)
        except (Disconnected, ConnectionError, TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        except Exception as exc:  # a bug ends this session, never the server
            log.exception("session failed", pid=self.pid)
            self.send_error(InternalError(f"internal error: {type(exc).__name__}"))
        finally:
            await self._end()

    async def _end(self) -> None:
        self.server.forget(self)
        try:
            await self.results.close_all()
        except Exception:  # the engine query may already have failed; the session is over anyway
            log.debug("closing cursors failed", pid=self.pid)
        if self.catalog is not None:
            await self.catalog.close()
        try:
            self.flush()
            self.writer.close()
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def refuse_too_many(self) -> None:
        self.writer.write(encode_error(TooManyConnections("sorry, too many clients already")))
        try:
            await self.writer.drain()
        finally:
            self.writer.close()

    def _begin(self, startup: m.StartupMessage) -> None:
        self.params = dict(startup.params)
        self.timezone = self.params.get("TimeZone", "UTC")
        self._search_path = parse_search_path(self.params.get("search_path", "production"))
        self.statement_timeout = parse_duration(self.params.get("statement_timeout", "0"))
        for msg in greeting(self, startup):
            self.send(msg)

    async def _serve(self) -> None:
        extended = Extended(self)
        idle = self.server.settings.idle_session_timeout or None
        while True:
            msg = await self.next_message(idle)
            if isinstance(msg, m.Query):
                await self._simple_query(msg.sql)
            elif isinstance(msg, m.Terminate):
                return
            elif isinstance(msg, EXTENDED):
                await extended.handle(msg)
                if not isinstance(msg, m.Sync | m.Flush):
                    continue  # the socket buffer is drained at Sync and Flush
            else:
                raise ProtocolViolation(f"unexpected message {type(msg).__name__} after startup")
            await self.drain()

    # -- simple query -----------------------------------------------------------
    async def _simple_query(self, text: str) -> None:
        try:
            statements = route(text, self.server.registry, self.search_path(), self.server.engine.dialect)
        except SemproxyError as exc:
            statements = [Refused(text, exc)]
        if statements and all(isinstance(s, Catalog) and not self.owns(s.sql) for s in statements):
            # as one message: Postgres keeps its implicit-transaction rules
            refresh = any(changes_settings(s.sql) for s in statements if isinstance(s, Catalog))
            await self._relay(text, refresh)
        else:
            for statement in statements:
                if not await self._statement(statement):
                    break
        self.ready()

    def owns(self, sql: str) -> bool:
        """A cursor statement over a metric query, or naming a cursor of ours."""
        word = head(sql)
        if word == "DECLARE":
            declare = parse_declare(sql)
            return declare is not None and self._metric(declare.query) is not None
        return word in ("FETCH", "MOVE", "CLOSE") and cursor_name(sql) in self.results.cursors

    def _metric(self, sql: str) -> Metric | None:
        routed = route(sql, self.server.registry, self.search_path(), self.server.engine.dialect)
        return routed[0] if len(routed) == 1 and isinstance(routed[0], Metric) else None

    async def _statement(self, statement: Routed) -> bool:
        """Run one statement; False when it failed (the rest of the message is skipped)."""
        if isinstance(statement, Empty):
            self.send(m.EmptyQueryResponse())
            return True
        if isinstance(statement, Catalog) and not self.owns(statement.sql):
            return await self._relay(statement.sql, changes_settings(statement.sql))
        try:
            if self.status() == "E":
                raise InFailedTransaction(
                    "current transaction is aborted, commands ignored until end of transaction block"
                )
            if isinstance(statement, Catalog):
                await self.cancellable(self._cursor_statement(statement.sql))
            elif isinstance(statement, Refused):
                copy = self.results.copy_query(statement.sql) if head(statement.sql) == "COPY" else None
                if copy is None:
                    raise statement.error
                await self.cancellable(self.results.copy(*copy))
            else:
                assert isinstance(statement, Metric)
                log.debug("metric query", pid=self.pid, sql=statement.compiled.sql)
                await self.cancellable(self.results.select(statement.compiled))
            return True
        except SemproxyError as exc:
            self.send_error(exc)
            await self.abort_block()
            return False

    async def _cursor_statement(self, sql: str) -> None:
        declare, fetch, close = parse_declare(sql), parse_fetch(sql), parse_close(sql)
        if declare is not None:
            metric = self._metric(declare.query)
            assert metric is not None
            self.results.declare(declare, metric.compiled)
        elif fetch is not None:
            await self.results.fetch(fetch)
        elif close is not None:
            await self.results.close(close)
        else:
            raise FeatureNotSupported("a cursor over a metric query can only FETCH or MOVE forward")

    async def _relay(self, sql: str, refresh: bool) -> bool:
        """Relay one Query to the catalog server; True when it raised no error."""
        catalog = await self.catalog_connection()
        ok = True
        async for type_, payload in catalog.simple_query(catalog_quirks.apply(sql)):
            if type_ == b"Z":
                break
            if type_ == b"E":
                ok = False
            self.relay_frame(type_, payload)
            if len(self._out) > OUT_CHUNK:
                await self.drain()
        await self.after_relay(refresh)
        return ok

    async def after_relay(self, refresh: bool) -> None:
        """Settings and cursors follow what the relayed statements did; `refresh`: they may
        have changed settings (see changes_settings), so read them back."""
        if self.status() == "I":
            await self.results.end_of_transaction()
        if refresh and self.status() != "E" and self.catalog is not None:
            async for type_, payload in self.catalog.simple_query(_READ_SETTINGS):
                if type_ == b"D":
                    row = decode_backend(type_, payload)
                    assert isinstance(row, m.DataRow)
                    path, timeout = ((v or b"").decode() for v in row.values)
                    self._search_path = parse_search_path(path)
                    self.statement_timeout = parse_duration(timeout)

    def _note_parameter(self, payload: bytes) -> None:
        name, _, rest = payload.partition(b"\0")
        if name == b"TimeZone":
            self.timezone = rest.rstrip(b"\0").decode()

    async def catalog_connection(self) -> CatalogConnection:
        if self.catalog is None:
            params = {k: v for k, v in self.params.items() if k in CLIENT_SETTABLE}
            self.catalog = await CatalogConnection.open(self.server.catalog.endpoint, params)
        return self.catalog

    def status(self) -> str:
        return self.catalog.transaction_status if self.catalog is not None else "I"

    def search_path(self) -> list[str]:
        return self._search_path

    # -- cancel and statement_timeout -----------------------------------------------------
    async def cancellable(self, work: Awaitable[T]) -> T:
        """Run `work` so that a CancelRequest for this session, or statement_timeout,
        interrupts it with 57014 (the engine query is stopped when its iterator closes)."""
        task = asyncio.ensure_future(work)
        self._running = task
        self._cancel_reason = "user request"
        timer = None
        if self.statement_timeout > 0:
            timer = asyncio.get_running_loop().call_later(
                self.statement_timeout, self._stop, task, "statement timeout"
            )
        watcher = asyncio.ensure_future(self._watch_hangup(task))
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the session itself is being stopped
            raise QueryCanceled(f"canceling statement due to {self._cancel_reason}") from None
        except Exception as exc:
            if self._stopped is not task or isinstance(exc, QueryCanceled):
                raise
            # we stopped it, and the engine's clean-up raised instead of the cancel: still a cancel
            log.info("engine error after cancel", pid=self.pid, error=repr(exc))
            raise QueryCanceled(f"canceling statement due to {self._cancel_reason}") from None
        finally:
            self._running = None
            watcher.cancel()
            await asyncio.wait([watcher])  # its read must be off the reader before the next one
            if timer is not None:
                timer.cancel()

    def _stop(self, task: asyncio.Future[Any], reason: str) -> None:
        self._cancel_reason = reason
        self._stopped = task
        task.cancel()

    async def _watch_hangup(self, task: asyncio.Future[Any]) -> None:
        """A client that hangs up while its query runs stops the query (and the engine's work).
        Bytes that arrive meanwhile (pipelined messages) are kept for the decoder; one read
        at most, so a client cannot make us buffer without bound."""
        try:
            data = await self.reader.read(READ_CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if data:
            self.decoder.feed(data)
        else:
            self._stop(task, "client disconnect")

    def cancel(self) -> None:
        """A CancelRequest for this session: stop what it is running, if anything."""
        if self._running is not None:
            self._stop(self._running, "user request")
        elif self.catalog is not None:
            self._catalog_cancel = asyncio.ensure_future(self.catalog.cancel())  # keep a reference
