"""Real drivers over the extended protocol against the real server: pgjdbc (a statement run
past prepareThreshold so named server statements are used, setFetchSize with autocommit
off so portals are suspended), asyncpg (prepared statements reused, binary results) and
psycopg 3 (binary=True, server-side binding)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import asyncpg
import duckdb
import psycopg
import pytest

from tests.conftest import RunningServer

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JAVA_PROGRAM = r"""
import java.sql.*;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + "/semantic?prepareThreshold=3&sslmode=disable";
        try (Connection conn = DriverManager.getConnection(url, "tester", "")) {
            String sql = "SELECT region, MEASURE(order_count) AS n FROM orders"
                + " WHERE order_date >= ? GROUP BY region ORDER BY region NULLS LAST";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int run = 0; run < 6; run++) {  // past prepareThreshold: a named statement
                    ps.setDate(1, Date.valueOf("2024-01-01"));
                    long total = 0;
                    int rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) { total += rs.getLong(2); rows++; }
                    }
                    System.out.println("run " + run + " rows " + rows + " total " + total);
                }
            }
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT status, region, MEASURE(order_count) FROM orders GROUP BY 1, 2 ORDER BY 1, 2")) {
                ps.setFetchSize(3);  // Execute with a row limit: PortalSuspended between fetches
                int rows = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) rows++;
                }
                System.out.println("fetched " + rows);
            }
            conn.commit();
            try (Statement st = conn.createStatement()) {
                System.out.println("valid " + conn.isValid(5));
                try (ResultSet rs = st.executeQuery("SELECT MEASURE(revenue) FROM orders")) {
                    rs.next();
                    System.out.println("revenue " + rs.getBigDecimal(1));
                }
            }
        }
    }
}
"""


def _jdbc_jar() -> Path:
    if not JDBC_JAR.exists():
        # the Makefile's system-deps installs it; a bare checkout gets it here
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "libpostgresql-jdbc-java"],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
    if not JDBC_JAR.exists() or shutil.which("javac") is None:
        pytest.fail("pgjdbc (libpostgresql-jdbc-java) and javac are needed: run `make system-deps`")
    return JDBC_JAR


def test_pgjdbc_named_statements_and_fetch_size(server: RunningServer, tmp_path: Path) -> None:
    jar = _jdbc_jar()
    (tmp_path / "JdbcCheck.java").write_text(JAVA_PROGRAM)
    subprocess.run(["javac", "-cp", str(jar), "JdbcCheck.java"], cwd=tmp_path, check=True, timeout=120)
    out = subprocess.run(
        ["java", "-cp", f"{jar}:{tmp_path}", "JdbcCheck", f"{server.host}:{server.port}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    runs = {line.split(" rows ")[1] for line in lines if line.startswith("run ")}
    assert len(runs) == 1, lines  # every run, unnamed or named statement, the same answer
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        expected = conn.execute(
            "SELECT status, region, MEASURE(order_count) FROM orders GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    assert f"fetched {len(expected)}" in lines
    assert "valid true" in lines
    assert any(line.startswith("revenue ") and Decimal(line.split()[1]) > 0 for line in lines)


async def test_asyncpg_prepared_reuse_and_binary(server: RunningServer) -> None:
    conn = await asyncpg.connect(server.dsn)
    try:
        statement = await conn.prepare(
            "SELECT region, MEASURE(revenue) AS revenue FROM orders WHERE order_date >= $1 GROUP BY 1 ORDER BY 1"
        )
        assert [a.name for a in statement.get_parameters()] == ["date"]
        assert [a.name for a in statement.get_attributes()] == ["region", "revenue"]
        first = await statement.fetch(dt.date(2024, 1, 1))
        again = await statement.fetch(dt.date(2024, 1, 1))
        later = await statement.fetch(dt.date(2024, 6, 1))
        assert first == again and len(first) > 2
        assert sum(r["revenue"] for r in later) < sum(r["revenue"] for r in first)
        assert isinstance(first[0]["revenue"], Decimal)
        async with conn.transaction():
            cursor = await statement.cursor(dt.date(2024, 1, 1))
            assert await cursor.fetch(2) == first[:2]
    finally:
        await conn.close()


def test_psycopg_binary_and_server_side_binding(server: RunningServer) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        sql = "SELECT region, MEASURE(order_count) AS n FROM orders WHERE order_date >= %s GROUP BY 1 ORDER BY 1"
        text_rows = conn.execute(sql, (dt.date(2024, 1, 1),)).fetchall()
        binary_rows = conn.execute(sql, (dt.date(2024, 1, 1),), binary=True).fetchall()
        prepared = conn.execute(sql, (dt.date(2024, 1, 1),), prepare=True).fetchall()
        assert text_rows == binary_rows == prepared and len(text_rows) > 2
        with conn.transaction(), conn.cursor(name="server_side") as named:  # DECLARE + FETCH
            named.itersize = 3
            named.execute(sql, (dt.date(2024, 1, 1),))
            assert named.fetchmany(2) == text_rows[:2]
            assert named.fetchall() == text_rows[2:]


async def test_asyncpg_explain_and_prepared_binds_with_other_values(server: RunningServer) -> None:
    # EXPLAIN's rows are fixed at Parse; a prepared metric query takes each Bind's values
    # through the plan cache's slots and must give that Bind's own numbers
    conn = await asyncpg.connect(server.dsn)
    try:
        plan = await conn.fetch("EXPLAIN SELECT region, MEASURE(revenue) FROM orders GROUP BY 1")
        assert plan and plan[0]["QUERY PLAN"] == "SELECT"
        sql = "SELECT MEASURE(order_count) FROM orders WHERE order_date >= $1 AND region = $2"
        got = [await conn.fetchval(sql, day, "Europe") for day in (dt.date(2024, 1, 1), dt.date(2025, 1, 1))]
    finally:
        await conn.close()
    with duckdb.connect(str(server.database), read_only=True) as con:
        truth = [
            con.execute(
                "SELECT count(order_id) FROM main.orders WHERE order_date >= ? AND region = 'Europe'", [day]
            ).fetchone()[0]  # type: ignore[index]
            for day in (dt.date(2024, 1, 1), dt.date(2025, 1, 1))
        ]
    assert got == truth and got[0] != got[1]
