"""Authentication against the real server: scram-sha-256 (the default with a users file),
md5 and password (cleartext, over TLS), from psql and asyncpg, good and bad passwords;
the users file holds no password; nothing is answered before authentication completes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from semproxy.pg import messages as m
from semproxy.pg.client import encode_frontend
from tests.conftest import RunningServer
from tests.protocol_support import (
    PASSWORD,
    STARTUP,
    add_user,
    dsn,
    make_cert,
    psql,
    raw_connect,
    read_messages,
    running,
)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("auth")
    add_user(directory / "users", "alice")
    add_user(directory / "users", "bob", "another one")
    make_cert(directory)
    return directory


def _tls_flags(directory: Path) -> tuple[str, ...]:
    return ("--tls-cert", str(directory / "server.crt"), "--tls-key", str(directory / "server.key"))


@pytest.fixture(scope="module")
def scram_server(secrets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    flags = ("--users", str(secrets_dir / "users"), *_tls_flags(secrets_dir))
    with running(tmp_path_factory.mktemp("scram"), *flags) as server:
        yield server


@pytest.fixture(scope="module")
def md5_server(secrets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running(
        tmp_path_factory.mktemp("md5"), "--auth", "md5", "--users", str(secrets_dir / "users")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def password_server(secrets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    flags = ("--auth", "password", "--users", str(secrets_dir / "users"), *_tls_flags(secrets_dir))
    with running(tmp_path_factory.mktemp("password"), *flags) as server:
        yield server


def test_users_file_holds_hashes_only(secrets_dir: Path) -> None:
    text = (secrets_dir / "users").read_text()
    assert PASSWORD not in text and "another one" not in text
    alice = next(line for line in text.splitlines() if line.startswith("alice "))
    name, scram, md5 = alice.split()
    assert scram.startswith("SCRAM-SHA-256$4096:") and md5.startswith("md5") and len(md5) == 35
    assert (secrets_dir / "users").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("sslmode", ["disable", "require"])
def test_scram_from_psql(scram_server: RunningServer, sslmode: str) -> None:
    good = psql(
        dsn(scram_server, "alice", PASSWORD, sslmode=sslmode), "SELECT MEASURE(order_count) > 0 FROM orders"
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "t"
    bad = psql(dsn(scram_server, "alice", "wrong", sslmode=sslmode), "SELECT 1")
    assert bad.returncode != 0
    assert 'FATAL:  password authentication failed for user "alice"' in bad.stderr


def test_unknown_user_fails_exactly_like_a_wrong_password(scram_server: RunningServer) -> None:
    wrong = psql(dsn(scram_server, "alice", "wrong"), "SELECT 1").stderr
    unknown = psql(dsn(scram_server, "mallory", "wrong"), "SELECT 1").stderr
    assert unknown.replace("mallory", "alice") == wrong


async def test_scram_from_asyncpg(scram_server: RunningServer) -> None:
    conn = await asyncpg.connect(host=scram_server.host, port=scram_server.port, user="bob",
                                 password="another one", database="semantic", ssl=False)  # fmt: skip
    try:
        assert await conn.fetchval("SELECT MEASURE(order_count) FROM orders") > 0
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError) as info:
        await asyncpg.connect(host=scram_server.host, port=scram_server.port, user="bob",
                              password=PASSWORD, database="semantic", ssl=False)  # fmt: skip
    assert info.value.sqlstate == "28P01"
    assert info.value.detail is None and info.value.hint is None  # nothing more is revealed


def test_md5_from_psql(md5_server: RunningServer) -> None:
    assert psql(dsn(md5_server, "alice", PASSWORD), "SELECT 1").stdout.strip() == "1"
    bad = psql(dsn(md5_server, "alice", "wrong"), "SELECT 1")
    assert 'password authentication failed for user "alice"' in bad.stderr


async def test_md5_from_asyncpg(md5_server: RunningServer) -> None:
    conn = await asyncpg.connect(host=md5_server.host, port=md5_server.port, user="alice",
                                 password=PASSWORD, database="semantic", ssl=False)  # fmt: skip
    assert await conn.fetchval("SELECT 2") == 2
    await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host=md5_server.host, port=md5_server.port, user="alice",
                              password="wrong", database="semantic", ssl=False)  # fmt: skip


def test_password_over_tls_from_psql(password_server: RunningServer) -> None:
    good = psql(dsn(password_server, "alice", PASSWORD, sslmode="require"), "SELECT 1")
    assert good.returncode == 0, good.stderr
    bad = psql(dsn(password_server, "alice", "wrong", sslmode="require"), "SELECT 1")
    assert 'password authentication failed for user "alice"' in bad.stderr


async def test_password_over_tls_from_asyncpg(password_server: RunningServer) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    conn = await asyncpg.connect(host=password_server.host, port=password_server.port, user="alice",
                                 password=PASSWORD, database="semantic", ssl=context)  # fmt: skip
    assert await conn.fetchval("SELECT MEASURE(order_count) > 0 FROM orders") is True
    await conn.close()


def test_no_query_is_answered_before_authentication(scram_server: RunningServer) -> None:
    with raw_connect(scram_server) as sock:
        sock.sendall(STARTUP + encode_frontend(m.Query("SELECT 1")))
        got = read_messages(sock, until=m.ErrorResponse)
    assert isinstance(got[0], m.AuthenticationSASL)
    error = got[-1]
    assert isinstance(error, m.ErrorResponse)
    assert error.fields["S"] == "FATAL" and error.fields["C"] == "08P01"
    assert not any(isinstance(x, m.RowDescription | m.DataRow | m.AuthenticationOk) for x in got)


def test_trust_server_never_asks(server: RunningServer) -> None:
    with raw_connect(server) as sock:
        sock.sendall(STARTUP)
        got = read_messages(sock)
    assert isinstance(got[0], m.AuthenticationOk) and isinstance(got[-1], m.ReadyForQuery)


def test_a_user_added_while_serving_can_log_in(scram_server: RunningServer, secrets_dir: Path) -> None:
    assert psql(dsn(scram_server, "carol", "fresh"), "SELECT 1").returncode != 0
    add_user(secrets_dir / "users", "carol", "fresh")
    assert psql(dsn(scram_server, "carol", "fresh"), "SELECT 1").stdout.strip() == "1"


def test_bad_auth_settings_refuse_to_start(tmp_path: Path) -> None:
    from semproxy.config import Settings
    from semproxy.errors import ConfigError

    with pytest.raises(ConfigError, match="users file"):
        Settings.load({"auth": "md5"}, env={})
    with pytest.raises(ConfigError, match="both"):
        Settings.load({"tls_cert": "x.pem"}, env={})
    with pytest.raises(ConfigError, match="require-tls"):
        Settings.load({"require_tls": True}, env={})
    assert Settings.load({"users": str(tmp_path / "u")}, env={}).auth_method == "scram-sha-256"


async def test_many_concurrent_logins(scram_server: RunningServer) -> None:
    async def one() -> int:
        conn = await asyncpg.connect(host=scram_server.host, port=scram_server.port, user="alice",
                                     password=PASSWORD, database="semantic", ssl=False)  # fmt: skip
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert list(await asyncio.gather(*(one() for _ in range(20)))) == [1] * 20
