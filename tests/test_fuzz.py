"""Random and mutated message streams against a live server (hypothesis, bounded to ~30 s):
the server never dies, a session opened before keeps getting correct answers, and its
memory stays bounded."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semproxy.pg import messages as m
from semproxy.pg.client import encode_frontend
from tests.conftest import RunningServer
from tests.protocol_support import STARTUP, running

BUDGET_S = 25.0
SQL = st.sampled_from(
    [
        "SELECT 1",
        "SELECT MEASURE(order_count) FROM orders",
        "SELECT region, MEASURE(revenue) FROM orders WHERE order_date >= $1 GROUP BY 1",
        "SELECT $1::int",
        "BEGIN",
        "ROLLBACK",
        "SET search_path TO staging",
        "DECLARE c CURSOR WITH HOLD FOR SELECT region, MEASURE(order_count) FROM orders GROUP BY 1",
        "FETCH 2 FROM c",
        "COPY (SELECT MEASURE(order_count) FROM orders) TO STDOUT",
        "SELECT nope FROM orders",
        "",
    ]
)
NAMES = st.sampled_from(["", "s1", "p1"])
VALUES = st.one_of(st.none(), st.binary(max_size=12), st.just(b"2024-01-01"))
MESSAGES = st.one_of(
    st.builds(m.Query, SQL),
    st.builds(m.Parse, NAMES, SQL, st.lists(st.sampled_from([0, 23, 1082, 25]), max_size=2).map(tuple)),
    st.builds(
        m.Bind,
        NAMES,
        NAMES,
        st.lists(st.sampled_from([0, 1]), max_size=2).map(tuple),
        st.lists(VALUES, max_size=2).map(tuple),
        st.lists(st.sampled_from([0, 1]), max_size=3).map(tuple),
    ),
    st.builds(m.Describe, st.sampled_from(["S", "P"]), NAMES),
    st.builds(m.Execute, NAMES, st.integers(0, 3)),
    st.builds(m.Close, st.sampled_from(["S", "P"]), NAMES),
    st.just(m.Sync()),
    st.just(m.Flush()),
    st.builds(m.CopyData, st.binary(max_size=8)),
    st.builds(m.PasswordMessage, st.binary(max_size=8)),
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    data = STARTUP + b"".join(encode_frontend(x) for x in draw(st.lists(MESSAGES, max_size=12)))
    for _ in range(draw(st.integers(0, 4))):  # mutations: flip, cut, insert, forge a length
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        else:
            data = (
                data[:at]
                + draw(st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\0\0\0"]))
                + data[at:]
            )
    return data


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running(tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _feed(server: RunningServer, data: bytes) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # the server sees the end and must finish on its own
            while sock.recv(65536):
                pass
        except (ConnectionError, TimeoutError):
            pass


def test_fuzzed_streams_never_hurt_the_server(fuzz_server: RunningServer) -> None:
    watcher = psycopg.connect(fuzz_server.dsn, autocommit=True)
    expected = watcher.execute(
        "SELECT region, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1"
    ).fetchall()
    for _ in range(20):  # warm up, so the RSS baseline includes caches and the first allocations
        _feed(fuzz_server, STARTUP + encode_frontend(m.Query("SELECT MEASURE(order_count) FROM orders")))
    baseline = _rss_kib(fuzz_server.process.pid)
    started = time.monotonic()
    fed = 0

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(streams())
    def feed(data: bytes) -> None:
        nonlocal fed
        if time.monotonic() - started > BUDGET_S:
            return
        _feed(fuzz_server, data)
        fed += 1
        assert fuzz_server.process.poll() is None, "the server died"
        if fed % 25 == 0:
            got = watcher.execute(
                "SELECT region, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert got == expected

    try:
        feed()
        assert fed >= 50
        assert (
            watcher.execute(
                "SELECT region, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1"
            ).fetchall()
            == expected
        )
        grown = _rss_kib(fuzz_server.process.pid) - baseline
        assert grown < 150_000, f"the server grew by {grown} KiB"
        assert "session failed" not in fuzz_server.logs(), "a session hit an internal error"
    finally:
        watcher.close()
