"""psqlODBC (Debian's odbc-postgresql, through unixODBC and pyodbc), the driver Tableau and
Power BI's ODBC path use: catalog functions, a metric query with a bound parameter, with
and without UseDeclareFetch (BEGIN; DECLARE ... CURSOR WITH HOLD; FETCH n in one message)."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest

from tests.clients.support import truth
from tests.conftest import RunningServer

DRIVER = Path("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so")


def connect(server: RunningServer, declare_fetch: bool) -> pyodbc.Connection:
    if not DRIVER.exists():
        pytest.fail("psqlODBC (odbc-postgresql, unixodbc) is needed: run `make system-deps`")
    options = {
        "Driver": str(DRIVER), "Server": server.host, "Port": str(server.port), "Database": "semantic",
        "Uid": "tester", "Pwd": "", "SSLMode": "disable",
        "UseDeclareFetch": "1" if declare_fetch else "0", "Fetch": "7",
    }  # fmt: skip
    return pyodbc.connect(";".join(f"{k}={v}" for k, v in options.items()), autocommit=False)


@pytest.mark.parametrize("declare_fetch", [False, True], ids=["plain", "UseDeclareFetch"])
def test_psqlodbc_catalog_functions_and_metric_query(server: RunningServer, declare_fetch: bool) -> None:
    with connect(server, declare_fetch) as conn:
        cur = conn.cursor()
        tables = {r.table_name for r in cur.tables(schema="production", tableType="TABLE")}
        assert {"orders", "customers", "metrics"} <= tables
        columns = {r.column_name: r for r in cur.columns(table="orders", schema="production")}
        assert columns["region"].type_name == "text"
        assert columns["order_date"].type_name == "date"
        assert columns["revenue"].type_name == "numeric"

        cur.execute(
            "SELECT customer__segment, MEASURE(revenue) FROM orders WHERE order_date >= ? "
            "GROUP BY 1 ORDER BY 1",
            "2024-01-01",
        )
        got = [tuple(r) for r in cur.fetchall()]  # more rows than Fetch=7 with UseDeclareFetch
        cur.execute("SELECT order_date, MEASURE(order_count) FROM orders GROUP BY 1 ORDER BY 1")
        days = cur.fetchall()
        conn.commit()
    expected = truth(
        server,
        "SELECT c.segment, sum(o.amount) FROM main.orders o LEFT JOIN main.customers c USING (customer_id) "
        "WHERE o.order_date >= DATE '2024-01-01' GROUP BY 1 ORDER BY 1 NULLS LAST",
    )
    assert got == expected
    ((n_days,),) = truth(server, "SELECT count(DISTINCT order_date) FROM main.orders")
    assert len(days) == n_days > 7
