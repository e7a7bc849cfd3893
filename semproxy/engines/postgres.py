"""PostgreSQL as the warehouse, through an asyncpg pool. Results leave as Arrow batches.

Each query runs in a read-only transaction on a pooled connection, through a server-side
cursor fetched `BATCH_ROWS` rows at a time, so a large result never sits in memory whole.
Rows arrive as asyncpg records; each batch is turned into Arrow one column at a time.
Cancelling the iterating task makes asyncpg send the server a cancel request; closing
the iterator early rolls the transaction back, which drops the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import pyarrow as pa

from semproxy.engines.base import ColumnInfo, TableInfo
from semproxy.errors import EngineError, EngineUnavailable, QueryCanceled, SemproxyError

BATCH_ROWS = 50_000
CONNECT_TIMEOUT_S = 5.0
APPLICATION_NAME = "semproxy"

# Postgres type name -> Arrow type; anything else travels as its text.
_ARROW: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.duration("us"),
    "bytea": pa.binary(),
}
_UNCONSTRAINED_PRECISION = 38
_DISCONNECTS = (asyncpg.ConnectionDoesNotExistError, ConnectionError, OSError)

_TYPES_OF_VIEW = """
SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = 'pg_temp.semproxy_describe'::regclass AND a.attnum > 0 ORDER BY a.attnum
"""


class PostgresEngine:
    dialect = "postgres"
    principal = ""

    def __init__(self, dsn: str, *, pool_size: int = 10, timeout: float | None = None) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._running: set[asyncpg.Connection] = set()

    async def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        conn, tx, stmt = await self._begin(sql, readonly=True)
        self._running.add(conn)
        try:
            names = [a.name for a in stmt.get_attributes()]
            types = [_arrow_type(a.type.name, -1) for a in stmt.get_attributes()]
            cursor = await self._guard(conn, stmt.cursor(), sql)
            sent = False
            while records := await self._guard(conn, cursor.fetch(BATCH_ROWS), sql):
                batch = _to_batch(records, names, types)
                types = list(batch.schema.types)  # later batches keep the first one's scales
                sent = True
                yield batch
            if not sent:
                yield pa.RecordBatch.from_pylist([], schema=_schema(names, types))
        finally:
            self._running.discard(conn)
            await self._end(conn, tx)

    async def describe(self, sql: str) -> pa.Schema:
        """Types with their modifiers (numeric(12,2) -> decimal128(12, 2)): the statement is
        made a temporary view in a transaction that is rolled back, and the view's columns
        read from pg_attribute. A statement that cannot be a view (duplicate column names)
        is described from its prepared statement, without modifiers."""
        conn, tx, stmt = await self._begin(sql, readonly=False)
        try:
            names = [a.name for a in stmt.get_attributes()]
            fallback = [_arrow_type(a.type.name, -1) for a in stmt.get_attributes()]
            async with conn.transaction():  # a savepoint: a refused view leaves the transaction usable
                try:
                    await conn.execute("CREATE TEMP VIEW semproxy_describe AS " + sql)  # sql: a compiled tree
                except asyncpg.PostgresError:
                    return _schema(names, fallback)
                rows = await conn.fetch(_TYPES_OF_VIEW)
                return _schema(names, [_arrow_type(r["typname"], r["atttypmod"]) for r in rows])
        finally:
            await self._end(conn, tx)

    async def cancel(self) -> None:
        pids = [conn.get_server_pid() for conn in self._running]
        if pids:
            await self._fetch("SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid", pids)

    async def health(self) -> None:
        await self._fetch("SELECT 1")

    async def aclose(self) -> None:
        with contextlib.suppress(SemproxyError):
            await self.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def list_catalogs(self) -> list[str]:
        return [r[0] for r in await self._fetch("SELECT current_database()")]

    async def list_schemas(self, catalog: str | None = None) -> list[str]:
        rows = await self._fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema' ORDER BY 1"
        )
        return [r[0] for r in rows]

    async def list_tables(self, schema: str, catalog: str | None = None) -> list[TableInfo]:
        rows = await self._fetch(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY 1",
            schema,
        )
        return [TableInfo(schema, r[0], r[1]) for r in rows]

    async def list_columns(self, table: str, schema: str, catalog: str | None = None) -> list[ColumnInfo]:
        rows = await self._fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            schema,
            table,
        )
        return [ColumnInfo(r[0], r[1], r[2]) for r in rows]

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn, tx, stmt = await self._begin(sql, readonly=True)
        try:
            return list(await self._guard(conn, stmt.fetch(*args), sql))
        finally:
            await self._end(conn, tx)

    async def _begin(
        self, sql: str, *, readonly: bool
    ) -> tuple[asyncpg.Connection, asyncpg.transaction.Transaction, asyncpg.PreparedStatement]:
        """A pooled connection in a new transaction with `sql` prepared on it. A dead pooled
        connection is dropped and replaced once; a second failure means the warehouse is
        unreachable."""
        pool = await self._get_pool()
        for attempt in (1, 2):
            conn = None
            try:
                conn = await asyncio.wait_for(pool.acquire(), CONNECT_TIMEOUT_S)
                tx = conn.transaction(readonly=readonly)
                await tx.start()
            except (*_DISCONNECTS, TimeoutError, asyncpg.CannotConnectNowError) as exc:
                if conn is not None:
                    conn.terminate()
                if attempt == 2:
                    raise _unavailable(exc) from exc
                continue
            try:
                return conn, tx, await self._guard(conn, conn.prepare(sql), sql)
            except BaseException:
                await self._end(conn, tx)
                raise
        raise AssertionError("unreachable")

    async def _end(self, conn: asyncpg.Connection, tx: asyncpg.transaction.Transaction) -> None:
        assert self._pool is not None
        try:
            if not conn.is_closed():
                await tx.rollback()
        except (*_DISCONNECTS, asyncpg.PostgresError):
            conn.terminate()
        except asyncpg.InterfaceError:
            return  # terminated: the pool has taken it back already
        await self._pool.release(conn)

    async def _guard(self, conn: asyncpg.Connection, awaitable: Any, sql: str) -> Any:
        """Await a driver call, turning its failures into semproxy's errors."""
        try:
            return await awaitable
        except asyncpg.QueryCanceledError as exc:
            raise QueryCanceled(f"canceling statement: {exc}") from exc
        except asyncpg.PostgresError as exc:
            raise EngineError(f"the engine failed: {exc}", detail=sql) from exc
        except TimeoutError as exc:
            raise QueryCanceled("canceling statement due to statement timeout") from exc
        except _DISCONNECTS as exc:
            conn.terminate()
            raise _unavailable(exc) from exc

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=self.pool_size,
                    timeout=CONNECT_TIMEOUT_S,
                    command_timeout=self.timeout,
                    server_settings={"application_name": APPLICATION_NAME, "TimeZone": "UTC"},
                )
            return self._pool


