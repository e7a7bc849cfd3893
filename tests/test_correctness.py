"""Compiled metric queries give the numbers hand-written SQL gives, on real DuckDB.

Where a naive query gives another number (fan-out, average of ratios, double counting),
the test computes that number too and asserts it differs, so it discriminates.
"""

from __future__ import annotations

import datetime
import decimal
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import pytest
import pytest_asyncio

from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry
from tests.compiler_fixtures import HERE, rows
from tests.test_correctness_rules import RULES


def run(con: duckdb.DuckDBPyConnection, registry: Registry, sql: str) -> list[tuple[Any, ...]]:
    return rows(con, compile_query(sql, registry).sql)


def approx(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(float(v), 9) if isinstance(v, float) else v for v in r) for r in result]


CASES = {
    "sum by dimension": (
        "SELECT region, MEASURE(revenue) AS revenue FROM orders GROUP BY region",
        "SELECT region, SUM(amount) FROM shop.orders GROUP BY region",
    ),
    "every aggregation at the whole table": (
        "SELECT MEASURE(revenue), SUM(order_count), COUNT(order_count), COUNT(*), COUNT(DISTINCT buyers),"
        " AVG(avg_amount), MIN(min_amount), MAX(max_amount), SUM(large_orders) FROM orders",
        "SELECT SUM(amount), COUNT(order_id), COUNT(order_id), COUNT(*), COUNT(DISTINCT customer_id),"
        " AVG(CAST(amount AS DOUBLE)), MIN(amount), MAX(amount), SUM(CASE WHEN amount >= 100 THEN 1 ELSE 0 END)"
        " FROM shop.orders",
    ),
    "median and percentiles are exact, as double": (
        "SELECT region, MEASURE(median_amount), MEASURE(p90_amount), MEASURE(p90_amount_disc) FROM orders GROUP BY 1",
        "SELECT region, quantile_cont(CAST(amount AS DOUBLE), 0.5), quantile_cont(CAST(amount AS DOUBLE), 0.9),"
        " CAST(quantile_disc(amount, 0.9) AS DOUBLE) FROM shop.orders GROUP BY 1",
    ),
    "filtered metric filters only its own aggregate": (
        "SELECT region, MEASURE(completed_revenue), MEASURE(revenue) FROM orders GROUP BY region",
        "SELECT region, SUM(amount) FILTER (WHERE lower(status) = 'completed'), SUM(amount) FROM shop.orders GROUP BY 1",
    ),
    "MEASURE ... FILTER (WHERE)": (
        "SELECT region, MEASURE(order_count) FILTER (WHERE is_large) AS big FROM orders GROUP BY ALL",
        "SELECT region, COUNT(order_id) FILTER (WHERE amount >= 100) FROM shop.orders GROUP BY 1",
    ),
    "WHERE on dimensions, HAVING on metrics, ORDER, LIMIT, OFFSET": (
        "SELECT region AS r, MEASURE(revenue) AS rev FROM orders WHERE status IN ('completed', 'shipped')"
        " AND order_date BETWEEN DATE '2024-01-01' AND DATE '2024-03-31' AND region IS NOT NULL"
        " GROUP BY r HAVING MEASURE(revenue) > 100 ORDER BY rev DESC LIMIT 5 OFFSET 0",
        "SELECT region, SUM(amount) FROM shop.orders WHERE lower(status) IN ('completed', 'shipped')"
        " AND order_date BETWEEN DATE '2024-01-01' AND DATE '2024-03-31' AND region IS NOT NULL"
        " GROUP BY 1 HAVING SUM(amount) > 100",
    ),
    "date_trunc, extract and cast of time": (
        "SELECT DATE_TRUNC('month', order_date) AS m, EXTRACT(year FROM order_date) AS y,"
        " MEASURE(order_count) FROM orders GROUP BY 1, 2",
        "SELECT DATE_TRUNC('month', order_date), EXTRACT(year FROM order_date), COUNT(order_id)"
        " FROM shop.orders GROUP BY 1, 2",
    ),
    "metric_time is the agg time dimension": (
        "SELECT DATE_TRUNC('quarter', metric_time), MEASURE(revenue) FROM orders GROUP BY 1",
        "SELECT DATE_TRUNC('quarter', order_date), SUM(amount) FROM shop.orders GROUP BY 1",
    ),
    "expression over dimensions as a key": (
        "SELECT UPPER(COALESCE(region, 'none')) AS r, MEASURE(revenue) FROM orders GROUP BY 1",
        "SELECT UPPER(COALESCE(region, 'none')), SUM(amount) FROM shop.orders GROUP BY 1",
    ),
    "orphans and NULL regions fall in the NULL group of a joined dimension": (
        "SELECT customer__region, MEASURE(revenue), MEASURE(order_count) FROM orders GROUP BY 1",
        "SELECT c.region, SUM(o.amount), COUNT(o.order_id) FROM shop.orders o"
        " LEFT JOIN shop.customers c ON o.customer_id = c.customer_id GROUP BY 1",
    ),
    "two hops": (
        "SELECT customer__nation__name AS nation, MEASURE(revenue) FROM orders GROUP BY 1",
        "SELECT n.name, SUM(o.amount) FROM shop.orders o LEFT JOIN shop.customers c ON o.customer_id = c.customer_id"
        " LEFT JOIN shop.nations n ON c.nation_id = n.nation_id GROUP BY 1",
    ),
    "a filter on a joined dimension adds the join": (
        "SELECT MEASURE(revenue) FROM orders WHERE customer__name = 'Alice'",
        "SELECT SUM(o.amount) FROM shop.orders o JOIN shop.customers c ON o.customer_id = c.customer_id"
        " WHERE c.name = 'Alice'",
    ),
    "metric filter through a join": (
        "SELECT MEASURE(eu_customer_revenue) FROM orders",
        "SELECT SUM(o.amount) FROM shop.orders o JOIN shop.customers c ON o.customer_id = c.customer_id"
        " WHERE c.region = 'EU'",
    ),
    "select star previews at the grain of own dimensions": (
        "SELECT region, status, MEASURE(revenue) FROM orders GROUP BY ALL",
        "SELECT region, lower(status), SUM(amount) FROM shop.orders GROUP BY ALL",
    ),
    "an ungrouped selection is a view at the grain of its dimensions": (
        "SELECT region, revenue FROM orders",
        "SELECT region, SUM(amount) FROM shop.orders GROUP BY 1",
    ),
    "entities group by key": (
        "SELECT customer, MEASURE(order_count) FROM orders GROUP BY customer",
        "SELECT customer_id, COUNT(order_id) FROM shop.orders GROUP BY 1",
    ),
    "aggregates of dimensions count base rows": (
        "SELECT region, MIN(order_date), MAX(order_date), COUNT(DISTINCT status) FROM orders GROUP BY 1",
        "SELECT region, MIN(order_date), MAX(order_date), COUNT(DISTINCT lower(status)) FROM shop.orders GROUP BY 1",
    ),
    "distinct": (
        "SELECT DISTINCT is_large FROM orders",
        "SELECT DISTINCT amount >= 100 FROM shop.orders",
    ),
    "a sql: base relation, joined like a table": (
        "SELECT customer__name, MEASURE(big_revenue) FROM big_orders GROUP BY 1",
        "SELECT c.name, SUM(o.amount) FROM shop.orders o LEFT JOIN shop.customers c USING (customer_id)"
        " WHERE o.amount >= 50 GROUP BY 1",
    ),
    "customers without orders are counted": (
        "SELECT region, MEASURE(customer_count) FROM customers GROUP BY 1",
        "SELECT region, COUNT(customer_id) FROM shop.customers GROUP BY 1",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_numbers_as_hand_written_sql(
    case: str, con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    ours, expected = CASES[case]
    assert approx(run(con, registry, ours)) == approx(rows(con, expected))


def test_ratio_is_computed_at_the_query_grain(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(con, registry, "SELECT MEASURE(avg_order_value) FROM orders")
    expected = rows(con, "SELECT SUM(amount) / COUNT(order_id) FROM shop.orders")
    naive = rows(
        con,
        "SELECT AVG(r) FROM (SELECT SUM(amount) / COUNT(order_id) AS r FROM shop.orders"
        " GROUP BY DATE_TRUNC('month', order_date))",
    )
    assert ours[0][0] == pytest.approx(float(expected[0][0]))
    assert ours[0][0] != pytest.approx(float(naive[0][0]))
    monthly = run(
        con, registry, "SELECT DATE_TRUNC('month', order_date), AVG(avg_order_value) FROM orders GROUP BY 1"
    )
    by_hand = rows(
        con, "SELECT DATE_TRUNC('month', order_date), SUM(amount) / COUNT(*) FROM shop.orders GROUP BY 1"
    )
    assert [(m, pytest.approx(float(v))) for m, v in by_hand] == monthly


def test_fan_out_is_never_double_counted(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(
        con, registry, "SELECT customer__region, MEASURE(revenue), MEASURE(quantity) FROM metrics GROUP BY 1"
    )
    revenue = rows(
        con,
        "SELECT c.region, SUM(o.amount) FROM shop.orders o LEFT JOIN shop.customers c USING (customer_id) GROUP BY 1",
    )
    quantity = rows(
        con,
        "SELECT c.region, SUM(i.quantity) FROM shop.items i LEFT JOIN shop.orders o USING (order_id)"
        " LEFT JOIN shop.customers c USING (customer_id) GROUP BY 1",
    )
    naive = rows(
        con,
        "SELECT c.region, SUM(o.amount), SUM(i.quantity) FROM shop.orders o JOIN shop.items i USING (order_id)"
        " LEFT JOIN shop.customers c USING (customer_id) GROUP BY 1",
    )
    assert ours == [(r, v, q) for (r, v), (_, q) in zip(revenue, quantity, strict=True)]
    assert [r[1] for r in naive] != [r[1] for r in ours]


def test_cross_model_derived_metric_joins_on_the_grain(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    ours = run(
        con,
        registry,
        "SELECT DATE_TRUNC('month', metric_time) AS m, MEASURE(net_revenue), MEASURE(revenue), MEASURE(refunded)"
        " FROM metrics GROUP BY 1",
    )
    expected = rows(
        con,
        "WITH o AS (SELECT DATE_TRUNC('month', order_date) m, SUM(amount) r FROM shop.orders GROUP BY 1),"
        " f AS (SELECT DATE_TRUNC('month', refund_date) m, SUM(refund_amount) x FROM shop.refunds GROUP BY 1)"
        " SELECT COALESCE(o.m, f.m), o.r - f.x, o.r, f.x FROM o FULL OUTER JOIN f ON o.m = f.m",
    )
    naive = rows(
        con,
        "SELECT DATE_TRUNC('month', o.order_date), SUM(o.amount) FROM shop.orders o"
        " LEFT JOIN shop.refunds f USING (order_id) GROUP BY 1",
    )
    assert ours == expected
    assert any(month[0].month == 4 for month in ours), "a month with refunds only must be kept"
    assert len(naive) != len(ours)


def test_derived_ratio_of_filtered_metric(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(con, registry, "SELECT region, MEASURE(completed_share) FROM orders GROUP BY 1")
    expected = rows(
        con,
        "SELECT region, CAST(SUM(amount) FILTER (WHERE lower(status) = 'completed') AS DOUBLE) / SUM(amount)"
        " FROM shop.orders GROUP BY 1",
    )
    assert approx(ours) == approx(expected)


def test_ratio_across_a_join_from_items(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(con, registry, "SELECT order__region, MEASURE(revenue_per_unit) FROM items GROUP BY 1")
    expected = rows(
        con,
        "SELECT o.region, CAST(SUM(i.quantity * i.price) AS DOUBLE) / SUM(i.quantity)"
        " FROM shop.items i LEFT JOIN shop.orders o USING (order_id) GROUP BY 1",
    )
    assert approx(ours) == approx(expected)


def test_order_limit_keep_postgres_null_order(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    sql = compile_query(
        "SELECT region, MEASURE(revenue) AS r FROM orders GROUP BY 1 ORDER BY region DESC", registry
    ).sql
    assert [r[0] for r in con.execute(sql).fetchall()] == [
        None,
        "US",
        "EU",
    ]  # Postgres: DESC puts NULLs first
    sql = compile_query(
        "SELECT region FROM orders GROUP BY 1 ORDER BY 1 NULLS LAST LIMIT 2 OFFSET 1", registry
    ).sql
    assert con.execute(sql).fetchall() == [("US",), (None,)]


def test_cumulative_windows(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(
        con,
        registry,
        "SELECT metric_time, MEASURE(revenue_7d), MEASURE(revenue_mtd), MEASURE(revenue_all_time) FROM orders"
        " WHERE metric_time >= DATE '2024-02-01' GROUP BY 1",
    )
    expected = rows(
        con,
        "SELECT d.day,"
        " (SELECT SUM(amount) FROM shop.orders WHERE order_date BETWEEN d.day - 6 AND d.day),"
        " (SELECT SUM(amount) FROM shop.orders WHERE order_date BETWEEN DATE_TRUNC('month', d.day) AND d.day),"
        " (SELECT SUM(amount) FROM shop.orders WHERE order_date <= d.day)"
        " FROM (SELECT DISTINCT order_date AS day FROM shop.orders WHERE order_date >= DATE '2024-02-01') d",
    )
    naive = rows(
        con,
        "SELECT order_date, SUM(amount) FROM shop.orders WHERE order_date >= DATE '2024-02-01' GROUP BY 1",
    )
    assert ours == expected
    assert [r[3] for r in ours] != [r[1] for r in naive]  # all-time includes January, before the filter


def test_cumulative_month_to_date_at_a_coarser_grain(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    ours = run(
        con,
        registry,
        "SELECT DATE_TRUNC('quarter', metric_time), MEASURE(revenue_mtd) FROM orders GROUP BY 1",
    )
    march = rows(con, "SELECT SUM(amount) FROM shop.orders WHERE order_date >= DATE '2024-03-01'")
    assert [r[1] for r in ours] == [march[0][0]]  # the value at the quarter's end: March to date


def test_period_over_period(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    ours = run(
        con,
        registry,
        "SELECT DATE_TRUNC('month', metric_time) AS m, MEASURE(revenue), MEASURE(revenue_growth_mom) FROM orders GROUP BY 1",
    )
    expected = rows(
        con,
        "WITH m AS (SELECT DATE_TRUNC('month', order_date) AS m, SUM(amount) AS r FROM shop.orders GROUP BY 1)"
        " SELECT m.m, m.r, CAST(m.r - p.r AS DOUBLE) / NULLIF(p.r, 0) FROM m LEFT JOIN m p ON p.m = m.m - INTERVAL 1 MONTH",
    )
    assert approx(ours) == approx(expected)
    assert len(ours) == 3  # no row for the month after the last order


def test_semi_additive_balance_takes_the_last_snapshot(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    ours = run(
        con, registry, "SELECT DATE_TRUNC('month', metric_time), MEASURE(open_balance) FROM orders GROUP BY 1"
    )
    expected = rows(
        con,
        "SELECT DATE_TRUNC('month', order_date), SUM(balance) FROM shop.orders o WHERE order_date ="
        " (SELECT MAX(order_date) FROM shop.orders i WHERE DATE_TRUNC('month', i.order_date) = DATE_TRUNC('month', o.order_date))"
        " GROUP BY 1",
    )
    naive = rows(con, "SELECT DATE_TRUNC('month', order_date), SUM(balance) FROM shop.orders GROUP BY 1")
    assert ours == expected
    assert ours != naive


def test_select_star_preview_runs_every_metric(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    compiled = compile_query("SELECT * FROM orders LIMIT 3", registry)
    assert len(con.execute(compiled.sql).fetchall()) == 3
    assert compiled.columns[:4] == ("region", "status", "is_large", "order_date")
    assert {"revenue", "revenue_mtd", "revenue_growth_mom", "open_balance", "net_revenue"} <= set(
        compiled.columns
    )
    everything = compile_query("SELECT * FROM metrics", registry)
    assert len(con.execute(everything.sql).fetchall()) == 1
    assert "revenue_7d" not in everything.columns  # no value without metric_time


def test_ungrouped_inner_selection_is_a_view_at_the_outer_grain(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    # Tableau custom SQL: the inner query is at (region, order_date); the outer groups by region
    ours = run(
        con,
        registry,
        'SELECT "t"."region", SUM("t"."avg_order_value") AS aov, COUNT(DISTINCT t.buyers) AS b'
        " FROM (SELECT region, order_date AS d, avg_order_value, buyers FROM orders WHERE status = 'completed') t"
        " WHERE t.d >= DATE '2024-02-01' GROUP BY t.region",
    )
    expected = rows(
        con,
        "SELECT region, CAST(SUM(amount) AS DOUBLE) / COUNT(order_id), COUNT(DISTINCT customer_id) FROM shop.orders"
        " WHERE lower(status) = 'completed' AND order_date >= DATE '2024-02-01' GROUP BY 1",
    )
    naive = rows(
        con,
        "SELECT region, SUM(r) FROM (SELECT region, order_date, CAST(SUM(amount) AS DOUBLE) / COUNT(order_id) AS r"
        " FROM shop.orders WHERE lower(status) = 'completed' AND order_date >= DATE '2024-02-01' GROUP BY 1, 2) GROUP BY 1",
    )
    assert approx(ours) == approx(expected)
    assert approx([r[:2] for r in ours]) != approx(naive)


def test_metric_queries_nested_in_cte_union_and_in(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    compiled = compile_query(
        "WITH t AS (SELECT region, MEASURE(revenue) AS r FROM orders GROUP BY 1)"
        " SELECT * FROM t WHERE region IN (SELECT region FROM orders WHERE status = 'cancelled' GROUP BY 1)"
        " UNION ALL SELECT 'total', MEASURE(revenue) FROM orders",
        registry,
    )
    assert compiled.columns == ("region", "r")
    assert rows(con, compiled.sql) == rows(
        con,
        "SELECT 'EU', SUM(amount) FROM shop.orders WHERE region = 'EU' UNION ALL SELECT 'total', SUM(amount) FROM shop.orders",
    )


def test_a_cached_plan_with_other_literals_gives_their_numbers(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    template = (
        "SELECT region, MEASURE(revenue) FROM orders WHERE status = '{}' AND order_date >= DATE '{}'"
        " GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT {}"
    )
    by_hand = (
        "SELECT region, SUM(amount) FROM shop.orders WHERE lower(status) = $1 AND order_date >= CAST($2 AS DATE)"
        " GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT $3"
    )
    for status, since, limit in [
        ("completed", "2024-01-01", 5),
        ("cancelled", "2023-01-01", 9),
        ("completed", "2024-02-01", 2),
    ]:
        sql = compile_query(template.format(status, since, limit), registry).sql
        assert con.execute(sql).fetchall() == con.execute(by_hand, [status, since, limit]).fetchall()


def test_number_of_records_is_bigint_like_postgres(
    con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    """Tableau's Number of Records is SUM(1): Postgres types it bigint (DuckDB's own SUM of
    an integer is a 128-bit integer, which a client would be sent as numeric)."""
    sql = compile_query(
        "SELECT region, SUM(1), SUM(1) FILTER (WHERE status = 'completed') AS done FROM orders GROUP BY 1",
        registry,
    ).sql
    result = con.execute(sql)
    assert [str(d[1]) for d in result.description] == ["VARCHAR", "BIGINT", "BIGINT"]
    assert sorted(result.fetchall(), key=str) == sorted(
        con.execute(
            "SELECT region, COUNT(*), COUNT(*) FILTER (WHERE lower(status) = 'completed') FROM shop.orders GROUP BY 1"
        ).fetchall(),
        key=str,
    )
    assert str(con.execute("SELECT SUM(1) FROM shop.orders").description[0][1]) != "BIGINT"  # the trap


def test_bi_tool_sql_forms(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    metabase = (
        'SELECT "production"."orders"."region" AS "region", SUM("production"."orders"."revenue") AS "sum"'
        ' FROM "production"."orders" GROUP BY "production"."orders"."region"'
        ' ORDER BY "production"."orders"."region" ASC LIMIT 1048575'
    )
    tableau = (
        'SELECT "orders"."region" AS "region", SUM("orders"."revenue") AS "sum:revenue:ok",'
        ' AVG("orders"."avg_order_value") AS "avg:aov:ok" FROM "production"."orders" "orders"'
        ' WHERE ("orders"."status" = \'completed\') GROUP BY 1'
    )
    by_hand = rows(con, "SELECT region, SUM(amount) FROM shop.orders GROUP BY 1")
    assert run(con, registry, metabase) == by_hand
    expected = rows(
        con,
        "SELECT region, SUM(amount), CAST(SUM(amount) AS DOUBLE) / COUNT(*) FROM shop.orders"
        " WHERE lower(status) = 'completed' GROUP BY 1",
    )
    assert approx(run(con, registry, tableau)) == approx(expected)


# -- the same compiled queries on PostgreSQL as an engine ---------------------------------
ENGINE_QUERIES = [ours for ours, _ in CASES.values()] + [
    "SELECT customer__region, MEASURE(revenue), MEASURE(quantity) FROM metrics GROUP BY 1",
    "SELECT DATE_TRUNC('month', metric_time), MEASURE(net_revenue), MEASURE(refunded) FROM metrics GROUP BY 1",
    "SELECT metric_time, MEASURE(revenue_7d), MEASURE(revenue_mtd), MEASURE(revenue_all_time) FROM orders GROUP BY 1",
    "SELECT DATE_TRUNC('month', metric_time), MEASURE(revenue_growth_mom), MEASURE(open_balance) FROM orders GROUP BY 1",
    "SELECT region, MEASURE(avg_order_value), MEASURE(completed_share) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 2",
    "SELECT EXTRACT(dow FROM order_date) AS d, CAST(MEASURE(revenue) AS numeric) FROM orders GROUP BY 1",
    "SELECT t.region, SUM(t.avg_order_value) FROM (SELECT region, order_date, avg_order_value FROM orders) t GROUP BY 1",
    "SELECT * FROM orders",
]


def normalize(result: list[Any]) -> list[tuple[Any, ...]]:
    """Engine-neutral values: numbers as rounded floats, timestamps without zone."""

    def value(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float | decimal.Decimal):
            return round(float(v), 6)
        if isinstance(v, datetime.datetime):
            return v.replace(tzinfo=None)
        return v

    out = [tuple(value(v) for v in r) for r in result]
    return sorted(out, key=lambda r: tuple((v is not None, str(v)) for v in r))


@pytest_asyncio.fixture(scope="module")
async def postgres() -> AsyncIterator[asyncpg.Connection]:
    try:
        from semproxy.catalog.server import CatalogServer
    except ImportError:  # pragma: no cover - the catalog package is optional here
        pytest.skip("no embedded PostgreSQL")
    path = Path(tempfile.mkdtemp(prefix="semproxy-compiler-pg-"))
    server = await CatalogServer.start(path)
    conn = await server.connect_admin()
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.execute("DROP SCHEMA IF EXISTS shop CASCADE")
    await conn.execute((HERE / "data.sql").read_text())
    yield conn
    await conn.close()
    await server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("sql", ENGINE_QUERIES + [rule.ours for rule in RULES.values()])
async def test_postgres_engine_gives_the_same_numbers(
    postgres: asyncpg.Connection, con: duckdb.DuckDBPyConnection, registry: Registry, sql: str
) -> None:
    on_postgres = await postgres.fetch(compile_query(sql, registry, dialect="postgres").sql)
    on_duckdb = con.execute(compile_query(sql, registry).sql).fetchall()
    assert normalize([tuple(r) for r in on_postgres]) == normalize(on_duckdb)
