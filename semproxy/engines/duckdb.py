"""DuckDB, the embedded default engine. Results leave as Arrow record batches.

DuckDB calls block, so each runs in a worker thread; every query gets its own cursor
(a DuckDB connection to the same database), which is also what `interrupt()` cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pyarrow as pa

from semproxy.errors import EngineError, EngineUnavailable, QueryCanceled

BATCH_ROWS = 65_536


class DuckDBEngine:
    dialect = "duckdb"

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
        try:
            reader = await asyncio.to_thread(_start, cursor, sql)
            schema = reader.schema
            sent = False
            while True:
                batch = await asyncio.to_thread(_next_batch, reader)
                if batch is None:
                    break
                sent = True
                yield batch
            if not sent:
                yield pa.RecordBatch.from_pylist([], schema=schema)
        finally:
            self._running.discard(cursor)
            cursor.interrupt()
            cursor.close()

    async def describe(self, sql: str) -> pa.Schema:
        cursor = self._con.cursor()
        try:
            reader = await asyncio.to_thread(_start, cursor, sql, 0)
            return reader.schema
        finally:
            cursor.close()

    async def health(self) -> None:
        async for _ in self.execute("SELECT 1"):
            pass

    async def aclose(self) -> None:
        for cursor in list(self._running):
            cursor.interrupt()
        self._con.close()


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
