"""The sans-IO pieces of the session, without a server: SQL cursor statements, settings
read back from the catalog server, authentication exchanges, parameter literals."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from scramp import ScramClient

from semproxy.auth.methods import MD5Exchange, ScramExchange, exchange_for
from semproxy.auth.users import UsersFile, md5_hash
from semproxy.catalog.relay import changes_settings
from semproxy.cursors import (
    CloseCursor,
    Declare,
    Fetch,
    cursor_name,
    head,
    parse_close,
    parse_declare,
    parse_fetch,
)
from semproxy.errors import InvalidPassword
from semproxy.pg import messages as m
from semproxy.pg import types as t
from semproxy.pg.codec import FrontendDecoder
from semproxy.setting_values import parse_duration, parse_search_path
from semproxy.sql import params


def test_declare_forms() -> None:
    q = "SELECT region, MEASURE(revenue) FROM orders GROUP BY 1"
    assert parse_declare(f'declare "SQL_CUR0x1" cursor with hold for {q};') == Declare(
        "SQL_CUR0x1", q, False, True
    )
    assert parse_declare(f"DECLARE c BINARY NO SCROLL CURSOR WITHOUT HOLD FOR {q}") == Declare(
        "c", q, True, False
    )
    assert parse_declare(f"DECLARE Mixed INSENSITIVE CURSOR FOR\n{q}") == Declare("mixed", q, False, False)
    assert parse_declare("DECLARE c CURSOR") is None


def test_fetch_move_close_forms() -> None:
    assert parse_fetch('fetch 100 in "SQL_CUR0x1"') == Fetch("SQL_CUR0x1", 100, False)
    assert parse_fetch("FETCH FORWARD ALL FROM c") == Fetch("c", None, False)
    assert parse_fetch("FETCH c") == Fetch("c", 1, False)
    assert parse_fetch("FETCH NEXT FROM c") == Fetch("c", 1, False)
    assert parse_fetch("MOVE 5 IN c") == Fetch("c", 5, True)
    assert parse_fetch("FETCH PRIOR FROM c") is None and cursor_name("FETCH PRIOR FROM c") == "c"
    assert parse_close("CLOSE ALL") == CloseCursor(None)
    assert parse_close('close "C"') == CloseCursor("C")
    assert head("  set search_path to x") == "SET" and head("") == ""


def test_settings_read_back() -> None:
    assert [parse_duration(x) for x in ("0", "250ms", "5s", "1min", "2h", "1500")] == [
        0,
        0.25,
        5,
        60,
        7200,
        1.5,
    ]
    assert parse_search_path('"$user", public, staging') == ["$user", "public", "staging"]


def test_statements_after_which_settings_are_read_back() -> None:
    for sql in (
        "SET search_path TO staging",
        " reset ALL",
        "DISCARD ALL",
        "COMMIT",
        "end",
        "ROLLBACK TO SAVEPOINT s",
        "RELEASE s",
        "SELECT set_config('search_path', 'public', false)",
        "select PG_CATALOG.SET_CONFIG ('statement_timeout', '5s', true), 1",
    ):
        assert changes_settings(sql), sql
    for sql in ("SELECT 1", "SHOW search_path", "SELECT current_setting('search_path')", "SETTINGS", "BEGIN"):
        assert not changes_settings(sql), sql


def test_buffered_counts_unread_bytes() -> None:
    dec = FrontendDecoder()
    dec.feed(b"\0\0\0\x08\x04\xd2\x16\x2f")
    assert dec.buffered() == 8
    assert isinstance(dec.next_message(), m.SSLRequest) and dec.buffered() == 0


@pytest.fixture
def users(tmp_path: Path) -> UsersFile:
    file = UsersFile(tmp_path / "users")
    file.add("alice", "s3cret")
    return file


def _sasl_initial(first: str) -> bytes:
    return b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first.encode()


async def test_scram_exchange_with_a_real_client(users: UsersFile) -> None:
    exchange = ScramExchange("alice", users)
    assert exchange.first() == m.AuthenticationSASL(("SCRAM-SHA-256",))
    client = ScramClient(["SCRAM-SHA-256"], "alice", "s3cret")
    # (libpq's empty user name, `n=,`, is exercised by psql in test_auth)
    step = await exchange.answer(_sasl_initial(client.get_client_first()))
    assert isinstance(step.message, m.AuthenticationSASLContinue) and not step.done
    client.set_server_first(step.message.data.decode())
    final = await exchange.answer(client.get_client_final().encode())
    assert final.done and isinstance(final.message, m.AuthenticationSASLFinal)


async def test_scram_unknown_user_fails_at_the_same_step(users: UsersFile) -> None:
    exchange = ScramExchange("mallory", users)
    client = ScramClient(["SCRAM-SHA-256"], "mallory", "whatever")
    step = await exchange.answer(_sasl_initial(client.get_client_first()))
    assert isinstance(step.message, m.AuthenticationSASLContinue)  # a decoy salt, no early refusal
    client.set_server_first(step.message.data.decode())
    with pytest.raises(InvalidPassword, match='user "mallory"'):
        await exchange.answer(client.get_client_final().encode())


async def test_md5_exchange(users: UsersFile) -> None:
    exchange = MD5Exchange("alice", users)
    request = exchange.first()
    assert isinstance(request, m.AuthenticationMD5Password) and len(request.salt) == 4
    inner = md5_hash("alice", "s3cret")[3:]
    answer = b"md5" + hashlib.md5(inner.encode() + request.salt).hexdigest().encode() + b"\0"
    assert (await exchange.answer(answer)).done
    with pytest.raises(InvalidPassword):
        await MD5Exchange("alice", users).answer(answer)  # another salt: a replay fails


async def test_cleartext_checks_the_scram_verifier(users: UsersFile) -> None:
    exchange = exchange_for("password", "alice", users, None)
    assert exchange is not None and exchange.first() == m.AuthenticationCleartextPassword()
    assert (await exchange.answer(b"s3cret\0")).done
    with pytest.raises(InvalidPassword):
        await exchange.answer(b"S3CRET\0")
    assert exchange_for("trust", "alice", None, None) is None


def test_pgjdbc_style_dates_and_timestamps_bind_as_postgres_reads_them() -> None:
    assert params._text("2024-01-01 +00", t.DATE).sql() == "CAST('2024-01-01' AS DATE)"
    assert params._text("2024-01-01", t.DATE).sql() == "CAST('2024-01-01' AS DATE)"
    assert (
        params._text("2024-01-01 10:00:00+05:30", t.TIMESTAMP).sql()
        == "CAST('2024-01-01 10:00:00' AS TIMESTAMP)"
    )
    assert params._text("2024-01-01 10:00:00+05:30", t.TIMESTAMPTZ).sql() == (
        "CAST('2024-01-01 10:00:00+05:30' AS TIMESTAMPTZ)"
    )
