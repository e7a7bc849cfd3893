"""Per engine that runs here (DuckDB, PostgreSQL, Spark Connect): rows/s streaming the same
1M rows x 5 columns through semproxy, beside the engine's own client fetching them directly.

Through semproxy, two clients: asyncpg (rows decoded into Python records) and psycopg's
COPY ... TO STDOUT (raw bytes: what semproxy itself streams). Directly: DuckDB's and
Spark Connect's clients to Arrow, asyncpg to the Postgres warehouse. The ratio is
semproxy's rows/s over the direct client's. Figures only; the goal for DuckDB is 0.8.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psycopg

from bench.streaming import REFERENCE_SQL, ROWS, SEMPROXY_SQL, _median_seconds, _prepare, asyncpg_rows
from semproxy.catalog.server import CatalogServer
from tests.conftest import start_server, stop_server
from tests.engine_fixtures import SparkConnectServer, warehouse_dsn

DIRECT_SQL = REFERENCE_SQL.replace("FROM wide", "FROM main.wide")
COPY_SQL = 'COPY (SELECT "row", name, amount, day, score FROM wide) TO STDOUT'  # the streaming query


def _copy_lines(dsn: str) -> Callable[[], int]:
    def run() -> int:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            return sum(bytes(chunk).count(b"\n") for chunk in copy)

    return run


@contextmanager
def _duckdb(root: Path, db: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        yield str(db), lambda: con.sql(DIRECT_SQL).to_arrow_table().num_rows


@contextmanager
def _postgres(root: Path, db: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    async def start() -> CatalogServer:
        server = await CatalogServer.start(root / "warehouse-pg", database="warehouse")
        conn = await server.connect_admin()
        try:
            await conn.execute("CREATE SCHEMA main")
            await conn.execute(
                "CREATE TABLE main.wide (id int8, name text, amount numeric(12,2), day date, score float8)"
            )
            await conn.copy_to_table("wide", schema_name="main", source=str(root / "wide.csv"), format="csv")
            await conn.execute("ANALYZE main.wide")
        finally:
            await conn.close()
        return server

    server = asyncio.run(start())
    try:
        dsn = warehouse_dsn(server)
        yield dsn, asyncpg_rows(dsn, DIRECT_SQL)
    finally:
        asyncio.run(server.stop())


@contextmanager
def _spark(root: Path, db: Path) -> Iterator[tuple[str, Callable[[], int]]]:
    from pyspark.sql.connect.session import SparkSession

    (root / "spark").mkdir()
    server = SparkConnectServer(root / "spark")
    server.start()
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            table = con.sql(REFERENCE_SQL).to_arrow_table()
        spark = SparkSession.builder.remote(server.url).create()
        try:
            spark.sql("CREATE DATABASE IF NOT EXISTS main")
            spark.createDataFrame(table).write.mode("overwrite").saveAsTable("main.wide")
            yield server.url, lambda: spark.sql(DIRECT_SQL).toArrow().num_rows
        finally:
            spark.stop()
    finally:
        server.stop()


ENGINES = {"duckdb": _duckdb, "postgres": _postgres, "spark": _spark}


def main() -> None:
    print(f"== {ROWS:,} rows x 5 columns per engine, through semproxy and directly (median of 3)")
    for name, warehouse in ENGINES.items():
        with tempfile.TemporaryDirectory(prefix=f"semproxy-bench-{name}-") as tmp:
            root = Path(tmp)
            db, models, _ = _prepare(root)
            with warehouse(root, db) as (target, direct):
                theirs, n0 = _median_seconds(direct)
                server = start_server(
                    root, "--engine", name, "--database", target, models=models, database=db
                )
                try:
                    rows, n1 = _median_seconds(asyncpg_rows(server.dsn, SEMPROXY_SQL))
                    copy, n2 = _median_seconds(_copy_lines(server.dsn))
                finally:
                    stop_server(server)
            assert n0 == n1 == n2 == ROWS, (n0, n1, n2)
            print(
                f"  {name:8} direct {ROWS / theirs:>11,.0f} rows/s | semproxy asyncpg {ROWS / rows:>10,.0f} rows/s"
                f" ({theirs / rows:.2f}x) | semproxy COPY {ROWS / copy:>10,.0f} rows/s ({theirs / copy:.2f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