def _unavailable(exc: BaseException) -> EngineUnavailable:
    return EngineUnavailable(
        f"the PostgreSQL warehouse is unreachable: {exc or type(exc).__name__}",
        hint="check --database (a postgresql:// DSN) and that the server is up",
    )


def _arrow_type(typname: str, typmod: int) -> pa.DataType:
    if typname == "numeric":
        if typmod >= 4:
            return pa.decimal128(((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF)
        return pa.decimal128(_UNCONSTRAINED_PRECISION, 0)  # the scale is taken from the data
    return _ARROW.get(typname, pa.string())


def _schema(names: Sequence[str], types: Sequence[pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])


def _to_batch(records: list[asyncpg.Record], names: list[str], types: list[pa.DataType]) -> pa.RecordBatch:
    columns = []
    for i, t in enumerate(types):
        values = [r[i] for r in records]
        columns.append(_column(values, t))
    return pa.RecordBatch.from_arrays(columns, names=names)


def _column(values: list[Any], t: pa.DataType) -> pa.Array:
    if pa.types.is_string(t):
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], t)
    if pa.types.is_decimal(t) and t.scale == 0 and t.precision == _UNCONSTRAINED_PRECISION:
        # an unconstrained numeric (sum(), avg() of numeric): the scale of its values
        scale = max((_scale(v) for v in values if isinstance(v, Decimal)), default=0)
        t = pa.decimal128(_UNCONSTRAINED_PRECISION, max(0, min(scale, 18)))
        values = [v if v is None else round(v, t.scale) for v in values]
    elif pa.types.is_decimal(t):
        values = [v if v is None else round(v, t.scale) for v in values]
    return pa.array(values, t)


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0
