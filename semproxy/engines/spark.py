"""Apache Spark through Spark Connect (`sc://host:port`). Results leave as Arrow batches.

The Connect client streams a result as Arrow batches (the server cuts them at
`spark.connect.grpc.arrow.maxBatchSize`); they are handed over one by one, never
collected. Each query carries an operation tag of its own, and cancelling it interrupts
that tag. The client's default retry policy waits ten minutes for a dead server; ours
gives up within seconds, so an outage is a clear EngineUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pyarrow as pa

from semproxy.engines.base import ColumnInfo, TableInfo
from semproxy.engines.threads import stream_in_thread
from semproxy.errors import EngineError, EngineUnavailable, QueryCanceled

RETRIES = 3
RETRY_BACKOFF_MS = 200
MAX_BACKOFF_MS = 1000


class SparkEngine:
    dialect = "spark"
    principal = ""

    def __init__(self, remote: str, *, timeout: float | None = None) -> None:
        if not remote.startswith("sc://"):
            raise EngineUnavailable(f"a Spark Connect URL starts with sc://, not {remote!r}")
        self.remote = remote
        self.timeout = timeout
        self._session: Any = None
        self._lock = threading.Lock()
        self._tags: set[str] = set()

    async def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        tag = f"semproxy-{uuid.uuid4().hex}"

        def produce() -> Iterator[pa.RecordBatch]:
            spark = self._spark()
            spark.addTag(tag)  # tags belong to the thread that runs the query: this one
            self._tags.add(tag)
            try:
                with _errors(sql):
                    yield from _batches(spark, sql)
            finally:
                spark.removeTag(tag)
                self._tags.discard(tag)

        async for batch in stream_in_thread(produce, lambda: self._interrupt(tag), timeout=self.timeout):
            yield batch

    async def describe(self, sql: str) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        def run() -> pa.Schema:
            with _errors(sql):
                return to_arrow_schema(
                    self._spark().sql(sql).schema, timezone="UTC", prefers_large_types=False
                )

        return await asyncio.to_thread(run)

    async def cancel(self) -> None:
        for tag in list(self._tags):
            await asyncio.to_thread(self._interrupt, tag)

    async def health(self) -> None:
        async for _ in self.execute("SELECT 1"):
            pass

    async def aclose(self) -> None:
        await self.cancel()
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            await asyncio.to_thread(session.stop)

    async def list_catalogs(self) -> list[str]:
        return [c.name for c in await self._catalog("listCatalogs")]

    async def list_schemas(self, catalog: str | None = None) -> list[str]:
        return sorted(d.name for d in await self._catalog("listDatabases") if catalog in (None, d.catalog))

    async def list_tables(self, schema: str, catalog: str | None = None) -> list[TableInfo]:
        tables = await self._catalog("listTables", _qualified(schema, catalog))
        return sorted((TableInfo(schema, t.name, t.description) for t in tables), key=lambda t: t.name)

    async def list_columns(self, table: str, schema: str, catalog: str | None = None) -> list[ColumnInfo]:
        columns = await self._catalog("listColumns", table, _qualified(schema, catalog))
        return [ColumnInfo(c.name, c.dataType, c.description) for c in columns]

    async def _catalog(self, method: str, *args: str) -> list[Any]:
        def run() -> list[Any]:
            with _errors(method):
                return list(getattr(self._spark().catalog, method)(*args))

        return await asyncio.to_thread(run)

    def _spark(self) -> Any:
        """The one Connect session, made on first use (in a worker thread: it dials out)."""
        with self._lock:
            if self._session is None:
                from pyspark.sql.connect.client.retries import DefaultPolicy
                from pyspark.sql.connect.session import SparkSession

                with _errors("connecting"):
                    session = SparkSession.builder.remote(self.remote).create()
                    session.client.set_retry_policies(
                        [
                            DefaultPolicy(
                                max_retries=RETRIES,
                                initial_backoff=RETRY_BACKOFF_MS,
                                max_backoff=MAX_BACKOFF_MS,
                                backoff_multiplier=2.0,
                                jitter=0,
                                max_server_retry_delay=MAX_BACKOFF_MS,
                            )
                        ]
                    )
                    session.conf.set("spark.sql.session.timeZone", "UTC")
                self._session = session
            return self._session

    def _interrupt(self, tag: str) -> None:
        if self._session is not None and tag in self._tags:
            with contextlib.suppress(Exception):  # a server that is gone has nothing to stop
                self._session.interruptTag(tag)


def _batches(spark: Any, sql: str) -> Iterator[pa.RecordBatch]:
    df = spark.sql(sql)
    schema: pa.Schema | None = None
    sent = False
    for item in spark.client.to_table_as_iterator(df._plan.to_proto(spark.client), {}):
        if isinstance(item, pa.Table):
            for batch in item.to_batches():
                sent = True
                yield batch
            schema = item.schema
        elif schema is None:
            from pyspark.sql.pandas.types import to_arrow_schema

            schema = to_arrow_schema(item, timezone="UTC", prefers_large_types=False)
    if not sent:
        yield pa.RecordBatch.from_pylist([], schema=schema or pa.schema([]))


@contextlib.contextmanager
def _errors(sql: str) -> Iterator[None]:
    """Turn the Connect client's failures into semproxy's errors."""
    import grpc
    from pyspark.errors import PySparkException
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    try:
        yield
    except grpc.RpcError as exc:
        raise _unavailable(exc) from exc
    except SparkConnectGrpcException as exc:
        text = str(exc)
        if "OPERATION_CANCELED" in text or "INTERRUPTED" in text.upper():
            raise QueryCanceled("canceling statement due to user request") from exc
        if "UNAVAILABLE" in text or "Connection refused" in text:
            raise _unavailable(exc) from exc
        raise EngineError(f"the engine failed: {exc}", detail=sql) from exc
    except PySparkException as exc:
        raise EngineError(f"the engine failed: {exc}", detail=sql) from exc


def _qualified(schema: str, catalog: str | None) -> str:
    return f"{catalog}.{schema}" if catalog else schema  # a name for the catalog API, not SQL


def _unavailable(exc: BaseException) -> EngineUnavailable:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    reason = next((ln.split("=", 1)[1].strip(' "') for ln in lines if "details =" in ln), lines[0])
    return EngineUnavailable(
        f"the Spark Connect server is unreachable: {reason}",
        hint="check --database (an sc://host:port Spark Connect URL) and that the server is up",
    )
