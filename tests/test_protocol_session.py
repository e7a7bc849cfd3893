"""One coherent session against the real server: transaction states I/T/E and 25P02 until
ROLLBACK, SET/SHOW/RESET with ParameterStatus, search_path changing metric resolution,
TimeZone in results, COPY (metric query) TO STDOUT, SQL cursors over metric queries,
notices and the fields of errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from tests.conftest import RunningServer
from tests.protocol_support import make_models, psql, running

Status = TransactionStatus


@pytest.fixture(scope="module")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    models = make_models(tmp_path_factory.mktemp("models"))
    with running(tmp_path_factory.mktemp("session"), models=models) as server:
        yield server


def connect(server: RunningServer) -> psycopg.Connection:
    return psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor)


def order_count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT MEASURE(order_count) FROM orders").fetchone()
    assert row is not None
    return int(row[0])


def test_transaction_states_and_25p02_until_rollback(models_server: RunningServer) -> None:
    with connect(models_server) as conn:
        assert conn.info.transaction_status == Status.IDLE
        conn.execute("BEGIN")
        assert conn.info.transaction_status == Status.INTRANS
        conn.execute("SAVEPOINT before")
        assert order_count(conn) > 0
        with pytest.raises(psycopg.errors.GroupingError):
            conn.execute("SELECT MEASURE(no_such_metric) FROM orders")
        assert conn.info.transaction_status == Status.INERROR
        for sql in ("SELECT MEASURE(order_count) FROM orders", "SELECT 1"):
            with pytest.raises(psycopg.errors.InFailedSqlTransaction):
                conn.execute(sql)
        conn.execute("ROLLBACK TO SAVEPOINT before")
        assert conn.info.transaction_status == Status.INTRANS
        assert order_count(conn) > 0
        conn.execute("ROLLBACK")
        assert conn.info.transaction_status == Status.IDLE
        conn.execute("START TRANSACTION READ ONLY")
        conn.execute("COMMIT")
        assert conn.info.transaction_status == Status.IDLE


def test_set_search_path_changes_metric_resolution(models_server: RunningServer) -> None:
    with connect(models_server) as conn:
        with pytest.raises(psycopg.errors.GroupingError):
            conn.execute("SELECT MEASURE(staged_orders) FROM orders")
        conn.execute("SET search_path TO staging")
        staged = conn.execute("SELECT MEASURE(staged_orders) FROM orders").fetchone()
        assert staged is not None and staged[0] > 0
        assert conn.execute("SHOW search_path").fetchone() == ("staging",)
        conn.execute("RESET search_path")
        assert order_count(conn) == staged[0]
        conn.execute("BEGIN")
        conn.execute("SET LOCAL search_path TO staging")
        assert conn.execute("SELECT MEASURE(staged_orders) FROM orders").fetchone() == staged
        conn.execute("COMMIT")  # SET LOCAL ends with the transaction
        with pytest.raises(psycopg.errors.GroupingError):
            conn.execute("SELECT MEASURE(staged_orders) FROM orders")


def test_set_config_changes_metric_resolution(models_server: RunningServer) -> None:
    """set_config() runs on the catalog server; our copy of search_path follows it."""
    with connect(models_server) as conn:  # the simple protocol
        conn.execute("SELECT set_config('search_path', 'staging', false)")
        staged = conn.execute("SELECT MEASURE(staged_orders) FROM orders").fetchone()
        assert staged is not None and staged[0] > 0
        conn.execute("SELECT set_config('search_path', 'production', false)")
        with pytest.raises(psycopg.errors.GroupingError):
            conn.execute("SELECT MEASURE(staged_orders) FROM orders")
    with psycopg.connect(models_server.dsn, autocommit=True) as conn:
        # the extended protocol, prepared once: later runs are Bind/Execute without a Parse
        for path in ("staging", "production", "staging"):
            conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (path,), prepare=True)
            if path == "staging":
                assert conn.execute("SELECT MEASURE(staged_orders) FROM orders").fetchone() == staged
            else:
                with pytest.raises(psycopg.errors.GroupingError):
                    conn.execute("SELECT MEASURE(staged_orders) FROM orders")


def test_set_reports_parameter_status_and_timezone_shapes_results(models_server: RunningServer) -> None:
    with connect(models_server) as conn:
        conn.execute("SET application_name = 'protocol-test'")
        assert conn.info.parameter_status("application_name") == "protocol-test"
        conn.execute("SET TimeZone = 'Asia/Kolkata'")
        assert conn.info.parameter_status("TimeZone") == "Asia/Kolkata"
        assert conn.execute("SHOW TimeZone").fetchone() == ("Asia/Kolkata",)
        conn.execute("SET extra_float_digits = 3")
        assert conn.execute("SHOW extra_float_digits").fetchone() == ("3",)
        conn.execute("SET DateStyle = 'ISO, DMY'")
        conn.execute("RESET ALL")
        assert conn.info.parameter_status("application_name") == ""


def test_timestamptz_text_follows_the_session_timezone(models_server: RunningServer) -> None:
    sql = "SELECT CAST(DATE_TRUNC('month', MIN(order_date)) AS timestamptz) FROM orders"
    with psycopg.connect(models_server.dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        utc = conn.execute(sql).fetchone()
        conn.execute("SET TimeZone = 'America/New_York'")
        ny = conn.execute(sql).fetchone()
    if utc is None or ny is None or not isinstance(utc[0], dt.datetime):
        pytest.fail(f"no timestamptz came back: {utc!r}")
    assert utc[0] == ny[0]  # the same instant...
    assert utc[0].utcoffset() != ny[0].utcoffset()  # ...printed in the session's zone


def test_copy_metric_query_to_stdout_text_and_csv(models_server: RunningServer) -> None:
    query = "SELECT region, MEASURE(order_count) AS n FROM orders GROUP BY 1 ORDER BY 1 NULLS LAST"
    with connect(models_server) as conn:
        expected = conn.execute(query).fetchall()
        with conn.cursor().copy(f"COPY ({query}) TO STDOUT") as copy:
            text = b"".join(bytes(chunk) for chunk in copy).decode()
        with conn.cursor().copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            csv = b"".join(bytes(chunk) for chunk in copy).decode()
    as_text = ["\t".join((r"\N" if r is None else r, str(n))) for r, n in expected]
    assert text.splitlines() == as_text
    lines = csv.splitlines()
    assert lines[0] == "region,n"
    assert lines[1:] == [f"{'' if r is None else r},{n}" for r, n in expected]
    out = psql(models_server.dsn, f"COPY ({query}) TO STDOUT CSV")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == lines[1:]


def test_declare_fetch_close_over_a_metric_query(models_server: RunningServer) -> None:
    query = "SELECT status, region, MEASURE(order_count) FROM orders GROUP BY 1, 2 ORDER BY 1, 2"
    with connect(models_server) as conn:
        expected = conn.execute(query).fetchall()
        assert len(expected) > 6
        cur = conn.cursor()
        # psqlODBC's declare/fetch mode sends these as one message
        cur.execute(f'BEGIN;DECLARE "SQL_CUR1" CURSOR FOR {query};FETCH 4 IN "SQL_CUR1"')
        assert cur.statusmessage == "BEGIN"
        assert cur.nextset() and cur.statusmessage == "DECLARE CURSOR"
        assert cur.nextset() and cur.statusmessage == "FETCH 4"
        got = cur.fetchall()
        assert conn.info.transaction_status == Status.INTRANS
        cur.execute('FETCH FORWARD 2 FROM "SQL_CUR1"')
        got += cur.fetchall()
        cur.execute('MOVE 1 IN "SQL_CUR1"')
        assert cur.statusmessage == "MOVE 1"
        cur.execute('FETCH ALL IN "SQL_CUR1"')
        rest = cur.fetchall()
        assert got == expected[:6] and rest == expected[7:]
        cur.execute('CLOSE "SQL_CUR1"')
        with pytest.raises(psycopg.errors.InvalidCursorName):
            cur.execute('FETCH 1 IN "SQL_CUR1"')
        conn.execute("ROLLBACK")


def test_cursor_with_hold_binary_and_the_transaction_rule(models_server: RunningServer) -> None:
    query = "SELECT region, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1"
    with connect(models_server) as conn:
        expected = conn.execute(query).fetchall()
        with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
            conn.execute(f"DECLARE c CURSOR FOR {query}")
        conn.execute(f"DECLARE held BINARY CURSOR WITH HOLD FOR {query}")
        raw = conn.pgconn.exec_(b"FETCH 2 FROM held")
        assert raw.fformat(0) == 1 and raw.ntuples == 2  # binary cells
        assert conn.execute("FETCH ALL FROM held").fetchall()[-1][1] == expected[-1][1]
        conn.execute("CLOSE held")
        conn.execute("BEGIN")
        conn.execute(f"DECLARE c CURSOR FOR {query}")
        conn.execute("COMMIT")  # a cursor without HOLD ends with its transaction
        with pytest.raises(psycopg.errors.InvalidCursorName):
            conn.execute("FETCH 1 FROM c")


def test_notices_from_the_catalog_server_arrive(models_server: RunningServer) -> None:
    notices: list[tuple[str | None, str | None]] = []
    with connect(models_server) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity, d.sqlstate)))
        conn.execute("ROLLBACK")  # outside a transaction: a WARNING, as Postgres says
    assert notices == [("WARNING", "25P01")]


def test_error_fields_are_filled_as_postgres_does(models_server: RunningServer) -> None:
    with connect(models_server) as conn, pytest.raises(psycopg.errors.UndefinedColumn) as info:
        conn.execute("SELECT regoin, MEASURE(revenue) FROM orders GROUP BY 1")
    diag = info.value.diag
    assert diag.severity == "ERROR" and diag.severity_nonlocalized == "ERROR"
    assert diag.sqlstate == "42703"
    assert diag.message_primary and "regoin" in diag.message_primary
    assert diag.message_hint and "region" in diag.message_hint
    assert diag.statement_position == "8"


def test_extended_protocol_set_search_path_and_statement_timeout(models_server: RunningServer) -> None:
    with psycopg.connect(
        models_server.dsn, autocommit=True
    ) as conn:  # server-side binding: Parse/Bind/Execute
        conn.execute("SET search_path TO staging")
        staged = conn.execute(
            "SELECT MEASURE(staged_orders) FROM orders WHERE region = %s", ("Europe",)
        ).fetchone()
        assert staged is not None and staged[0] > 0
        conn.execute("SET statement_timeout TO 200")
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(
                "SELECT bucket, MEASURE(slow_total) FROM production.slow WHERE bucket > %s GROUP BY 1", (0,)
            )
        conn.execute("RESET ALL")
        with pytest.raises(psycopg.errors.GroupingError):
            conn.execute("SELECT MEASURE(staged_orders) FROM orders")
