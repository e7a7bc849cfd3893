"""The catalog server, its sync and the per-session relay, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import psutil
import pytest
import pytest_asyncio

from semproxy.catalog.relay import CatalogConnection, CatalogRefused, parse_fields
from semproxy.catalog.server import CatalogEndpoint, CatalogServer
from semproxy.catalog.sync import ColumnSpec, TableSpec, sync_catalog
from semproxy.pg.framing import frame

ORDERS = TableSpec(
    "production",
    "orders",
    "One row per order",
    (
        ColumnSpec("region", "text", "Sales region"),
        ColumnSpec("order_date", "date", None),
        ColumnSpec("revenue", "numeric(12,2)", "Revenue, it's \\net"),
        ColumnSpec("order_count", "bigint", None),
    ),
)
CUSTOMERS = TableSpec("production", "customers", None, (ColumnSpec("customer", "bigint", "Key"),))
EVENTS = TableSpec(
    "staging",
    "events",
    "Raw events",
    (
        ColumnSpec("event_time", "timestamp without time zone", None),
        ColumnSpec("ratio", "double precision", "A ratio"),
    ),
)


@contextmanager
def _private_dir() -> Iterator[Path]:
    # not under pytest's tmp_path: as root the server runs as another user that must
    # traverse the path, and every pytest session (ours or a colleague's, at the same time)
    # makes /tmp/pytest-of-root private again
    path = Path(tempfile.mkdtemp(prefix="semproxy-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    with _private_dir() as path:
        yield path


@pytest_asyncio.fixture(scope="session")
async def catalog() -> AsyncIterator[CatalogServer]:
    with _private_dir() as path:
        server = await CatalogServer.start(path)
        yield server
        await server.stop()


async def _admin(server: CatalogServer) -> asyncpg.Connection:
    return await server.connect_admin()


async def _session(ep: CatalogEndpoint) -> asyncpg.Connection:
    return await asyncpg.connect(host=ep.host, port=ep.port, user=ep.user, database=ep.database)


async def _frames(conn: CatalogConnection, sql: str) -> list[tuple[bytes, bytes]]:
    return [f async for f in conn.simple_query(sql)]


async def _wait_until_running(server: CatalogServer, pid: int) -> None:
    admin = await server.connect_admin()
    try:
        query = "SELECT wait_event FROM pg_stat_activity WHERE pid = $1"
        while await admin.fetchval(query, pid) != "PgSleep":
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


def _postmaster_pid(state: Path) -> int:
    return int((state / "catalog-pg" / "postmaster.pid").read_text().split()[0])


async def test_start_cold_warm_adopted_and_after_kill(state_dir: Path) -> None:
    server = await CatalogServer.start(state_dir)
    assert server.version.split(".")[0] == "18"
    assert len(server.endpoint.host) < 100
    await server.stop()

    began = time.monotonic()
    server = await CatalogServer.start(state_dir)
    assert time.monotonic() - began < 3

    # a semproxy that died without stopping it: the next start adopts the running server
    running = _postmaster_pid(state_dir)
    adopted = await CatalogServer.start(state_dir)
    assert _postmaster_pid(state_dir) == running

    # a killed postmaster leaves postmaster.pid and a backend behind
    backend = await adopted.connect_admin()
    killed = _postmaster_pid(state_dir)
    os.kill(killed, signal.SIGKILL)
    psutil.Process(killed).wait(timeout=5)
    backend.terminate()
    server = await CatalogServer.start(state_dir)
    conn = await _session(server.endpoint)
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
    await server.stop()
    assert not (state_dir / "catalog-pg" / "postmaster.pid").exists()


async def test_socket_of_a_long_state_dir_goes_to_a_short_directory(state_dir: Path) -> None:
    deep = state_dir / ("x" * 60) / ("y" * 60)
    server = await CatalogServer.start(deep)
    try:
        assert len(server.endpoint.host) < 60
        conn = await _session(server.endpoint)
        assert await conn.fetchval("SELECT current_user") == "semproxy"
        await conn.close()
    finally:
        await server.stop()
    assert not Path(server.endpoint.host).exists()


async def test_sync_then_resync(catalog: CatalogServer) -> None:
    await sync_catalog(catalog, [ORDERS, CUSTOMERS, EVENTS], ["production", "staging"])
    grown = TableSpec(
        EVENTS.schema, EVENTS.name, EVENTS.comment, (*EVENTS.columns, ColumnSpec("n", "integer", "new"))
    )
    await sync_catalog(catalog, [ORDERS, grown], ["production", "staging"])
    await sync_catalog(catalog, [ORDERS, grown], ["production", "staging"])  # idempotent

    conn = await _admin(catalog)
    try:
        tables = await conn.fetch(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('production', 'staging') ORDER BY 1, 2"
        )
        assert [tuple(t) for t in tables] == [("production", "orders", "r"), ("staging", "events", "r")]
        columns = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod), col_description(attrelid, attnum)"
            " FROM pg_attribute WHERE attrelid = 'staging.events'::regclass AND attnum > 0 ORDER BY attnum"
        )
        assert [tuple(c) for c in columns] == [
            ("event_time", "timestamp without time zone", None),
            ("ratio", "double precision", "A ratio"),
            ("n", "integer", "new"),
        ]
        assert await conn.fetchval("SELECT obj_description('production.orders'::regclass, 'pg_class')") == (
            "One row per order"
        )
        revenue = await conn.fetchrow(
            "SELECT format_type(atttypid, atttypmod) AS type, col_description(attrelid, attnum) AS comment"
            " FROM pg_attribute WHERE attrelid = 'production.orders'::regclass AND attname = 'revenue'"
        )
        assert tuple(revenue) == ("numeric(12,2)", "Revenue, it's \\net")

        # a category that is gone takes its tables with it
        await sync_catalog(catalog, [ORDERS], ["production"])
        assert await conn.fetchval("SELECT to_regnamespace('staging')") is None
    finally:
        await conn.close()


async def test_sync_quotes_names(catalog: CatalogServer) -> None:
    odd = TableSpec("production", 'We"ird; DROP', "x", (ColumnSpec("Mixed Case", "text", "it's"),))
    await sync_catalog(catalog, [odd], ["production"])
    conn = await _session(catalog.endpoint)
    try:
        row = await conn.fetchrow(
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1"
            " WHERE c.relnamespace = 'production'::regnamespace"
        )
        assert tuple(row) == ('We"ird; DROP', "Mixed Case", "it's")
    finally:
        await conn.close()


async def test_failed_sync_keeps_the_old_catalog(catalog: CatalogServer) -> None:
    await sync_catalog(catalog, [ORDERS, CUSTOMERS], ["production"])
    broken = TableSpec(
        "production", "broken", None, (ColumnSpec("a", "text", None), ColumnSpec("a", "text", None))
    )
    with pytest.raises(asyncpg.DuplicateColumnError):
        await sync_catalog(catalog, [ORDERS, broken], ["production"])
    conn = await _session(catalog.endpoint)
    try:
        names = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'production' ORDER BY 1")
        assert [n[0] for n in names] == ["customers", "orders"]
    finally:
        await conn.close()


async def test_session_role_reads_and_makes_temp_objects_only(catalog: CatalogServer) -> None:
    await sync_catalog(catalog, [ORDERS], ["production"])
    conn = await _session(catalog.endpoint)
    try:
        assert await conn.fetchval("SHOW search_path") == "production"
        # what psql's \dt asks
        listed = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
            " LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog'"
            " AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema'"
            " AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1, 2"
        )
        assert [tuple(r) for r in listed] == [("production", "orders")]
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        for statement in (
            "CREATE TABLE public.t (a int)",
            "CREATE TABLE production.t (a int)",
            "CREATE SCHEMA mine",
            "SELECT pg_read_file('/etc/passwd')",
            "COPY (SELECT 1) TO PROGRAM 'true'",
            "DROP TABLE production.orders",
            "INSERT INTO orders (region) VALUES ('x')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        await conn.execute("CREATE TEMP TABLE probe (a int)")
        await conn.execute("INSERT INTO probe VALUES (1)")
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    finally:
        await conn.close()


async def test_relay_frames(catalog: CatalogServer) -> None:
    conn = await CatalogConnection.open(
        catalog.endpoint,
        {"user": "alice", "database": "anything", "application_name": "psql", "DateStyle": "ISO, DMY"},
    )
    try:
        assert conn.parameters["server_version"].startswith("18")
        assert conn.parameters["application_name"] == "psql"
        assert conn.parameters["DateStyle"] == "ISO, DMY"
        assert conn.backend_pid > 0 and len(conn.backend_key) == 4
        frames = await _frames(conn, "SELECT 1 AS a; SELECT version()")
        assert [t for t, _ in frames] == [b"T", b"D", b"C", b"T", b"D", b"C", b"Z"]
        assert frames[2][1] == b"SELECT 1\0" and b"PostgreSQL 18" in frames[4][1]

        error = await _frames(conn, "SELECT nope")
        assert [t for t, _ in error] == [b"E", b"Z"]
        assert parse_fields(error[0][1])["C"] == "42703"
        assert [t for t, _ in await _frames(conn, "")] == [b"I", b"Z"]

        frames = await _frames(conn, "SET TimeZone = 'Asia/Tokyo'")
        assert (b"S", b"TimeZone\0Asia/Tokyo\0") in frames
        assert conn.parameters["TimeZone"] == "Asia/Tokyo"

        statuses = []
        for sql in ("BEGIN", "SELECT 1/0", "SELECT 1", "ROLLBACK"):
            await _frames(conn, sql)
            statuses.append(conn.transaction_status)
        assert statuses == ["T", "E", "E", "I"]
    finally:
        await conn.close()
        await conn.close()


async def test_relay_extended_protocol_and_cancel(catalog: CatalogServer) -> None:
    conn = await CatalogConnection.open(catalog.endpoint, {})
    try:
        # Parse, Bind, Execute, Sync pipelined with a second Sync: the second Z stays buffered
        await conn.send_raw(
            frame(b"P", b"\0SELECT 42\0" + struct.pack("!H", 0))
            + frame(b"B", b"\0\0" + struct.pack("!HHH", 0, 0, 0))
            + frame(b"E", b"\0" + struct.pack("!I", 0))
            + frame(b"S")
            + frame(b"S")
        )
        first = [t async for t, _ in conn.read_until({b"Z"})]
        assert first == [b"1", b"2", b"D", b"C", b"Z"]
        assert [t async for t, _ in conn.read_until({b"Z"})] == [b"Z"]

        await conn.send_raw(frame(b"Q", b"SELECT pg_sleep(30)\0"))
        began = time.monotonic()
        await _wait_until_running(catalog, conn.backend_pid)  # a cancel before it runs is ignored
        await conn.cancel()
        frames = [f async for f in conn.read_until({b"Z"})]
        assert time.monotonic() - began < 5
        assert parse_fields(next(p for t, p in frames if t == b"E"))["C"] == "57014"
    finally:
        await conn.close()


async def test_relay_refused_login(catalog: CatalogServer) -> None:
    ep = catalog.endpoint
    nowhere = CatalogEndpoint(ep.host, ep.port, ep.user, "no_such_db", ep.admin_user)
    with pytest.raises(CatalogRefused) as refused:
        await CatalogConnection.open(nowhere, {})
    assert refused.value.sqlstate == "3D000"


async def test_connect_existing(catalog: CatalogServer) -> None:
    ep = catalog.endpoint
    existing = await CatalogServer.connect_existing(
        f"postgresql://{ep.admin_user}@/{ep.database}?host={ep.host}"
    )
    assert existing.endpoint == ep
    assert existing.version == catalog.version
    await sync_catalog(existing, [ORDERS], ["production"])
    conn = await CatalogConnection.open(existing.endpoint, {})
    try:
        frames = await _frames(conn, "SELECT count(*) FROM orders")
        assert [t for t, _ in frames] == [b"T", b"D", b"C", b"Z"]
    finally:
        await conn.close()
    await existing.stop()  # forgets it; the server keeps running
    assert await (await _session(ep)).fetchval("SELECT 1") == 1
