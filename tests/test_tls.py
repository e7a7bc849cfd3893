"""TLS: SSLRequest answered 'S' and the connection wrapped with the configured certificate,
'N' without one; GSSENCRequest 'N'; --require-tls refuses plain connections."""

from __future__ import annotations

import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest

from semproxy.pg import messages as m
from tests.conftest import RunningServer
from tests.protocol_support import STARTUP, dsn, make_cert, psql, raw_connect, read_messages, running

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(cert: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    flags = ("--tls-cert", str(cert[0]), "--tls-key", str(cert[1]), "--require-tls")
    with running(tmp_path_factory.mktemp("tls-server"), *flags) as server:
        yield server


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def test_ssl_request_is_answered_s_and_wrapped(tls_server: RunningServer, cert: tuple[Path, Path]) -> None:
    with raw_connect(tls_server) as sock:
        sock.sendall(SSL_REQUEST)
        assert sock.recv(1) == b"S"
        with _client_context().wrap_socket(sock) as tls:
            assert tls.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(cert[0].read_text())
            tls.sendall(STARTUP)
            got = read_messages(tls)  # type: ignore[arg-type]
    assert isinstance(got[0], m.AuthenticationOk) and isinstance(got[-1], m.ReadyForQuery)


def test_psql_with_sslmode_require(tls_server: RunningServer) -> None:
    out = psql(dsn(tls_server, sslmode="require"), "SELECT MEASURE(order_count) > 0 FROM orders")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "t"


def test_require_tls_refuses_plain(tls_server: RunningServer) -> None:
    out = psql(dsn(tls_server, sslmode="disable"), "SELECT 1")
    assert out.returncode != 0
    assert "requires SSL" in out.stderr
    with pytest.raises(psycopg.OperationalError, match="requires SSL"):
        psycopg.connect(dsn(tls_server, sslmode="disable"))


async def test_asyncpg_over_tls(tls_server: RunningServer) -> None:
    conn = await asyncpg.connect(host=tls_server.host, port=tls_server.port, user="tester",
                                 database="semantic", ssl=_client_context())  # fmt: skip
    try:
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
        rows = await conn.fetch("SELECT region, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1")
        assert len(rows) > 2
    finally:
        await conn.close()


def test_gssenc_request_is_refused_then_plain_works(tls_server: RunningServer, server: RunningServer) -> None:
    for target in (tls_server, server):
        with raw_connect(target) as sock:
            sock.sendall(GSSENC_REQUEST)
            assert sock.recv(1) == b"N"


def test_without_a_certificate_ssl_request_is_answered_n(server: RunningServer) -> None:
    with raw_connect(server) as sock:
        sock.sendall(SSL_REQUEST)
        assert sock.recv(1) == b"N"
        sock.sendall(STARTUP)  # the client may go on in plain text
        assert isinstance(read_messages(sock)[-1], m.ReadyForQuery)
    assert psql(dsn(server, sslmode="prefer"), "SELECT 1").stdout.strip() == "1"
    assert psql(dsn(server, sslmode="require"), "SELECT 1").returncode != 0


def test_plaintext_sent_before_the_tls_handshake_ends_the_connection(tls_server: RunningServer) -> None:
    with raw_connect(tls_server) as sock:
        sock.sendall(SSL_REQUEST + STARTUP)  # a man in the middle's injected plaintext
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert b"S" not in data[:1] and data.startswith(b"E") and b"08P01" in data
