"""DuckDB, the embedded default engine. Results leave as Arrow record batches.

DuckDB calls block, so each query runs on its own cursor (a DuckDB connection to the same
database, which is also what `interrupt()` cancels) outside the event loop (`threads.py`):
one hop to a worker thread starts it and reads its first batches, which for most metric
queries is the whole result; a longer result then streams from a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from semproxy.engines.base import ColumnInfo, TableInfo
from semproxy.engines.threads import call_in_thread, stream_in_thread
from semproxy.errors import EngineError, EngineUnavailable, QueryCanceled

BATCH_ROWS = 65_536
# The first hop reads up to this many rows or batches (a small GROUP BY comes in a few
# batches, one per partition); a result that ends within them needs no stream.
FIRST_ROWS = BATCH_ROWS
FIRST_BATCHES = 16


class DuckDBEngine:
    dialect = "duckdb"
    principal = ""

    def __init__(self, database: str | Path, *, read_only: bool = True) -> None:
        self.database = str(database)
        if self.database != ":memory:" and not Path(self.database).exists():
            raise EngineUnavailable(
                f"DuckDB database {self.database} does not exist",
                hint="run `semproxy demo-data` to generate the demo database, or pass --database",
            )
        self._con = duckdb.connect(self.database, read_only=read_only and self.database != ":memory:")
        self._running: set[duckdb.DuckDBPyConnection] = set()

    async def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        cursor = self._con.cursor()
        self._running.add(cursor)

        # The cursor is closed where it was last used, never while another thread uses it.
        def close() -> None:
            self._running.discard(cursor)
            cursor.close()

        def start() -> tuple[pa.RecordBatchReader | None, list[pa.RecordBatch]]:
            """Run the query and read its first batches; the reader when more may follow."""
            try:
                reader = _start(cursor, sql)
                first: list[pa.RecordBatch] = []
                rows, ended = 0, False
                while rows < FIRST_ROWS and len(first) < FIRST_BATCHES and not ended:
                    batch = _next_batch(reader)
                    ended = batch is None
                    if batch is not None:
                        first.append(batch)
                        rows += batch.num_rows
            except BaseException:
                close()
                raise
            if not ended:
                return reader, first
            close()  # the whole result, as one batch: encoded in one go
            return None, [
                pa.concat_batches(first) if first else pa.RecordBatch.from_pylist([], schema=reader.schema)
            ]

        def rest(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
            try:
                while (batch := _next_batch(reader)) is not None:
                    yield batch
            finally:
                close()

        def interrupt() -> None:
            with contextlib.suppress(duckdb.ConnectionException):  # closed: the query is over
                cursor.interrupt()

        def release(started: tuple[pa.RecordBatchReader | None, list[pa.RecordBatch]]) -> None:
            if started[0] is not None:
                close()

        reader, first = await call_in_thread(start, interrupt, release)
        streaming = False
        try:
            for batch in first:
                yield batch
            if reader is not None:
                streaming = True
                async for batch in stream_in_thread(lambda: rest(reader), interrupt):
                    yield batch
        finally:
            if reader is not None and not streaming:  # closed before the stream began
                close()

    async def describe(self, sql: str) -> pa.Schema:
        cursor = self._con.cursor()
        try:
            reader = await asyncio.to_thread(_start, cursor, sql, 0)
            return reader.schema
        finally:
            cursor.close()

    async def cancel(self) -> None:
        for cursor in list(self._running):
            with contextlib.suppress(duckdb.ConnectionException):
                cursor.interrupt()

    async def health(self) -> None:
        async for _ in self.execute("SELECT 1"):
            pass

    async def aclose(self) -> None:
        await self.cancel()
        for _ in range(500):  # interrupted queries close their cursors in their own threads
            if not self._running:
                break
            await asyncio.sleep(0.01)
        self._con.close()

    async def list_catalogs(self) -> list[str]:
        return [
            r[0] for r in await self._rows("SELECT DISTINCT database_name FROM duckdb_tables() ORDER BY 1")
        ]

    async def list_schemas(self, catalog: str | None = None) -> list[str]:
        rows = await self._rows(
            "SELECT DISTINCT schema_name FROM duckdb_schemas() WHERE schema_name NOT IN ('information_schema', 'pg_catalog')"
            " AND database_name = coalesce(?, current_database()) ORDER BY 1",
            [catalog],
        )
        return [r[0] for r in rows]

    async def list_tables(self, schema: str, catalog: str | None = None) -> list[TableInfo]:
        rows = await self._rows(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = ?"
            " AND database_name = coalesce(?, current_database())"
            " UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE NOT internal AND schema_name = ?"
            " AND database_name = coalesce(?, current_database()) ORDER BY 1",
            [schema, catalog, schema, catalog],
        )
        return [TableInfo(schema, name, comment) for name, comment in rows]

    async def list_columns(self, table: str, schema: str, catalog: str | None = None) -> list[ColumnInfo]:
        rows = await self._rows(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE table_name = ?"
            " AND schema_name = ? AND database_name = coalesce(?, current_database()) ORDER BY column_index",
            [table, schema, catalog],
        )
        return [ColumnInfo(*r) for r in rows]

    async def _rows(self, sql: str, params: list[str | None] | None = None) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with self._con.cursor() as cursor:
                return cursor.execute(sql, params or []).fetchall()

        return await asyncio.to_thread(run)


def _start(cursor: duckdb.DuckDBPyConnection, sql: str, batch_rows: int = BATCH_ROWS) -> pa.RecordBatchReader:
    try:
        relation = cursor.sql(sql)
        if relation is None:  # a statement without a result
            return pa.RecordBatchReader.from_batches(pa.schema([]), [])
        if batch_rows == 0:
            return pa.RecordBatchReader.from_batches(relation.limit(0).to_arrow_table().schema, [])
        return relation.to_arrow_reader(batch_rows)
    except duckdb.InterruptException as exc:
        raise QueryCanceled("canceling statement due to user request") from exc
    except duckdb.Error as exc:
        raise EngineError(f"the engine failed: {exc}", detail=sql) from exc


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except duckdb.InterruptException as exc:
        raise QueryCanceled("canceling statement due to user request") from exc
    except (duckdb.Error, pa.ArrowException) as exc:
        raise EngineError(f"the engine failed: {exc}") from exc
