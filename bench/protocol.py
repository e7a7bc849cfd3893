"""The protocol layer beside a reference PostgreSQL, with asyncpg as the client:

    SELECT 1 round trips over one open connection: per second, p50 and p99
    connect + authenticate + one query + close, one after another: per second
    N connections opened at once (all accepted? how fast?), then each runs small
    aggregates (a metric query through semproxy; the same GROUP BY on a table in PostgreSQL)

Both sides aggregate the same 10,000 orders: semproxy serves them from a DuckDB file of
its own with a one-model category, so the figures compare the servers, not the data
(the demo's orders table is ten times larger).

Figures only, printed with the ratio semproxy / PostgreSQL. Targets: every connection
accepted, and within 2x of PostgreSQL on each figure."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import duckdb

from bench.reference_pg import reference_postgres
from tests.conftest import start_server, stop_server

ROUND_TRIPS = 3000
CONNECT_SECONDS = 3.0
CONNECTIONS = 200
QUERIES_PER_CONNECTION = 50
METRIC_SQL = "SELECT region, MEASURE(order_count) FROM orders GROUP BY 1"
REFERENCE_SQL = "SELECT region, count(order_id) FROM orders GROUP BY 1"
REFERENCE_TABLE = """
CREATE TABLE orders AS
SELECT (ARRAY['Asia Pacific', 'Europe', 'Latin America', 'North America', NULL])[1 + i % 5] AS region,
       i AS order_id
FROM generate_series(1, 10000) AS i
"""
DUCKDB_TABLE = """
CREATE TABLE orders AS
SELECT (['Asia Pacific', 'Europe', 'Latin America', 'North America', NULL])[1 + i % 5] AS region,
       i AS order_id
FROM generate_series(1, 10000) AS t(i)
"""
ORDERS_MODEL = """\
name: orders
model: main.orders
entities:
  - {name: order, type: primary, expr: order_id}
dimensions:
  - {name: region, type: categorical}
measures:
  - {name: order_count, agg: count, expr: order_id}
"""


async def round_trips(dsn: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(100):  # warm up: the prepared statement, the catalog connection
            await conn.fetchval("SELECT 1")
        times = []
        start = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            t0 = time.perf_counter()
            await conn.fetchval("SELECT 1")
            times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    finally:
        await conn.close()
    times.sort()
    return {
        "per_s": ROUND_TRIPS / elapsed,
        "p50_us": statistics.median(times) * 1e6,
        "p99_us": times[int(len(times) * 0.99)] * 1e6,
    }


async def connects(dsn: str) -> dict[str, float]:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < CONNECT_SECONDS:
        conn = await asyncpg.connect(dsn)
        await conn.fetchval("SELECT 1")
        await conn.close()
        count += 1
    return {"per_s": count / (time.perf_counter() - start)}


async def crowd(dsn: str, sql: str, connections: int) -> dict[str, float]:
    start = time.perf_counter()
    opened = await asyncio.gather(
        *(asyncpg.connect(dsn, timeout=60) for _ in range(connections)), return_exceptions=True
    )
    accept_s = time.perf_counter() - start
    conns = [c for c in opened if isinstance(c, asyncpg.Connection)]

    async def work(conn: asyncpg.Connection) -> int:
        for _ in range(QUERIES_PER_CONNECTION):
            await conn.fetch(sql)
        return QUERIES_PER_CONNECTION

    start = time.perf_counter()
    done = sum(await asyncio.gather(*(work(c) for c in conns)))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(c.close() for c in conns))
    return {"accepted": len(conns), "accept_s": accept_s, "queries_per_s": done / elapsed}


def _row(name: str, ours: float, theirs: float, unit: str, higher_is_better: bool = True) -> None:
    ratio = ours / theirs if theirs else float("nan")
    verdict = ratio if higher_is_better else (1 / ratio if ratio else float("nan"))
    print(
        f"  {name:<34} semproxy {ours:>12,.1f} {unit:<6} postgres {theirs:>12,.1f} {unit:<6} ratio {verdict:.2f}x"
    )


async def _measure(ours: str, theirs: str) -> None:
    rt_ours, rt_theirs = await round_trips(ours), await round_trips(theirs)
    _row("SELECT 1 round trips", rt_ours["per_s"], rt_theirs["per_s"], "/s")
    _row("SELECT 1 p50", rt_ours["p50_us"], rt_theirs["p50_us"], "us", higher_is_better=False)
    _row("SELECT 1 p99", rt_ours["p99_us"], rt_theirs["p99_us"], "us", higher_is_better=False)
    c_ours, c_theirs = await connects(ours), await connects(theirs)
    _row("connect + auth + query + close", c_ours["per_s"], c_theirs["per_s"], "/s")
    many = await crowd(ours, METRIC_SQL, CONNECTIONS)
    few = await crowd(ours, METRIC_SQL, CONNECTIONS)
    reference = await crowd(theirs, REFERENCE_SQL, CONNECTIONS)
    print(f"  {CONNECTIONS} connections at once: {many['accepted']:.0f} accepted in {many['accept_s']:.2f} s")
    print(
        f"  {CONNECTIONS} x {QUERIES_PER_CONNECTION} small metric queries: {many['queries_per_s']:,.0f} queries/s"
    )
    _row(f"{CONNECTIONS} conns x {QUERIES_PER_CONNECTION} aggregates", few["queries_per_s"],
         reference["queries_per_s"], "q/s")  # fmt: skip
    _row(f"{CONNECTIONS} connections accepted in", few["accept_s"], reference["accept_s"], "s", False)


def main() -> None:
    print(
        f"protocol: asyncpg; SELECT 1 x {ROUND_TRIPS}, connects for {CONNECT_SECONDS:.0f} s, crowds of connections"
    )
    with (
        tempfile.TemporaryDirectory(prefix="semproxy-bench-protocol-") as tmp,
        reference_postgres(max_connections="300") as ref,
    ):
        server = start_server(Path(tmp), models=_orders_models(Path(tmp)), database=_orders_db(Path(tmp)))
        try:
            asyncio.run(_prepare_reference(ref.dsn))
            print(f"  reference: {ref.version}")
            asyncio.run(_measure(f"postgresql://bench@{server.host}:{server.port}/semantic", ref.dsn))
        finally:
            stop_server(server)


def _orders_models(root: Path) -> Path:
    models = root / "models"
    (models / "production").mkdir(parents=True)
    (models / "production" / "orders.yaml").write_text(ORDERS_MODEL)
    return models


def _orders_db(root: Path) -> Path:
    db = root / "orders.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(DUCKDB_TABLE)
    return db


async def _prepare_reference(dsn: str) -> None:
    await _with(dsn, lambda conn: conn.execute(REFERENCE_TABLE))


async def _with(dsn: str, action: Callable[[asyncpg.Connection], Awaitable[object]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await action(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
