"""Rows/s streaming a 1M-row, 5-column result (int8, text, numeric, date, float8) to asyncpg
and psycopg through semproxy, beside a reference PostgreSQL serving the same rows.

Figures only. Where we are heading: at least 0.8x PostgreSQL's rows/s."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import duckdb
import psycopg

from bench.reference_pg import reference_postgres
from tests.conftest import start_server, stop_server

ROWS = 1_000_000
RUNS = 3
MODEL = """\
name: wide
model: main.wide
entities:
  - {name: row, type: primary, expr: id}
dimensions:
  - {name: name, type: categorical}
  - {name: amount, type: categorical}
  - {name: day, type: time, type_params: {time_granularity: day}}
  - {name: score, type: categorical}
measures:
  - {name: row_count, agg: count, expr: id}
"""
SEMPROXY_SQL = 'SELECT "row", name, amount, day, score FROM wide'
REFERENCE_SQL = "SELECT id, name, amount, day, score FROM wide"
CREATE = """
CREATE TABLE wide AS
SELECT range::BIGINT AS id, 'customer-' || (range % 50000)::VARCHAR AS name,
       ((range * 7919) % 1000000 / 100.0)::DECIMAL(12,2) AS amount,
       DATE '2020-01-01' + (range % 2000)::INTEGER AS day, range * 0.001 + 0.5 AS score
FROM range(1000000)
"""


def _median_seconds(run: Callable[[], int]) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def asyncpg_rows(dsn: str, sql: str) -> Callable[[], int]:
    def run() -> int:
        async def go() -> int:
            conn = await asyncpg.connect(dsn)
            try:
                return len(await conn.fetch(sql))
            finally:
                await conn.close()

        return asyncio.run(go())

    return run


def _psycopg(dsn: str, sql: str) -> Callable[[], int]:
    def run() -> int:
        with psycopg.connect(dsn) as conn:
            return len(conn.execute(sql).fetchall())

    return run


def _prepare(root: Path) -> tuple[Path, Path, Path]:
    db = root / "wide.duckdb"
    models = root / "models"
    (models / "production").mkdir(parents=True)
    (models / "production" / "wide.yaml").write_text(MODEL)
    csv = root / "wide.csv"
    with duckdb.connect(str(db)) as con:
        con.execute(CREATE)
        con.execute("COPY wide TO ? (HEADER false)", [str(csv)])
    return db, models, csv


async def _load_reference(dsn: str, csv: Path) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE wide (id int8, name text, amount numeric(12,2), day date, score float8)"
        )
        await conn.copy_to_table("wide", source=str(csv), format="csv")
        await conn.execute("ANALYZE wide")
    finally:
        await conn.close()


def main() -> None:
    print(f"== streaming {ROWS:,} rows x 5 columns (median of {RUNS})")
    with tempfile.TemporaryDirectory(prefix="semproxy-bench-") as tmp:
        root = Path(tmp)
        db, models, csv = _prepare(root)
        with duckdb.connect(str(db), read_only=True) as con:
            direct, _ = _median_seconds(lambda: con.sql(REFERENCE_SQL).to_arrow_table().num_rows)
        print(f"  DuckDB -> Arrow directly: {ROWS / direct:,.0f} rows/s")
        server = start_server(root, models=models, database=db)
        try:
            with reference_postgres() as ref:
                asyncio.run(_load_reference(ref.dsn, csv))
                print(f"  reference: {ref.version}")
                for client, make in (("asyncpg", asyncpg_rows), ("psycopg", _psycopg)):
                    ours, n1 = _median_seconds(make(server.dsn, SEMPROXY_SQL))
                    theirs, n2 = _median_seconds(make(ref.dsn, REFERENCE_SQL))
                    assert n1 == n2 == ROWS, (n1, n2)
                    print(
                        f"  {client:8} semproxy {ROWS / ours:>10,.0f} rows/s   "
                        f"PostgreSQL {ROWS / theirs:>10,.0f} rows/s   ratio {theirs / ours:.2f}x"
                    )
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
