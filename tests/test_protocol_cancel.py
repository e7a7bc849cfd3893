"""Cancel and statement_timeout against the real server: a metric query that runs for
many seconds (a cross join through a model built here) and a slow catalog query
(pg_sleep) are interrupted with 57014 within a second; a wrong key does nothing; a client
that hangs up mid-query does not keep the engine busy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from semproxy.pg import messages as m
from semproxy.pg.client import encode_frontend
from tests.conftest import RunningServer
from tests.protocol_support import (
    SLOW_QUERY,
    STARTUP,
    cancel_request,
    make_models,
    raw_connect,
    read_messages,
    running,
)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    models = make_models(tmp_path_factory.mktemp("models"))
    with running(tmp_path_factory.mktemp("cancel"), models=models) as server:
        yield server


def _cancel_soon(conn: psycopg.Connection, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, conn.cancel)
    timer.start()
    return timer


@pytest.mark.parametrize("sql", [SLOW_QUERY, "SELECT pg_sleep(30)"], ids=["metric", "catalog"])
def test_psycopg_cancel(slow_server: RunningServer, sql: str) -> None:
    with psycopg.connect(slow_server.dsn, autocommit=True) as conn:
        _cancel_soon(conn, 0.5)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sql)
        assert time.monotonic() - started < 1.5
        assert conn.execute("SELECT MEASURE(staged_orders) IS NULL FROM staging.orders").fetchone() == (
            False,
        )


@pytest.mark.parametrize("sql", [SLOW_QUERY, "SELECT pg_sleep(30)"], ids=["metric", "catalog"])
async def test_asyncpg_timeout_cancels(slow_server: RunningServer, sql: str) -> None:
    conn = await asyncpg.connect(slow_server.dsn)
    try:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await conn.fetch(sql, timeout=0.5)
        assert await conn.fetchval("SELECT 1") == 1  # the cancel was served and the session lives
        assert time.monotonic() - started < 2.0
    finally:
        await conn.close()


def test_wrong_key_does_nothing(slow_server: RunningServer) -> None:
    with raw_connect(slow_server) as sock:
        sock.sendall(STARTUP)
        greeting = read_messages(sock)
        (key_data,) = [x for x in greeting if isinstance(x, m.BackendKeyData)]
        sock.sendall(encode_frontend(m.Query("SELECT pg_sleep(1.5), 'done'")))
        time.sleep(0.3)
        cancel_request(slow_server, key_data.pid, bytes(b ^ 0xFF for b in key_data.key))
        cancel_request(slow_server, key_data.pid + 1, key_data.key)
        got = read_messages(sock)
    assert not any(isinstance(x, m.ErrorResponse) for x in got)
    assert any(isinstance(x, m.DataRow) and x.values[1] == b"done" for x in got)


def test_statement_timeout_applies_to_metric_queries(slow_server: RunningServer) -> None:
    with psycopg.connect(slow_server.dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '300ms'")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute(SLOW_QUERY)
        assert time.monotonic() - started < 1.5
        conn.execute("RESET statement_timeout")
        assert conn.execute("SELECT MEASURE(order_count) > 0 FROM orders").fetchone() == (True,)


def test_hanging_up_mid_query_frees_the_engine(slow_server: RunningServer) -> None:
    # Three clients start the slow query and hang up; if their engine queries kept running,
    # the 2 CPUs would stay busy for tens of seconds and the quick query below would crawl.
    for _ in range(3):
        sock = raw_connect(slow_server)
        sock.sendall(STARTUP)
        read_messages(sock)
        sock.sendall(encode_frontend(m.Query(SLOW_QUERY)))
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()
    time.sleep(1.0)
    with psycopg.connect(slow_server.dsn, autocommit=True) as conn:
        started = time.monotonic()
        for _ in range(5):
            conn.execute("SELECT region, MEASURE(revenue) FROM orders GROUP BY 1").fetchall()
        assert time.monotonic() - started < 3.0
