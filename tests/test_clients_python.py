"""Python clients beyond the driver basics of test_protocol_drivers: an asyncpg pool (its
reset query runs at each release) with a cursor in a transaction, a psycopg 3 named cursor
WITH HOLD outside a transaction, and pg8000 (the pure-Python driver) with named parameters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pg8000.native
import psycopg

from tests.clients.support import truth
from tests.conftest import RunningServer

BY_CHANNEL = (
    "SELECT channel, MEASURE(revenue) AS revenue FROM orders WHERE order_date >= $1 GROUP BY 1 ORDER BY 1"
)
BY_CHANNEL_TRUTH = (
    "SELECT channel, sum(amount) FROM main.orders WHERE order_date >= DATE '2024-01-01' GROUP BY 1 ORDER BY 1"
)


async def test_asyncpg_pool_reset_and_cursor_in_a_transaction(server: RunningServer) -> None:
    expected = truth(server, BY_CHANNEL_TRUTH)
    pool = await asyncpg.create_pool(server.dsn, min_size=2, max_size=2)
    try:
        for _ in range(3):  # each release runs the pool's reset query (pg_advisory_unlock_all, UNLISTEN *...)
            async with pool.acquire() as conn:
                await conn.execute("SET application_name = 'pooled'")
                rows = await conn.fetch(BY_CHANNEL, dt.date(2024, 1, 1))
                assert [tuple(r) for r in rows] == expected
        async with pool.acquire() as conn:
            # the reset query ran RESET ALL: the setting of the last holder is gone
            assert await conn.fetchval("SHOW application_name") != "pooled"
            async with conn.transaction():
                cursor = await conn.cursor(BY_CHANNEL, dt.date(2024, 1, 1))
                first = await cursor.fetch(2)
                await cursor.forward(1)
                rest = await cursor.fetch(100)
            assert [tuple(r) for r in first + rest] == expected[:2] + expected[3:]
            assert isinstance(first[0]["revenue"], Decimal)
    finally:
        await pool.close()


def test_psycopg_named_cursor_with_hold_outside_a_transaction(server: RunningServer) -> None:
    expected = truth(server, BY_CHANNEL_TRUTH)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with conn.cursor(name="held", withhold=True) as cur:  # DECLARE "held" CURSOR WITH HOLD FOR ...
            cur.itersize = 2
            cur.execute(BY_CHANNEL.replace("$1", "%s"), (dt.date(2024, 1, 1),))
            assert [d.name for d in cur.description or []] == ["channel", "revenue"]
            assert cur.fetchone() == expected[0]
            assert list(cur) == expected[1:]
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pg8000_named_parameters(server: RunningServer) -> None:
    conn = pg8000.native.Connection("tester", host=server.host, port=server.port, database="semantic")
    try:
        rows = conn.run(
            "SELECT channel, MEASURE(revenue) AS revenue FROM orders WHERE order_date >= :since GROUP BY 1 ORDER BY 1",
            since=dt.date(2024, 1, 1),
        )
        assert [tuple(r) for r in rows] == truth(server, BY_CHANNEL_TRUTH)
        assert [c["name"] for c in conn.columns or []] == ["channel", "revenue"]
        try:
            conn.run("SELECT MEASURE(revenue) FROM nowhere")
            raise AssertionError("an unknown table must be an error")
        except pg8000.native.DatabaseError as exc:
            assert exc.args[0]["C"] == "42P01"
        assert conn.run("SELECT 1") == [[1]]
    finally:
        conn.close()
