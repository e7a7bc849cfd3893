"""An engine that is down: the server starts at once, keeps serving catalog queries, says
08006 for metric queries and 503 from /api/health/ready; when the warehouse comes back,
the catalog's guessed column types are replaced by the warehouse's.

The real server process runs `--engine postgres` with a DSN on a closed loopback port.
The warehouse "comes back" as a TCP forwarder on that port to an embedded PostgreSQL
holding the demo tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from semproxy.catalog.server import ADMIN_ROLE, CatalogServer
from tests.conftest import RunningServer, free_port, start_server, stop_server
from tests.engine_fixtures import start_postgres_warehouse
from tests.protocol_support import dsn, psql

TYPES_OF_ORDERS = (
    "SELECT column_name, data_type FROM information_schema.columns"
    " WHERE table_schema = 'production' AND table_name = 'orders'"
)


class Outage:
    def __init__(self, server: RunningServer, port: int, started_in: float) -> None:
        self.server, self.port, self.started_in = server, port, started_in


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Iterator[Outage]:
    port = free_port()  # nothing listens here until the warehouse comes back
    began = time.monotonic()
    server = start_server(
        tmp_path_factory.mktemp("outage"), "--engine", "postgres",
        "--database", f"postgresql://{ADMIN_ROLE}@127.0.0.1:{port}/warehouse",
    )  # fmt: skip
    try:
        yield Outage(server, port, time.monotonic() - began)
    finally:
        stop_server(server)


async def column_types(server: RunningServer) -> dict[str, str]:
    conn = await asyncpg.connect(dsn=server.dsn, ssl=False)
    try:
        return {r["column_name"]: r["data_type"] for r in await conn.fetch(TYPES_OF_ORDERS)}
    finally:
        await conn.close()


async def ready(server: RunningServer) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{server.http_port}/api/health/ready", timeout=30)


async def test_a_server_with_its_engine_down_serves_the_catalog(outage: Outage) -> None:
    server = outage.server
    assert outage.started_in < 15, f"startup took {outage.started_in:.1f} s"
    assert "column types are guessed until a reload" in server.logs()

    out = await asyncio.to_thread(psql, dsn(server), "SELECT 1", "\\dt production.*")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "1" and any("|orders|table|" in line for line in lines)
    types = await column_types(server)
    assert types["order_count"] == "numeric" and types["region"] == "text"  # guessed by kind

    conn = await asyncpg.connect(dsn=server.dsn, ssl=False)
    try:
        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.fetchval("SELECT MEASURE(order_count) FROM orders")
        assert caught.value.sqlstate == "08006"
        assert "the PostgreSQL warehouse is unreachable" in caught.value.args[0]
        assert await conn.fetchval("SELECT 2") == 2  # the session goes on
    finally:
        await conn.close()
    out = await asyncio.to_thread(psql, dsn(server), "SELECT MEASURE(revenue) FROM orders")
    assert out.returncode != 0 and "ERROR:  the PostgreSQL warehouse is unreachable" in out.stderr

    answer = await ready(server)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["engine"]["status"] == "error" and "unreachable" in checks["engine"]["detail"]
    assert checks["catalog"]["status"] == "ok" and checks["models"]["status"] == "ok"


async def forward(port: int, socket_path: str) -> asyncio.Server:
    """127.0.0.1:port -> a unix socket, byte for byte."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    return await asyncio.start_server(handle, "127.0.0.1", port)


@pytest.fixture
async def warehouse_back(outage: Outage, demo_db: Path) -> AsyncIterator[None]:
    directory = Path(tempfile.mkdtemp(prefix="semproxy-warehouse-"))
    warehouse: CatalogServer = await start_postgres_warehouse(directory, demo_db)
    ep = warehouse.endpoint
    forwarder = await forward(outage.port, f"{ep.host}/.s.PGSQL.{ep.port}")
    try:
        yield
    finally:
        forwarder.close()
        await warehouse.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_when_the_engine_comes_back_the_catalog_is_typed(outage: Outage, warehouse_back: None) -> None:
    server = outage.server
    deadline = time.monotonic() + 30
    while (types := await column_types(server))["order_count"] == "numeric" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert types["order_count"] == "bigint" and types["region"] in ("text", "character varying")
    conn = await asyncpg.connect(dsn=server.dsn, ssl=False)
    try:
        assert await conn.fetchval("SELECT MEASURE(order_count) FROM orders") > 0
    finally:
        await conn.close()
    assert (await ready(server)).status_code == 200
