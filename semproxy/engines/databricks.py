"""Databricks SQL warehouses through databricks-sql-connector. Results leave as Arrow.

Authentication is the Databricks SDK's unified one (a PAT, OAuth machine-to-machine with a
client id and secret, or a config profile), resolved once by `databricks.sdk.core.Config`
and handed to the connector as its credentials provider. A client that logged in with
its own Databricks token runs its queries with that token: its session holds
`engine.as_user(token)`, a view of this engine in which every statement, describe and
listing runs as that user, so Unity Catalog permissions apply per user. Queries carry the user agent `semproxy`
and a query tag, so they are recognisable in the warehouse's query history.

The connector blocks, so each query runs in a thread of its own (`threads.py`), fetching
`fetchmany_arrow(BATCH_ROWS)` at a time; a cancel calls `cursor.cancel()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from semproxy.engines.base import ColumnInfo, TableInfo
from semproxy.engines.threads import stream_in_thread
from semproxy.errors import EngineError, EngineUnavailable, QueryCanceled

BATCH_ROWS = 100_000
DEFAULT_TIMEOUT_S = 120.0
USER_AGENT = "semproxy"
POOL_SIZE = 8
AUTH_TIMEOUT_S = 10


@dataclass(frozen=True)
class DatabricksTarget:
    """Where and how to connect; secrets never appear in repr."""

    host: str | None = None
    http_path: str | None = None
    warehouse_id: str | None = None
    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    profile: str | None = None

    def __repr__(self) -> str:
        return f"DatabricksTarget(host={self.host!r}, http_path={self.resolved_http_path()!r})"

    def resolved_http_path(self) -> str | None:
        if self.http_path:
            return self.http_path
        return f"/sql/1.0/warehouses/{self.warehouse_id}" if self.warehouse_id else None


class DatabricksEngine:
    dialect = "databricks"
    principal = ""

    def __init__(
        self,
        target: DatabricksTarget,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect: Callable[..., Any] | None = None,
    ) -> None:
        """`connect` is `databricks.sql.connect` unless a test passes its fake."""
        if not target.resolved_http_path():
            raise EngineUnavailable(
                "no Databricks SQL warehouse named",
                hint="set DATABRICKS_HTTP_PATH or DATABRICKS_WAREHOUSE_ID",
            )
        self.target = target
        self.timeout = timeout
        self._connect = connect
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._running: dict[Any, str | None] = {}  # cursor -> the user token it runs with
        self._config: Any = None

    def as_user(self, token: str) -> DatabricksUser:
        """This engine as the owner of `token` sees it (their Unity Catalog permissions)."""
        return DatabricksUser(self, token)

    async def current_user(self, token: str) -> str:
        """The Databricks user name `token` belongs to, as the warehouse says
        (`SELECT current_user()` run with that token); EngineError if it is refused."""
        async for batch in self.execute("SELECT current_user() AS user_name", token=token):
            names = batch.column(0).to_pylist()
            if names and names[0]:
                return str(names[0])
        raise EngineError("Databricks named no user for the token")

    async def execute(self, sql: str, *, token: str | None = None) -> AsyncIterator[pa.RecordBatch]:
        cursors: list[Any] = []

        def produce() -> Iterator[pa.RecordBatch]:
            conn, cursor = self._run(sql, token, cursors)
            try:
                with _errors(sql):
                    sent = False
                    while True:
                        table = cursor.fetchmany_arrow(BATCH_ROWS)
                        if table.num_rows == 0 and sent:
                            break
                        batches = table.combine_chunks().to_batches() or [_empty(table.schema)]
                        yield from batches
                        sent = True
                        if table.num_rows < BATCH_ROWS:
                            break
            finally:
                self._running.pop(cursor, None)
                cursor.close()
                self._release(conn, token)

        def interrupt() -> None:
            for cursor in cursors:
                cursor.cancel()

        async for batch in stream_in_thread(produce, interrupt, timeout=self.timeout):
            yield batch

    async def describe(self, sql: str, *, token: str | None = None) -> pa.Schema:
        from sqlglot import exp, parse_one

        limited = parse_one(sql, dialect=self.dialect)
        assert isinstance(limited, exp.Query)
        query = exp.select("*").from_(limited.subquery("q")).limit(0).sql(dialect=self.dialect)
        async for batch in self.execute(query, token=token):
            return batch.schema
        raise EngineError("the warehouse returned no result schema", detail=sql)

    async def cancel(self, *, token: str | None = None) -> None:
        """Cancel the running statements (only those run with `token`, when given)."""
        for cursor, owner in list(self._running.items()):
            if token is None or owner == token:
                await asyncio.to_thread(cursor.cancel)

    async def health(self, *, token: str | None = None) -> None:
        async for _ in self.execute("SELECT 1", token=token):
            pass

    async def aclose(self) -> None:
        await self.cancel()
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            await asyncio.to_thread(conn.close)

    async def list_catalogs(self, *, token: str | None = None) -> list[str]:
        return [r[0] for r in await self._metadata(lambda c: c.catalogs(), token)]

    async def list_schemas(self, catalog: str | None = None, *, token: str | None = None) -> list[str]:
        return [r[0] for r in await self._metadata(lambda c: c.schemas(catalog_name=catalog), token)]

    async def list_tables(
        self, schema: str, catalog: str | None = None, *, token: str | None = None
    ) -> list[TableInfo]:
        rows = await self._metadata(lambda c: c.tables(catalog_name=catalog, schema_name=schema), token)
        return [TableInfo(schema, r.TABLE_NAME, r.REMARKS or None) for r in rows]

    async def list_columns(
        self, table: str, schema: str, catalog: str | None = None, *, token: str | None = None
    ) -> list[ColumnInfo]:
        rows = await self._metadata(
            lambda c: c.columns(catalog_name=catalog, schema_name=schema, table_name=table), token
        )
        return [ColumnInfo(r.COLUMN_NAME, r.TYPE_NAME, r.REMARKS or None) for r in rows]

    async def _metadata(self, call: Callable[[Any], Any], token: str | None) -> list[Any]:
        def run() -> list[Any]:
            conn = self._acquire(token)
            try:
                with _errors("metadata"), conn.cursor() as cursor:
                    return list(call(cursor).fetchall())
            finally:
                self._release(conn, token)

        return await asyncio.to_thread(run)

    def _run(self, sql: str, token: str | None, cursors: list[Any]) -> tuple[Any, Any]:
        """A connection and a cursor executing `sql`, listed in `cursors` (and as running)
        before it starts, so that a cancel reaches it while `execute` still blocks. A pooled
        connection that fails to start the statement is replaced once; a second failure is
        EngineUnavailable."""
        from databricks.sql.exc import Error, RequestError, ServerOperationError

        for attempt in (1, 2):
            conn = self._acquire(token)
            cursor = conn.cursor()
            cursors.append(cursor)
            self._running[cursor] = token
            try:
                cursor.execute(sql)
                return conn, cursor
            except ServerOperationError as exc:  # the warehouse refused the statement
                self._running.pop(cursor, None)
                cursor.close()
                self._release(conn, token)
                raise _error(exc, sql) from exc
            except (RequestError, Error, OSError) as exc:
                self._running.pop(cursor, None)
                cursor.close()
                conn.close()  # a dead connection: dropped, not pooled
                if attempt == 2:
                    raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _acquire(self, token: str | None) -> Any:
        if token is None:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
        try:
            return self._open(token)
        except Exception as exc:  # noqa: BLE001 - the connector and the SDK raise many kinds
            raise _unavailable(exc) from exc

    def _release(self, conn: Any, token: str | None) -> None:
        """Pool the service connection; a per-user one is closed (its token is not ours to keep)."""
        with self._lock:
            if token is None and len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def _open(self, token: str | None) -> Any:
        from databricks.sdk.core import Config

        connect = self._connect
        if connect is None:
            from databricks import sql as dbsql

            connect = dbsql.connect
        if self._config is None:
            t = self.target
            self._config = Config(
                host=t.host,
                token=t.token,
                client_id=t.client_id,
                client_secret=t.client_secret,
                profile=t.profile,
                # the SDK's defaults retry an unreachable host for five minutes
                retry_timeout_seconds=AUTH_TIMEOUT_S,
                http_timeout_seconds=AUTH_TIMEOUT_S,
            )
        options: dict[str, Any] = {
            "server_hostname": self._config.hostname,
            "http_path": self.target.resolved_http_path(),
            "user_agent_entry": USER_AGENT,
            "query_tags": {"application": USER_AGENT},
            "session_configuration": {"STATEMENT_TIMEOUT": str(int(self.timeout))},
        }
        if token is not None:
            options["access_token"] = token
        else:
            config = self._config
            options["credentials_provider"] = lambda: config.authenticate
        return connect(**options)


class DatabricksUser:
    """A DatabricksEngine as one user sees it: everything runs with their token, on
    connections of their own (closed after each statement; the service pool is not used).
    Held by the Postgres session of a client that signed in with that token."""

    dialect = "databricks"

    def __init__(self, engine: DatabricksEngine, token: str) -> None:
        self._engine = engine
        self._token = token
        self.principal = hashlib.sha256(token.encode()).hexdigest()

    def __repr__(self) -> str:
        return "DatabricksUser(<token>)"

    def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        return self._engine.execute(sql, token=self._token)

    async def describe(self, sql: str) -> pa.Schema:
        return await self._engine.describe(sql, token=self._token)

    async def cancel(self) -> None:
        await self._engine.cancel(token=self._token)

    async def health(self) -> None:
        await self._engine.health(token=self._token)

    async def aclose(self) -> None:
        await self.cancel()  # its connections close after each statement; the pool is the engine's

    async def list_catalogs(self) -> list[str]:
        return await self._engine.list_catalogs(token=self._token)

    async def list_schemas(self, catalog: str | None = None) -> list[str]:
        return await self._engine.list_schemas(catalog, token=self._token)

    async def list_tables(self, schema: str, catalog: str | None = None) -> list[TableInfo]:
        return await self._engine.list_tables(schema, catalog, token=self._token)

    async def list_columns(self, table: str, schema: str, catalog: str | None = None) -> list[ColumnInfo]:
        return await self._engine.list_columns(table, schema, catalog, token=self._token)


class _errors:
    """Turn the connector's failures inside a running statement into semproxy's errors."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        from databricks.sql.exc import Error, RequestError

        if isinstance(exc, RequestError) and "CANCEL" not in str(exc).upper():
            raise _unavailable(exc) from exc
        if isinstance(exc, Error):
            raise _error(exc, self.sql) from exc


def _error(exc: BaseException, sql: str) -> EngineError | QueryCanceled:
    text = str(exc)
    if "CANCEL" in text.upper():
        return QueryCanceled(f"canceling statement: {text}")
    return EngineError(f"the engine failed: {text}", detail=sql)


def _unavailable(exc: BaseException) -> EngineUnavailable:
    return EngineUnavailable(
        f"the Databricks SQL warehouse is unreachable: {exc or type(exc).__name__}",
        hint="check DATABRICKS_HOST, DATABRICKS_HTTP_PATH or DATABRICKS_WAREHOUSE_ID, and the credentials",
    )


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
