"""The shared engine suite: every engine that runs here (DuckDB, PostgreSQL, Spark Connect,
the Databricks connector fake) runs the same compiled demo queries and gives DuckDB's
numbers, streams large results, stops on cancel and reports an outage as 08006."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot

from semproxy.catalog.server import CatalogServer
from semproxy.engines.base import Engine
from semproxy.engines.databricks import DatabricksEngine, DatabricksTarget
from semproxy.engines.duckdb import DuckDBEngine
from semproxy.engines.postgres import PostgresEngine
from semproxy.engines.spark import SparkEngine
from semproxy.errors import EngineUnavailable, QueryCanceled
from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry
from tests.conftest import MODELS
from tests.engine_fixtures import FakeDatabricks, SparkConnectServer, demo_tables, free_port, load_postgres

ENGINES = ["duckdb", "postgres", pytest.param("spark", marks=pytest.mark.spark), "databricks"]

QUERIES = [
    "SELECT region, MEASURE(revenue) AS revenue, MEASURE(order_count) AS n FROM orders GROUP BY region",
    "SELECT status, channel, MEASURE(avg_order_value) AS aov FROM orders GROUP BY status, channel",
    "SELECT DATE_TRUNC('month', order_date) AS m, MEASURE(revenue) FROM orders GROUP BY 1",
    "SELECT customer__region, MEASURE(revenue), MEASURE(buyers) FROM orders GROUP BY 1",
    "SELECT region, MEASURE(median_amount), MEASURE(p90_amount) FROM orders GROUP BY 1",
    "SELECT MEASURE(completed_revenue), MEASURE(discount_total) FROM orders WHERE order_date >= DATE '2025-01-01'",
]

# 1M rows, written once in DuckDB's dialect and transpiled to each engine's
LARGE = (
    "SELECT o.order_id, o.amount, o.order_date, k.k FROM main.orders AS o"
    " CROSS JOIN (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)) AS k(k)"
)
LONG = {
    "duckdb": "SELECT COUNT(*) FROM range(10000000000000) AS a(x) WHERE x % 7 = 3",
    "databricks": "SELECT COUNT(*) FROM range(10000000000000) AS a(x) WHERE x % 7 = 3",
    "spark": "SELECT COUNT(*) FROM range(10000000000000) WHERE id % 7 = 3",
    "postgres": "SELECT pg_sleep(60)",
}


@dataclass
class Warehouse:
    name: str
    engine: Engine
    fake: FakeDatabricks | None = None


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.load(MODELS)


class Targets:
    """The warehouses that run as servers, started on first need and stopped at the end.
    Started from a thread of their own: they are wanted from inside the running test loop."""

    def __init__(self, workdir: Path, demo_db: Path) -> None:
        self.workdir = workdir
        self.demo_db = demo_db
        self._postgres: CatalogServer | None = None
        self._spark: SparkConnectServer | None = None

    def postgres_dsn(self) -> str:
        if self._postgres is None:
            with ThreadPoolExecutor(1) as pool:
                self._postgres = pool.submit(asyncio.run, self._start_postgres()).result()
        ep = self._postgres.endpoint
        return f"postgresql://{ep.admin_user}@/{ep.database}?host={ep.host}&port={ep.port}"

    async def _start_postgres(self) -> CatalogServer:
        server = await CatalogServer.start(self.workdir / "warehouse-pg", database="warehouse")
        conn = await server.connect_admin()
        try:
            await load_postgres(conn, demo_tables(self.demo_db))
        finally:
            await conn.close()
        return server

    def spark_url(self) -> str:
        if self._spark is None:
            server = SparkConnectServer(self.workdir / "spark")
            (self.workdir / "spark").mkdir()
            server.start()
            began = time.monotonic()
            server.load(demo_tables(self.demo_db))
            print(
                f"\nSpark Connect: port open in {server.started_in:.1f} s, demo loaded in {time.monotonic() - began:.1f} s"
            )
            self._spark = server
        return self._spark.url

    def stop(self) -> None:
        if self._spark is not None:
            self._spark.stop()
        if self._postgres is not None:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, self._postgres.stop()).result()


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Iterator[Targets]:
    running = Targets(tmp_path_factory.mktemp("engines"), demo_db)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Databricks workspace is reachable from here: the SDK's discovery probe fails at
    once (as it does for an unreachable host, after its retries)."""
    sdk_config = importlib.import_module("databricks.sdk.config")

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("no workspace here")

    if not os.environ.get("DATABRICKS_HOST"):
        monkeypatch.setattr(sdk_config, "get_host_metadata", unreachable)


