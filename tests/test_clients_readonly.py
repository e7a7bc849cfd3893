"""What a real PostgreSQL must not do for us: no write reaches anything but this session's
TEMP objects; files and programs stay out of reach. Each refusal leaves the session usable.
Tableau's temp-table probes work (TEMP), and a query joining one to a metric table is 0A000."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import RunningServer

REFUSED = [
    ("CREATE TABLE production.shadow (a int)", "25006"),
    ("CREATE TABLE shadow AS SELECT 1 AS a", "25006"),
    ("INSERT INTO production.orders (region) VALUES ('x')", "25006"),
    ("UPDATE production.customers SET segment = 'x'", "25006"),
    ("COPY production.orders FROM STDIN", "25006"),
    ("ALTER TABLE production.orders ADD COLUMN x int", "25006"),
    ("ALTER ROLE semproxy SUPERUSER", "25006"),
    ("GRANT ALL ON production.orders TO PUBLIC", "25006"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "25006"),
    ("DO $$BEGIN PERFORM 1; END$$", "25006"),
    ("SELECT pg_read_file('/etc/passwd')", "42501"),
    ("SELECT pg_read_binary_file('/etc/hostname')", "42501"),
    ("SELECT lo_import('/etc/passwd')", "42501"),
    ("SELECT * FROM pg_ls_dir('.')", "42501"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "42501"),
    ("COPY (SELECT 1) TO '/tmp/semproxy-copy'", "42501"),
]


@pytest.fixture(scope="module")
def conn(server: RunningServer) -> psycopg.Connection:
    # simple query protocol, the way psql and BI tools' raw SQL arrive
    with psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        yield conn


@pytest.mark.parametrize(("sql", "sqlstate"), REFUSED, ids=[s for s, _ in REFUSED])
def test_refused_and_the_session_goes_on(conn: psycopg.Connection, sql: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == sqlstate, info.value
    assert conn.execute("SELECT MEASURE(order_count) FROM orders").fetchone()[0] > 0  # type: ignore[index]


def test_refused_inside_a_transaction_block_needs_rollback(conn: psycopg.Connection) -> None:
    conn.execute("BEGIN")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM production.orders")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_tableau_temp_table_probes(conn: psycopg.Connection) -> None:
    conn.execute(
        'CREATE LOCAL TEMPORARY TABLE "#Tableau_5_1_Connect" ("COL" INTEGER) ON COMMIT PRESERVE ROWS'
    )
    conn.execute('INSERT INTO "#Tableau_5_1_Connect" ("COL") VALUES (1), (2)')
    conn.execute('UPDATE pg_temp."#Tableau_5_1_Connect" SET "COL" = "COL" * 10')
    assert conn.execute('SELECT sum("COL") FROM "#Tableau_5_1_Connect"').fetchone() == (30,)
    conn.execute('DROP TABLE "#Tableau_5_1_Connect"')

    conn.execute('CREATE LOCAL TEMPORARY TABLE "#Tableau_5_2_Filter" ("status" TEXT) ON COMMIT PRESERVE ROWS')
    conn.execute("""INSERT INTO "#Tableau_5_2_Filter" ("status") VALUES ('completed')""")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
        conn.execute(
            'SELECT "orders"."status" AS "status", SUM("orders"."order_count") AS "sum:order_count:ok" '
            'FROM "production"."orders" "orders" INNER JOIN "#Tableau_5_2_Filter" '
            'ON ("orders"."status" = "#Tableau_5_2_Filter"."status") GROUP BY 1'
        )
    assert "#Tableau_5_2_Filter" in str(info.value)
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute('CREATE TEMP TABLE "#Tableau_5_3_Copy" AS SELECT region FROM orders')
    conn.execute('DROP TABLE "#Tableau_5_2_Filter"')
    assert conn.execute("SELECT MEASURE(order_count) FROM orders").fetchone()[0] > 0  # type: ignore[index]
