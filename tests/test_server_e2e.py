"""The foundation end to end: the real server process, real psql and psycopg, real DuckDB."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.conftest import RunningServer


def psql(server: RunningServer, *commands: str) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-X", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "semantic", "-A", "-t"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def connect(server: RunningServer) -> psycopg.Connection:
    # ClientCursor binds client-side and sends the simple query protocol
    return psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor)


def truth(server: RunningServer, sql: str) -> list[tuple]:
    with duckdb.connect(str(server.database), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_psql_first_minute(server: RunningServer) -> None:
    out = psql(server, "SELECT 1", "SELECT version()", "SHOW server_version", "SHOW search_path")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("PostgreSQL ")
    version = lines[2]
    assert lines[1].startswith(f"PostgreSQL {version}")
    assert lines[3] == "production"


def test_server_version_parameter_matches_catalog(server: RunningServer) -> None:
    with connect(server) as conn:
        reported = conn.info.parameter_status("server_version")
        shown = conn.execute("SHOW server_version").fetchone()
        assert shown is not None and reported == shown[0]
        assert conn.info.parameter_status("integer_datetimes") == "on"
        assert conn.info.parameter_status("standard_conforming_strings") == "on"
        assert conn.info.parameter_status("client_encoding") == "UTF8"


def test_psql_lists_metric_tables(server: RunningServer) -> None:
    out = psql(server, r"\dt production.*")
    assert out.returncode == 0, out.stderr
    tables = {line.split("|")[1] for line in out.stdout.splitlines() if "|" in line}
    assert {"orders", "customers", "metrics"} <= tables


def test_set_show_and_transactions(server: RunningServer) -> None:
    with connect(server) as conn:
        conn.execute("SET application_name = 'e2e'")
        assert conn.execute("SHOW application_name").fetchone() == ("e2e",)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        conn.execute("BEGIN")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.execute("SELECT MEASURE(revenue) FROM orders")
        conn.execute("COMMIT")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_metric_by_region_and_month_matches_hand_written_sql(server: RunningServer) -> None:
    with connect(server) as conn:
        got = conn.execute(
            "SELECT region, DATE_TRUNC('month', order_date) AS month, MEASURE(revenue) "
            "FROM orders WHERE order_date >= DATE '2024-01-01' GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    expected = truth(
        server,
        "SELECT region, date_trunc('month', order_date) AS month, sum(amount) FROM main.orders "
        "WHERE order_date >= DATE '2024-01-01' GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2",
    )
    assert len(got) == len(expected) > 12
    for (g_region, g_month, g_rev), (e_region, e_month, e_rev) in zip(got, expected, strict=True):
        assert g_region == e_region
        assert str(g_month)[:10] == str(e_month)[:10]
        assert Decimal(g_rev) == e_rev


def test_ratio_at_two_grains_is_not_an_average_of_ratios(server: RunningServer) -> None:
    with connect(server) as conn:
        total = conn.execute("SELECT MEASURE(avg_order_value) FROM orders").fetchone()
        by_region = conn.execute("SELECT region, MEASURE(avg_order_value) FROM orders GROUP BY region").fetchall()
    assert total is not None
    ((expected_total,),) = truth(server, "SELECT sum(amount) / count(order_id) FROM main.orders")
    assert float(total[0]) == pytest.approx(float(expected_total), rel=1e-9)
    naive = sum(float(r[1]) for r in by_region) / len(by_region)
    assert abs(naive - float(total[0])) > 1e-6, "the test data must make the naive average differ"
    expected = dict(
        truth(server, "SELECT region, sum(amount) / count(order_id) FROM main.orders GROUP BY region")
    )
    assert {r[0]: pytest.approx(float(r[1]), rel=1e-9) for r in by_region} == {
        k: float(v) for k, v in expected.items()
    }


def test_having_order_limit(server: RunningServer) -> None:
    with connect(server) as conn:
        got = conn.execute(
            "SELECT status, MEASURE(order_count) AS n FROM orders GROUP BY status "
            "HAVING MEASURE(order_count) > 1000 ORDER BY n DESC LIMIT 2"
        ).fetchall()
    expected = truth(
        server,
        "SELECT status, count(order_id) AS n FROM main.orders GROUP BY status "
        "HAVING count(order_id) > 1000 ORDER BY n DESC LIMIT 2",
    )
    assert got == expected


def test_unknown_column_is_42703_and_session_survives(server: RunningServer) -> None:
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn) as info:
            conn.execute("SELECT regoin, MEASURE(revenue) FROM orders GROUP BY 1")
        assert "regoin" in str(info.value)
        assert "region" in (info.value.diag.message_hint or "") + str(info.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_metric_outside_measure_is_42803(server: RunningServer) -> None:
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.GroupingError) as info:
            conn.execute("SELECT region, revenue FROM orders GROUP BY region")
        assert "MEASURE" in (info.value.diag.message_hint or "")
        assert conn.execute("SELECT MEASURE(order_count) FROM orders").fetchone() is not None


def test_psql_error_then_recovery(server: RunningServer) -> None:
    out = subprocess.run(
        ["psql", "-X", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "semantic", "-A", "-t"],
        input="SELECT nope FROM orders;\nSELECT MEASURE(order_count) FROM orders;\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "ERROR:" in out.stderr
    ((count,),) = truth(server, "SELECT count(order_id) FROM main.orders")
    assert out.stdout.strip() == str(count)


def test_writes_are_refused(server: RunningServer) -> None:
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM orders")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_garbage_startup_ends_only_that_connection(server: RunningServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"\x00\x00\x00\x10GARBAGE-GARBAGE!")
        s.settimeout(5)
        data = s.recv(4096)
        assert data == b"" or data.startswith(b"E")  # a FATAL error or a plain close
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"\xff\xff\xff\xff")  # a length no server should allocate
        s.settimeout(5)
        data = s.recv(4096)
        assert data == b"" or data.startswith(b"E")
    with connect(server) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_multiple_statements_in_one_query(server: RunningServer) -> None:
    out = psql(server, "SELECT 1; SELECT MEASURE(order_count) FROM orders; SELECT 2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "1" and lines[-1] == "2" and int(lines[1]) > 0


def http_get(server: RunningServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://{server.host}:{server.http_port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_endpoints(server: RunningServer) -> None:
    assert http_get(server, "/health")[0] == 200
    status, body = http_get(server, "/api/health/")
    assert status == 200 and body["service"] == "semproxy" and body["environment"] == "development"
    status, body = http_get(server, "/api/health/ready")
    assert status == 200 and body["checks"]["engine"]["status"] == "ok"


def test_trust_on_a_public_address_refuses_to_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "semproxy", "serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "loopback" in out.stderr


def test_validate_reports_file_line_and_field(tmp_path: Path) -> None:
    category = tmp_path / "production"
    category.mkdir()
    (category / "broken.yaml").write_text(
        "name: broken\nmodel: main.orders\nmeasures:\n  - name: revenue\n    agg: summ\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "semproxy", "validate", "--models", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "broken.yaml:5" in out.stderr and "agg" in out.stderr


def test_psql_describe_and_list_databases(server: RunningServer) -> None:
    # psql 15's \l reads pg_database.daticulocale, renamed in PostgreSQL 17 (a catalog quirk)
    out = psql(server, r"\l", r"\d orders", r"\dn")
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr
    assert "semantic" in out.stdout
    assert "revenue|numeric" in out.stdout.replace(" ", "")
    assert "production" in out.stdout