@pytest.fixture(params=ENGINES)
async def warehouse(
    request: pytest.FixtureRequest, targets: Targets, demo_db: Path
) -> AsyncIterator[Warehouse]:
    name = request.param
    fake = None
    engine: Any
    if name == "duckdb":
        engine = DuckDBEngine(demo_db)
    elif name == "postgres":
        engine = PostgresEngine(targets.postgres_dsn())
    elif name == "spark":
        engine = SparkEngine(targets.spark_url())
    else:
        from databricks.sql.exc import RequestError

        fake = FakeDatabricks(demo_db, RequestError)
        engine = DatabricksEngine(
            DatabricksTarget(host="http://127.0.0.1:9", warehouse_id="abc", token="dapi-test"),
            connect=fake.connect,
        )
    yield Warehouse(name, engine, fake)
    await engine.aclose()


async def collect(engine: Engine, sql: str) -> pa.Table:
    batches = [b async for b in engine.execute(sql)]
    return pa.Table.from_batches(batches)


def normalized(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows as comparable values: numbers as floats rounded to 6 places, timestamps as dates."""

    def value(v: Any) -> Any:
        if isinstance(v, Decimal | float | int) and not isinstance(v, bool):
            return round(float(v), 6)
        if hasattr(v, "date") and callable(v.date):
            return v.date()
        return v

    rows = [tuple(value(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(rows, key=lambda r: tuple((v is not None, str(v)) for v in r))


@pytest.mark.parametrize("query", QUERIES)
async def test_same_numbers_as_duckdb(
    warehouse: Warehouse, registry: Registry, demo_db: Path, query: str
) -> None:
    reference = DuckDBEngine(demo_db)
    expected = normalized(
        await collect(reference, compile_query(query, registry, ["production"], "duckdb").sql)
    )
    await reference.aclose()
    sql = compile_query(query, registry, ["production"], warehouse.engine.dialect).sql
    got = normalized(await collect(warehouse.engine, sql))
    assert len(expected) > 1 or query.startswith("SELECT MEASURE")
    assert got == expected, sql


async def test_describe_matches_execute(warehouse: Warehouse, registry: Registry) -> None:
    sql = compile_query(QUERIES[0], registry, ["production"], warehouse.engine.dialect).sql
    described = await warehouse.engine.describe(sql)
    result = await collect(warehouse.engine, sql)
    assert described.names == result.schema.names
    assert pa.types.is_string(described.field(0).type)
    assert pa.types.is_decimal(described.field(1).type) and pa.types.is_integer(described.field(2).type)


async def test_large_result_streams_in_bounded_batches(warehouse: Warehouse) -> None:
    sql = sqlglot.transpile(LARGE, read="duckdb", write=warehouse.engine.dialect)[0]
    rows = batches = largest = 0
    peak = 0
    start = pa.total_allocated_bytes()
    async for batch in warehouse.engine.execute(sql):
        rows += batch.num_rows
        batches += 1
        largest = max(largest, batch.num_rows)
        peak = max(peak, pa.total_allocated_bytes() - start)
        del batch
    assert rows == 1_000_000
    assert batches >= 5 and largest <= 200_000
    assert peak < 64 << 20, f"{peak} bytes of Arrow held while streaming"


async def test_cancel_stops_a_long_query(warehouse: Warehouse) -> None:
    async def run() -> None:
        async for _ in warehouse.engine.execute(LONG[warehouse.name]):
            pass

    task = asyncio.create_task(run())
    await asyncio.sleep(1.5)
    assert not task.done()
    began = time.monotonic()
    task.cancel()
    with pytest.raises((asyncio.CancelledError, QueryCanceled)):
        await task
    assert time.monotonic() - began < 5
    await asyncio.wait_for(warehouse.engine.health(), 20)  # the engine keeps serving


async def test_engine_cancel_reaches_running_statements(warehouse: Warehouse) -> None:
    task = asyncio.create_task(collect(warehouse.engine, LONG[warehouse.name]))
    await asyncio.sleep(1.5)
    began = time.monotonic()
    await warehouse.engine.cancel()
    with pytest.raises(QueryCanceled):
        await asyncio.wait_for(task, 10)
    assert time.monotonic() - began < 10


async def test_listing_for_model_authoring(warehouse: Warehouse) -> None:
    engine = warehouse.engine
    assert await engine.list_catalogs()
    assert "main" in await engine.list_schemas()
    tables = {t.name: t for t in await engine.list_tables("main")}
    assert set(tables) >= {"orders", "customers", "order_items"}
    if warehouse.name in ("postgres", "spark"):
        assert tables["orders"].comment == "One row per order"
    columns = {c.name: c for c in await engine.list_columns("orders", "main")}
    assert list(columns)[:3] == ["order_id", "customer_id", "order_date"]
    assert any(word in columns["amount"].type.lower() for word in ("decimal", "numeric"))


async def test_unreachable_engine_is_a_clear_08006(warehouse: Warehouse, tmp_path: Path) -> None:
    port = free_port()
    engine: Any
    if warehouse.name == "duckdb":
        with pytest.raises(EngineUnavailable):
            DuckDBEngine(tmp_path / "missing.duckdb")
        return
    if warehouse.name == "postgres":
        engine = PostgresEngine(f"postgresql://nobody@127.0.0.1:{port}/x")
    elif warehouse.name == "spark":
        engine = SparkEngine(f"sc://127.0.0.1:{port}")
    else:
        assert warehouse.fake is not None
        warehouse.fake.reachable = False
        engine = warehouse.engine
    began = time.monotonic()
    with pytest.raises(EngineUnavailable) as caught:
        await engine.health()
    assert caught.value.sqlstate == "08006"
    assert "unreachable" in caught.value.message
    assert time.monotonic() - began < 15


@pytest.mark.parametrize("warehouse", ["postgres", "databricks"], indirect=True)  # the ones with connections
async def test_dead_connection_replaced_once_then_08006(warehouse: Warehouse) -> None:
    if warehouse.name == "postgres":
        engine = warehouse.engine
        assert isinstance(engine, PostgresEngine)
        await engine.health()
        pool = await engine._get_pool()
        killer = await pool.acquire()
        victim_pid = (await engine._fetch("SELECT pg_backend_pid()"))[0][0]
        await killer.execute("SELECT pg_terminate_backend($1)", victim_pid)
        await pool.release(killer)
        await asyncio.sleep(0.2)
        await engine.health()  # the dead pooled connection was replaced
    else:
        fake = warehouse.fake
        assert fake is not None
        await warehouse.engine.health()
        fake.dead_connections = 1
        await warehouse.engine.health()
        fake.dead_connections = 2
        with pytest.raises(EngineUnavailable):
            await warehouse.engine.health()


# ---- Databricks: what only Databricks has ----


@pytest.fixture
def fake(demo_db: Path) -> FakeDatabricks:
    from databricks.sql.exc import RequestError

    return FakeDatabricks(demo_db, RequestError)


def databricks(fake: FakeDatabricks, **kw: Any) -> DatabricksEngine:
    target = DatabricksTarget(host="http://127.0.0.1:9", http_path="/sql/1.0/warehouses/abc", token="dapi-x")
    return DatabricksEngine(target, connect=fake.connect, **kw)


async def test_databricks_names_itself_and_uses_the_users_token(fake: FakeDatabricks) -> None:
    engine = databricks(fake)
    await collect(engine, "SELECT 1")
    service = fake.opened[-1]
    assert service["server_hostname"] == "127.0.0.1:9"
    assert service["user_agent_entry"] == "semproxy" and service["query_tags"] == {"application": "semproxy"}
    assert (
        "access_token" not in service
        and service["credentials_provider"]()()["Authorization"] == "Bearer dapi-x"
    )
    assert [b.num_rows async for b in engine.execute("SELECT 2", token="dapi-user")] == [1]
    assert fake.opened[-1]["access_token"] == "dapi-user"
    assert "dapi" not in repr(engine.target)
    await engine.aclose()


async def test_databricks_timeout_is_57014(fake: FakeDatabricks) -> None:
    engine = databricks(fake, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(QueryCanceled) as caught:
        await collect(engine, LONG["databricks"])
    assert caught.value.sqlstate == "57014" and "timeout" in caught.value.message
    assert time.monotonic() - began < 5
    await engine.aclose()


@pytest.mark.skipif(
    not os.environ.get("DATABRICKS_HOST"), reason="needs a Databricks workspace (DATABRICKS_HOST)"
)
async def test_real_databricks_warehouse() -> None:
    from semproxy.config import Settings
    from semproxy.engines import create_engine

    engine = create_engine(Settings.load({"engine": "databricks"}))
    try:
        table = await collect(engine, "SELECT 1 AS one, current_user() AS who")
        assert table.column("one").to_pylist() == [1]
        assert await engine.list_catalogs()
    finally:
        await engine.aclose()
