"""Limits and malformed input against the real server: a huge length is never allocated,
max connections answers 53300, an idle session is ended, malformed or out-of-order
messages end only their connection with a FATAL ErrorResponse, and a client asking for
protocol 3.2 gets NegotiateProtocolVersion."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import psycopg
import pytest

from semproxy.pg import messages as m
from semproxy.pg.client import encode_frontend
from tests.conftest import RunningServer
from tests.protocol_support import STARTUP, raw_connect, read_messages, running


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "SEMPROXY_MAX_CONNECTIONS": "4",
        "SEMPROXY_IDLE_SESSION_TIMEOUT": "1",
        "SEMPROXY_MAX_MESSAGE": "100000",
    }
    with running(tmp_path_factory.mktemp("limits"), env=env) as server:
        yield server


def _logged_in(server: RunningServer) -> socket.socket:
    sock = raw_connect(server)
    sock.sendall(STARTUP)
    assert isinstance(read_messages(sock)[-1], m.ReadyForQuery)
    return sock


def _fatal(sock: socket.socket, payload: bytes) -> m.ErrorResponse:
    sock.sendall(payload)
    got = read_messages(sock, until=m.ErrorResponse)
    assert got and isinstance(got[-1], m.ErrorResponse), got
    assert sock.recv(1) == b""  # and the connection is closed
    return got[-1]


def _alive(server: RunningServer) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT MEASURE(order_count) > 0 FROM orders").fetchone() == (True,)


def test_huge_length_is_refused_from_its_header(limited: RunningServer) -> None:
    with _logged_in(limited) as sock:
        error = _fatal(sock, b"Q" + struct.pack("!I", 0x7FFFFFF0))  # ~2 GiB announced, not sent
    assert error.fields["S"] == "FATAL" and error.fields["C"] == "08P01"
    with _logged_in(limited) as sock:
        error = _fatal(sock, encode_frontend(m.Query("SELECT '" + "x" * 200_000 + "'")))
    assert "too large" in error.fields["M"]
    _alive(limited)


def test_max_connections_answers_53300(limited: RunningServer) -> None:
    held = [_logged_in(limited) for _ in range(4)]
    try:
        with raw_connect(limited) as sock:
            error = _fatal(sock, STARTUP)
        assert error.fields["C"] == "53300" and error.fields["S"] == "FATAL"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    _alive(limited)


def test_idle_session_is_ended(limited: RunningServer) -> None:
    with _logged_in(limited) as sock:
        time.sleep(1.5)
        got = read_messages(sock, until=m.ErrorResponse)
    assert isinstance(got[-1], m.ErrorResponse) and got[-1].fields["C"] == "57P05"


@pytest.mark.parametrize(
    "payload",
    [
        encode_frontend(m.PasswordMessage(b"late\0")),  # an auth answer nobody asked for
        encode_frontend(m.CopyDone()),  # COPY messages outside COPY
        b"?\0\0\0\4",  # no such message type
        b"Q\0\0\0\2",  # a length below 4
        b"P\0\0\0\x06ab",  # Parse without its terminators
        b"B\0\0\0\x0e\0\0\0\1\0\1\0\1\xff\xff",  # Bind cut short
        encode_frontend(m.StartupMessage(196608, {"user": "x"})),  # a second startup
    ],
    ids=["password", "copydone", "type", "short", "parse", "bind", "startup"],
)
def test_malformed_or_out_of_order_is_fatal_for_that_connection_only(
    server: RunningServer, payload: bytes
) -> None:
    with _logged_in(server) as sock:
        error = _fatal(sock, payload)
    assert error.fields["S"] == "FATAL" and error.fields["V"] == "FATAL" and error.fields["C"] == "08P01"
    _alive(server)


def test_message_before_startup_is_fatal(server: RunningServer) -> None:
    with raw_connect(server) as sock:
        sock.sendall(b"\0\0\0\x08\x00\x02\x00\x00")  # protocol 2.0
        data = sock.recv(4096)
    assert data.startswith(b"E") and b"08P01" in data


def test_protocol_3_2_is_negotiated_down(server: RunningServer) -> None:
    with raw_connect(server) as sock:
        startup = m.StartupMessage(0x30002, {"user": "tester", "_pq_.future_option": "on"})
        sock.sendall(encode_frontend(startup))
        got = read_messages(sock)
    assert got[0] == m.NegotiateProtocolVersion(0, ("_pq_.future_option",))
    assert isinstance(got[1], m.AuthenticationOk) and isinstance(got[-1], m.ReadyForQuery)


def test_empty_query_and_terminate(server: RunningServer) -> None:
    with _logged_in(server) as sock:
        sock.sendall(encode_frontend(m.Query("")))
        assert read_messages(sock) == [m.EmptyQueryResponse(), m.ReadyForQuery("I")]
        sock.sendall(encode_frontend(m.Query(" ; ")))
        assert read_messages(sock) == [m.EmptyQueryResponse(), m.ReadyForQuery("I")]
        sock.sendall(encode_frontend(m.Terminate()))
        assert sock.recv(1) == b""
