"""One client connection: startup, authentication, and the simple query protocol.

Statements about metric tables are compiled and run on the engine; every other statement
is relayed, as the client wrote it, to this session's own connection on the catalog server
(a real PostgreSQL), so catalog answers, errors and settings are exactly Postgres's.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import structlog

from semproxy.catalog import quirks as catalog_quirks
from semproxy.errors import (
    InFailedTransaction,
    ProtocolViolation,
    QueryCanceled,
    SemproxyError,
    TooManyConnections,
)
from semproxy.extended import Extended
from semproxy.pg import messages as m
from semproxy.pg.codec import FrontendDecoder, encode, encode_error
from semproxy.pg.framing import frame
from semproxy.pg.rows import encode_batch, row_description
from semproxy.sql.route import Catalog, Empty, Metric, Refused, Routed, route

EXTENDED = (m.Parse, m.Bind, m.Describe, m.Execute, m.Close, m.Sync, m.Flush)

if TYPE_CHECKING:
    from semproxy.catalog.relay import CatalogConnection
    from semproxy.server import Server

log = structlog.get_logger("semproxy.session")
T = TypeVar("T")

READ_CHUNK = 256 * 1024
# Reported to the client at startup; server_version comes from the catalog server.
FIXED_PARAMETERS = {
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "off",
}
# Postgres starts a session with these, and takes them from the startup packet.
CLIENT_SETTABLE = ("application_name", "TimeZone", "DateStyle", "extra_float_digits", "search_path")
# Poisons the catalog server's transaction block after a metric statement failed inside it,
# so that Postgres itself enforces 25P02 until ROLLBACK, exactly as it would have.
_ABORT_BLOCK = "DO $$BEGIN RAISE EXCEPTION 'semproxy: a metric statement failed'; END$$"


class Disconnected(Exception):
    """The client went away."""


class Session:
    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.decoder = FrontendDecoder()
        self.pid = server.next_pid()
        self.key = secrets.token_bytes(4)
        self.params: dict[str, str] = {}
        self.catalog: CatalogConnection | None = None
        self.timezone = "UTC"
        self._running: asyncio.Future[Any] | None = None
        self._catalog_cancel: asyncio.Future[None] | None = None

    # -- plumbing ---------------------------------------------------------------
    async def _next(self) -> m.FrontendMessage:
        while (msg := self.decoder.next_message()) is None:
            data = await self.reader.read(READ_CHUNK)
            if not data:
                raise Disconnected
            self.decoder.feed(data)
        return msg

    def _send(self, *msgs: m.BackendMessage) -> None:
        self.writer.write(b"".join(encode(x) for x in msgs))

    async def _flush(self) -> None:
        await self.writer.drain()

    # -- what the extended protocol uses --------------------------------------------
    def send(self, msg: m.BackendMessage) -> None:
        self.writer.write(encode(msg))

    def send_error(self, exc: SemproxyError) -> None:
        self.writer.write(encode_error(exc))

    def relay_frame(self, type_: bytes, payload: bytes) -> None:
        if type_ == b"S":
            self._note_parameter(payload)
        self.writer.write(frame(type_, payload))

    async def write_rows(self, data: bytes) -> None:
        self.writer.write(data)
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
            if await self._startup():
                await self._serve()
        except ProtocolViolation as exc:
            log.info("protocol violation", pid=self.pid, error=exc.message)
            self.writer.write(encode_error(exc))
        except (Disconnected, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.server.forget(self)
            if self.catalog is not None:
                await self.catalog.close()
            try:
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

    async def _startup(self) -> bool:
        while True:
            msg = await self._next()
            if isinstance(msg, m.SSLRequest | m.GSSENCRequest):
                self.writer.write(b"N")  # no TLS yet: the client may go on in plain text
                continue
            if isinstance(msg, m.CancelRequest):
                self.server.cancel(msg.pid, msg.key)
                return False
            if isinstance(msg, m.StartupMessage):
                break
            raise ProtocolViolation(f"expected a startup message, got {type(msg).__name__}")
        if msg.protocol >> 16 != 3:
            raise ProtocolViolation(f"unsupported frontend protocol {msg.protocol >> 16}.{msg.protocol & 0xFFFF}")
        self.params = dict(msg.params)
        if "user" not in self.params:
            raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
        out: list[m.BackendMessage] = []
        unrecognized = tuple(k for k in self.params if k.startswith("_pq_."))
        if msg.protocol & 0xFFFF or unrecognized:
            out.append(m.NegotiateProtocolVersion(0, unrecognized))
        out.append(m.AuthenticationOk())
        reported = {
            **FIXED_PARAMETERS,
            "server_version": self.server.server_version,
            "application_name": self.params.get("application_name", ""),
            "session_authorization": self.params["user"],
            "TimeZone": self.params.get("TimeZone", "UTC"),
        }
        self.timezone = reported["TimeZone"]
        out += [m.ParameterStatus(k, v) for k, v in reported.items()]
        out += [m.BackendKeyData(self.pid, self.key), m.ReadyForQuery("I")]
        self._send(*out)
        await self._flush()
        return True

    async def _serve(self) -> None:
        extended = Extended(self)
        while True:
            msg = await self._next()
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
            await self._flush()

    # -- simple query -----------------------------------------------------------
    async def _simple_query(self, text: str) -> None:
        try:
            statements = route(
                text, self.server.registry, self.search_path(), self.server.engine.dialect
            )
        except SemproxyError as exc:
            statements = [Refused(text, exc)]
        if statements and all(isinstance(s, Catalog) for s in statements):
            await self._relay(text)  # as one message: Postgres keeps its implicit-transaction rules
        elif not statements:
            self._send(m.EmptyQueryResponse())
        else:
            for statement in statements:
                if not await self._statement(statement):
                    break
        self._send(m.ReadyForQuery(self.status()))

    async def _statement(self, statement: Routed) -> bool:
        """Run one statement; False when it failed (the rest of the message is skipped)."""
        if isinstance(statement, Empty):
            self._send(m.EmptyQueryResponse())
            return True
        if isinstance(statement, Catalog):
            return await self._relay(statement.sql)
        try:
            if self.status() == "E":
                raise InFailedTransaction(
                    "current transaction is aborted, commands ignored until end of transaction block"
                )
            if isinstance(statement, Refused):
                raise statement.error
            assert isinstance(statement, Metric)
            await self.cancellable(self._run_metric(statement))
            return True
        except SemproxyError as exc:
            await self._fail(exc)
            return False

    async def _fail(self, exc: SemproxyError) -> None:
        self.send_error(exc)
        await self.abort_block()

    async def _run_metric(self, statement: Metric) -> None:
        compiled = statement.compiled
        log.debug("metric query", pid=self.pid, sql=compiled.sql)
        rows = 0
        described = False
        batches = self.server.engine.execute(compiled.sql)
        try:
            async for batch in batches:
                if not described:
                    names = [*compiled.columns, *batch.schema.names[len(compiled.columns) :]]
                    schema = pa.schema([f.with_name(n) for f, n in zip(batch.schema, names, strict=True)])
                    self._send(row_description(schema, None))
                    described = True
                if batch.num_rows:
                    self.writer.write(encode_batch(batch, None))
                    rows += batch.num_rows
                    await self.writer.drain()
        finally:
            await batches.aclose()  # type: ignore[attr-defined]
        self._send(m.CommandComplete(f"SELECT {rows}"))

    async def _relay(self, sql: str) -> bool:
        """Relay one Query to the catalog server; True when it raised no error."""
        catalog = await self.catalog_connection()
        ok = True
        out = bytearray()
        async for type_, payload in catalog.simple_query(catalog_quirks.apply(sql)):
            if type_ == b"Z":
                break
            if type_ == b"E":
                ok = False
            elif type_ == b"S":
                self._note_parameter(payload)
            out += frame(type_, payload)
            if len(out) > READ_CHUNK:
                self.writer.write(out)
                out = bytearray()
                await self.writer.drain()
        self.writer.write(out)
        return ok

    def _note_parameter(self, payload: bytes) -> None:
        name, _, rest = payload.partition(b"\0")
        if name == b"TimeZone":
            self.timezone = rest.rstrip(b"\0").decode()

    async def catalog_connection(self) -> CatalogConnection:
        if self.catalog is None:
            from semproxy.catalog.relay import CatalogConnection

            params = {k: v for k, v in self.params.items() if k in CLIENT_SETTABLE}
            self.catalog = await CatalogConnection.open(self.server.catalog.endpoint, params)
        return self.catalog

    def status(self) -> str:
        return self.catalog.transaction_status if self.catalog is not None else "I"

    def search_path(self) -> list[str]:
        raw = self.params.get("search_path", "production")
        return [p.strip().strip('"') for p in raw.split(",") if p.strip()]

    async def cancellable(self, work: Awaitable[T]) -> T:
        """Run `work` so that a CancelRequest for this session interrupts it with 57014."""
        task = asyncio.ensure_future(work)
        self._running = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the session itself is being stopped
            raise QueryCanceled("canceling statement due to user request") from None
        finally:
            self._running = None

    def cancel(self) -> None:
        """A CancelRequest for this session: stop what it is running, if anything."""
        if self._running is not None:
            self._running.cancel()
        elif self.catalog is not None:
            self._catalog_cancel = asyncio.ensure_future(self.catalog.cancel())  # keep a reference
