"""Every rule of the SQL interface (spec/sql-interface.md), one or more queries each, against
hand-written SQL over the raw tables on DuckDB. tests/test_correctness_spark.py runs every
one of these queries again, compiled for spark and databricks, on a local Apache Spark, and
test_correctness.py's Postgres cross-check compiled for postgres on embedded PostgreSQL.

Rule -> where it is tested (the name of a RULES entry here, or a test in test_correctness.py):

    MEASURE(m)                               "measure" ; sum by dimension
    matching aggregates, any around others   "matching aggregates" ; "aggregates around non-plain metrics"
    COUNT(*)                                 "matching aggregates"
    DATE_TRUNC hour/day/week/month/q/year    "date_trunc <grain>" (hour on visits' timestamps)
    EXTRACT, casts                           "extract parts" ; "casts" ; "date arithmetic" (traps)
    WHERE AND/OR/NOT/IN/BETWEEN/LIKE/ILIKE   "where own" ; "where joined" ; "where is null"
    HAVING                                   "having" ; "having and order by an unselected aggregate"
    ORDER BY NULLS FIRST/LAST, LIMIT/OFFSET  "order nulls first" ; "order nulls last" ; "order desc"
    DISTINCT                                 "distinct"
    GROUP BY ALL/ordinals/aliases/exprs      "group by all" ; "group by ordinal" ; "group by alias" ; ...
    SELECT * preview                         "select star" ; test_select_star_preview_runs_every_metric
    subquery / CTE / UNION / IN (subquery)   "nested ..." ; test_metric_queries_nested_in_cte_union_and_in
    ungrouped views                          "view ..." ; test_ungrouped_inner_selection_is_a_view_...
    entities as group-by                     "entity key"
    quoted / schema-qualified + aliases      "tableau names" ; "metabase names"
    ratio at two grains                      "ratio whole" ; "ratio by month" ; test_ratio_is_computed_...
    derived within / across models           "derived within" ; "derived across" ; test_cross_model_...
    offset_window                            "offset window" ; test_period_over_period
    offset_to_grain                          "offset to grain by day" ; "offset to grain by month"
    cumulative window/grain_to_date/all-time "cumulative ..." ; test_cumulative_windows
    semi-additive                            "semi-additive" ; test_semi_additive_balance_...
    filtered metrics, MEASURE FILTER         "filtered metric" ; "measure filter"
    every aggregation (median, percentile)   "percentiles" ; "matching aggregates"
    joins 1 and 2 hops with orphans          "join one hop" ; "join two hops" ; test_fan_out_...

Dialect traps (notes/dialect-traps.md), each caught by a query here when run on Spark:
numeric casts ("casts"), exact percentiles ("percentiles"), integer division ("integer
division"), EXTRACT(DOW)/EPOCH ("extract parts"), date - date ("date arithmetic"), AVG of
a decimal ("matching aggregates", compared to 9 places), an aggregate only in ORDER BY
with HAVING ("having and order by an unselected aggregate"), Postgres NULL ordering
("order ..."), timestamps without zone ("date_trunc hour").
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import NamedTuple

import duckdb
import pytest

from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry


class Rule(NamedTuple):
    ours: str  # the metric query a client sends
    by_hand: str  # the same question over the raw tables, DuckDB SQL
    ordered: bool = False  # the order of rows is part of the answer


ORD = "shop.orders o"
OC = "shop.orders o LEFT JOIN shop.customers c ON o.customer_id = c.customer_id"
OCN = OC + " LEFT JOIN shop.nations n ON c.nation_id = n.nation_id"
MONTHLY = "SELECT DATE_TRUNC('month', order_date) AS m, SUM(amount) AS r FROM shop.orders GROUP BY 1"

RULES: dict[str, Rule] = {
    "measure": Rule(
        "SELECT status, MEASURE(revenue), MEASURE(order_count) FROM orders GROUP BY status",
        f"SELECT lower(status), SUM(amount), COUNT(order_id) FROM {ORD} GROUP BY 1",
    ),
    "matching aggregates": Rule(
        "SELECT region, SUM(revenue), SUM(order_count), COUNT(order_count), COUNT(*), COUNT(DISTINCT buyers),"
        " AVG(avg_amount), MIN(min_amount), MAX(max_amount), SUM(large_orders) FROM orders GROUP BY region",
        "SELECT region, SUM(amount), COUNT(order_id), COUNT(order_id), COUNT(*), COUNT(DISTINCT customer_id),"
        " AVG(CAST(amount AS DOUBLE)), MIN(amount), MAX(amount), SUM(CASE WHEN amount >= 100 THEN 1 ELSE 0 END)"
        f" FROM {ORD} GROUP BY 1",
    ),
    "aggregates around non-plain metrics": Rule(
        "SELECT region, SUM(avg_order_value), MAX(median_amount), MIN(buyers), ANY_VALUE(completed_revenue),"
        " AVG(p90_amount) FROM orders WHERE order_date < DATE '2024-02-01' GROUP BY region",
        "SELECT region, CAST(SUM(amount) AS DOUBLE) / COUNT(*), quantile_cont(CAST(amount AS DOUBLE), 0.5),"
        " COUNT(DISTINCT customer_id), SUM(amount) FILTER (WHERE lower(status) = 'completed'),"
        " quantile_cont(CAST(amount AS DOUBLE), 0.9)"
        f" FROM {ORD} WHERE order_date < DATE '2024-02-01' GROUP BY 1",
    ),
    "percentiles": Rule(
        "SELECT customer__region, MEASURE(median_amount), MEASURE(p90_amount), MEASURE(p90_amount_disc)"
        " FROM orders GROUP BY 1",
        "SELECT c.region, quantile_cont(CAST(o.amount AS DOUBLE), 0.5), quantile_cont(CAST(o.amount AS DOUBLE), 0.9),"
        f" CAST(quantile_disc(o.amount, 0.9) AS DOUBLE) FROM {OC} GROUP BY 1",
    ),
    **{
        f"date_trunc {grain}": Rule(
            f"SELECT DATE_TRUNC('{grain}', order_date) AS t, MEASURE(revenue) FROM orders GROUP BY 1",
            f"SELECT DATE_TRUNC('{grain}', order_date), SUM(amount) FROM {ORD} GROUP BY 1",
        )
        for grain in ("day", "week", "month", "quarter", "year")
    },
    "date_trunc hour": Rule(
        "SELECT DATE_TRUNC('hour', visited_at) AS h, page, MEASURE(visit_count), MEASURE(visit_seconds)"
        " FROM visits WHERE visited_at >= TIMESTAMP '2024-01-05 09:30:00' GROUP BY 1, 2",
        "SELECT DATE_TRUNC('hour', visited_at), page, COUNT(visit_id), SUM(seconds) FROM shop.visits"
        " WHERE visited_at >= TIMESTAMP '2024-01-05 09:30:00' GROUP BY 1, 2",
    ),
    "metric_time at the hour": Rule(
        "SELECT DATE_TRUNC('day', metric_time), MEASURE(seconds_per_visit) FROM visits GROUP BY 1",
        "SELECT DATE_TRUNC('day', visited_at), CAST(SUM(seconds) AS DOUBLE) / COUNT(*) FROM shop.visits GROUP BY 1",
    ),
    "extract parts": Rule(
        "SELECT EXTRACT(dow FROM order_date) AS dow, EXTRACT(month FROM order_date) AS mo,"
        " EXTRACT(quarter FROM order_date) AS q, EXTRACT(day FROM order_date) AS d,"
        " EXTRACT(epoch FROM order_date) AS e, MEASURE(order_count) FROM orders GROUP BY 1, 2, 3, 4, 5",
        "SELECT EXTRACT(dow FROM order_date), EXTRACT(month FROM order_date), EXTRACT(quarter FROM order_date),"
        f" EXTRACT(day FROM order_date), EXTRACT(epoch FROM order_date), COUNT(*) FROM {ORD} GROUP BY ALL",
    ),
    "extract hour": Rule(
        "SELECT EXTRACT(hour FROM visited_at) AS h, EXTRACT(epoch FROM visited_at) AS e, MEASURE(visit_count)"
        " FROM visits GROUP BY 1, 2",
        "SELECT EXTRACT(hour FROM visited_at), EXTRACT(epoch FROM visited_at), COUNT(*) FROM shop.visits GROUP BY ALL",
    ),
    "casts": Rule(
        "SELECT CAST(order_date AS text) AS d, order_date::date AS d2, CAST(MEASURE(revenue) AS numeric) AS r,"
        " MEASURE(avg_order_value)::numeric AS aov, CAST(MEASURE(order_count) AS double precision) AS n"
        " FROM orders GROUP BY 1, 2",
        "SELECT CAST(order_date AS VARCHAR), order_date, SUM(amount), SUM(amount) / COUNT(*),"
        f" CAST(COUNT(*) AS DOUBLE) FROM {ORD} GROUP BY 1, 2",
    ),
    "integer division": Rule(
        "SELECT CAST(order AS int) / 3 AS third, MEASURE(order_count) / 2 AS half, 7 / 2 AS c,"
        " MEASURE(revenue) / MEASURE(order_count) AS avg FROM orders GROUP BY 1",
        "SELECT order_id // 3, COUNT(*) // 2, 3, SUM(amount) / COUNT(*) FROM shop.orders GROUP BY 1",
    ),
    "date arithmetic": Rule(
        "SELECT order_date - DATE '2024-01-01' AS days, MEASURE(revenue) FROM orders GROUP BY 1",
        "SELECT datediff('day', DATE '2024-01-01', order_date), SUM(amount) FROM shop.orders GROUP BY 1",
    ),
    "where own": Rule(
        "SELECT region, MEASURE(revenue) FROM orders WHERE (status IN ('completed', 'shipped') OR region = 'EU')"
        " AND NOT (order_date BETWEEN DATE '2024-01-06' AND DATE '2024-01-19') AND region LIKE '%U%'"
        " AND status ILIKE 'COMP%' AND status NOT LIKE 'x%' GROUP BY 1",
        "SELECT region, SUM(amount) FROM shop.orders WHERE (lower(status) IN ('completed', 'shipped') OR region = 'EU')"
        " AND NOT (order_date BETWEEN DATE '2024-01-06' AND DATE '2024-01-19') AND region LIKE '%U%'"
        " AND lower(status) ILIKE 'COMP%' GROUP BY 1",
    ),
    "where joined": Rule(
        "SELECT region, MEASURE(revenue) FROM orders WHERE customer__name ILIKE 'a%' OR customer__nation__name"
        " IN ('USA') OR NOT customer__region <> 'EU' GROUP BY 1",
        f"SELECT o.region, SUM(o.amount) FROM {OCN} WHERE c.name ILIKE 'a%' OR n.name IN ('USA')"
        " OR NOT c.region <> 'EU' GROUP BY 1",
    ),
    "where is null": Rule(
        "SELECT customer__region IS NULL AS orphan, MEASURE(revenue), MEASURE(order_count) FROM orders"
        " WHERE region IS NOT NULL AND customer__nation__name IS NULL GROUP BY 1",
        f"SELECT c.region IS NULL, SUM(o.amount), COUNT(*) FROM {OCN} WHERE o.region IS NOT NULL AND n.name IS NULL"
        " GROUP BY 1",
    ),
    "having": Rule(
        "SELECT customer__name, MEASURE(revenue) AS r FROM orders GROUP BY 1"
        " HAVING MEASURE(order_count) >= 2 AND SUM(revenue) < 300",
        f"SELECT c.name, SUM(o.amount) FROM {OC} GROUP BY 1 HAVING COUNT(*) >= 2 AND SUM(o.amount) < 300",
    ),
    "having and order by an unselected aggregate": Rule(
        "SELECT region FROM orders GROUP BY 1 HAVING MEASURE(revenue) > 10 ORDER BY MEASURE(order_count) DESC, 1",
        f"SELECT region FROM {ORD} GROUP BY 1 HAVING SUM(amount) > 10 ORDER BY COUNT(*) DESC, 1",
        ordered=True,
    ),
    "order desc": Rule(
        "SELECT customer__region, MEASURE(revenue) FROM orders GROUP BY 1 ORDER BY 1 DESC",
        f"SELECT c.region, SUM(o.amount) FROM {OC} GROUP BY 1 ORDER BY 1 DESC NULLS FIRST",
        ordered=True,
    ),
    "order nulls first": Rule(
        "SELECT region AS r, MEASURE(revenue) AS rev FROM orders GROUP BY r ORDER BY r NULLS FIRST LIMIT 2",
        f"SELECT region, SUM(amount) FROM {ORD} GROUP BY 1 ORDER BY 1 NULLS FIRST LIMIT 2",
        ordered=True,
    ),
    "order nulls last": Rule(
        "SELECT region, MEASURE(revenue) AS rev FROM orders GROUP BY 1 ORDER BY region DESC NULLS LAST, rev"
        " LIMIT 2 OFFSET 1",
        f"SELECT region, SUM(amount) FROM {ORD} GROUP BY 1 ORDER BY 1 DESC NULLS LAST LIMIT 2 OFFSET 1",
        ordered=True,
    ),
    "order by metric, limit": Rule(
        "SELECT customer, MEASURE(revenue) FROM orders GROUP BY 1 ORDER BY MEASURE(revenue) DESC LIMIT 2",
        f"SELECT customer_id, SUM(amount) FROM {ORD} GROUP BY 1 ORDER BY 2 DESC LIMIT 2",
        ordered=True,
    ),
    "distinct": Rule(
        "SELECT DISTINCT customer__region, is_large FROM orders",
        f"SELECT DISTINCT c.region, o.amount >= 100 FROM {OC}",
    ),
    "group by all": Rule(
        "SELECT customer__nation__name, is_large, MEASURE(buyers) FROM orders GROUP BY ALL",
        f"SELECT n.name, o.amount >= 100, COUNT(DISTINCT o.customer_id) FROM {OCN} GROUP BY ALL",
    ),
    "group by ordinal and alias": Rule(
        "SELECT status AS s, region, MEASURE(revenue) FROM orders GROUP BY s, 2",
        f"SELECT lower(status), region, SUM(amount) FROM {ORD} GROUP BY 1, 2",
    ),
    "group by expression": Rule(
        "SELECT COALESCE(customer__region, 'n/a') || '-' || status, MEASURE(revenue) FROM orders"
        " GROUP BY COALESCE(customer__region, 'n/a') || '-' || status",
        f"SELECT COALESCE(c.region, 'n/a') || '-' || lower(o.status), SUM(o.amount) FROM {OC} GROUP BY 1",
    ),
    "select star": Rule(
        "SELECT * FROM customers",
        "SELECT name, region, signup_date, COUNT(*) FROM shop.customers GROUP BY ALL",
    ),
    "select star of a timestamp model": Rule(
        "SELECT * FROM visits",
        "SELECT page, visited_at, COUNT(*), SUM(seconds), SUM(seconds) / COUNT(*) FROM shop.visits GROUP BY ALL",
    ),
    "nested subquery": Rule(
        "SELECT r, rev * 2 FROM (SELECT region AS r, MEASURE(revenue) AS rev FROM orders GROUP BY 1) s WHERE rev > 100",
        f"SELECT region, SUM(amount) * 2 FROM {ORD} GROUP BY 1 HAVING SUM(amount) > 100",
    ),
    "nested cte and union": Rule(
        "WITH a AS (SELECT customer__region AS g, MEASURE(revenue) AS v FROM orders GROUP BY 1),"
        " b AS (SELECT page AS g, MEASURE(visit_count) AS v FROM visits GROUP BY 1)"
        " SELECT g, v FROM a UNION ALL SELECT g, v FROM b",
        f"SELECT c.region, SUM(o.amount) FROM {OC} GROUP BY 1"
        " UNION ALL SELECT page, COUNT(*) FROM shop.visits GROUP BY 1",
    ),
    "nested in (subquery)": Rule(
        "SELECT customer, MEASURE(visit_count) FROM visits WHERE customer IN"
        " (SELECT customer FROM orders GROUP BY 1 HAVING MEASURE(revenue) > 150) GROUP BY 1",
        "SELECT customer_id, COUNT(*) FROM shop.visits WHERE customer_id IN"
        " (SELECT customer_id FROM shop.orders GROUP BY 1 HAVING SUM(amount) > 150) GROUP BY 1",
    ),
    "view at the outer grain": Rule(
        "SELECT v.status, MAX(v.avg_order_value), SUM(v.revenue) FROM (SELECT status, order_date, avg_order_value,"
        " revenue FROM orders) v GROUP BY 1",
        f"SELECT lower(status), CAST(SUM(amount) AS DOUBLE) / COUNT(*), SUM(amount) FROM {ORD} GROUP BY 1",
    ),
    "view run alone": Rule(
        "SELECT customer__region, buyers FROM orders",
        f"SELECT c.region, COUNT(DISTINCT o.customer_id) FROM {OC} GROUP BY 1",
    ),
    "entity key": Rule(
        "SELECT order, customer, MEASURE(revenue) FROM orders WHERE customer IS NOT NULL GROUP BY 1, 2",
        f"SELECT order_id, customer_id, SUM(amount) FROM {ORD} GROUP BY 1, 2",
    ),
    "tableau names": Rule(
        'SELECT "orders"."customer__region" AS "cr", SUM("orders"."revenue") AS "sum:revenue:ok"'
        ' FROM "production"."orders" "orders" WHERE ("orders"."status" IN (\'completed\')) GROUP BY 1',
        f"SELECT c.region, SUM(o.amount) FROM {OC} WHERE lower(o.status) = 'completed' GROUP BY 1",
    ),
    "metabase names": Rule(
        'SELECT "production"."orders"."status" AS "status", COUNT(*) AS "count",'
        ' AVG("production"."orders"."avg_amount") AS "avg" FROM "production"."orders"'
        ' GROUP BY "production"."orders"."status" ORDER BY "production"."orders"."status" ASC',
        f"SELECT lower(status), COUNT(*), AVG(CAST(amount AS DOUBLE)) FROM {ORD} GROUP BY 1 ORDER BY 1",
        ordered=True,
    ),
    "ratio whole": Rule(
        "SELECT MEASURE(avg_order_value), MEASURE(revenue_per_unit) FROM metrics",
        "SELECT (SELECT CAST(SUM(amount) AS DOUBLE) / COUNT(*) FROM shop.orders),"
        " (SELECT CAST(SUM(quantity * price) AS DOUBLE) / SUM(quantity) FROM shop.items)",
    ),
    "ratio by month": Rule(
        "SELECT DATE_TRUNC('month', order_date), MEASURE(avg_order_value) FROM orders GROUP BY 1",
        f"SELECT DATE_TRUNC('month', order_date), CAST(SUM(amount) AS DOUBLE) / COUNT(*) FROM {ORD} GROUP BY 1",
    ),
    "derived within": Rule(
        "SELECT customer__nation__name, MEASURE(completed_share) FROM orders GROUP BY 1",
        "SELECT n.name, CAST(SUM(o.amount) FILTER (WHERE lower(o.status) = 'completed') AS DOUBLE) / SUM(o.amount)"
        f" FROM {OCN} GROUP BY 1",
    ),
    "derived across": Rule(
        "SELECT order__region, MEASURE(net_revenue) FROM metrics WHERE order__region IS NOT NULL GROUP BY 1",
        "WITH r AS (SELECT region, SUM(amount) v FROM shop.orders WHERE region IS NOT NULL GROUP BY 1),"
        " f AS (SELECT o.region, SUM(f.refund_amount) v FROM shop.refunds f JOIN shop.orders o USING (order_id)"
        " WHERE o.region IS NOT NULL GROUP BY 1)"
        " SELECT COALESCE(r.region, f.region), r.v - f.v FROM r FULL JOIN f ON r.region = f.region",
    ),
    "offset window": Rule(
        "SELECT DATE_TRUNC('month', metric_time), MEASURE(revenue_growth_mom) FROM orders GROUP BY 1",
        f"WITH m AS ({MONTHLY}) SELECT m.m, CAST(m.r - p.r AS DOUBLE) / p.r FROM m"
        " LEFT JOIN m p ON p.m = m.m - INTERVAL 1 MONTH",
    ),
    "offset to grain by day": Rule(
        "SELECT metric_time, MEASURE(revenue), MEASURE(revenue_vs_month_start) FROM orders GROUP BY 1",
        "WITH d AS (SELECT order_date AS day, SUM(amount) AS r FROM shop.orders GROUP BY 1)"
        " SELECT d.day, d.r, d.r - s.r FROM d LEFT JOIN d s ON s.day = DATE_TRUNC('month', d.day)",
    ),
    "offset to grain by month": Rule(
        "SELECT DATE_TRUNC('month', metric_time), MEASURE(revenue_vs_month_start) FROM orders GROUP BY 1",
        "SELECT DATE_TRUNC('month', order_date), 0 FROM shop.orders GROUP BY 1",
    ),
    "cumulative by month": Rule(
        "SELECT DATE_TRUNC('month', metric_time), MEASURE(revenue_all_time), MEASURE(revenue_mtd) FROM orders"
        " GROUP BY 1",
        f"WITH m AS ({MONTHLY}) SELECT m, SUM(r) OVER (ORDER BY m), r FROM m",
    ),
    "cumulative window by day": Rule(
        "SELECT metric_time, MEASURE(revenue_7d) FROM orders WHERE metric_time BETWEEN DATE '2024-01-10'"
        " AND DATE '2024-02-20' GROUP BY 1",
        "SELECT d.order_date, (SELECT SUM(amount) FROM shop.orders o WHERE o.order_date BETWEEN d.order_date - 6"
        " AND d.order_date) FROM shop.orders d WHERE d.order_date BETWEEN DATE '2024-01-10' AND DATE '2024-02-20'",
    ),
    "semi-additive": Rule(
        "SELECT region, MEASURE(open_balance) FROM orders GROUP BY 1",
        "SELECT region, SUM(balance) FROM (SELECT region, balance,"
        " order_date = MAX(order_date) OVER (PARTITION BY region) AS last FROM shop.orders) WHERE last GROUP BY 1",
    ),
    "filtered metric": Rule(
        "SELECT status, MEASURE(eu_customer_revenue), MEASURE(completed_revenue) FROM orders GROUP BY 1",
        "SELECT lower(o.status), SUM(o.amount) FILTER (WHERE c.region = 'EU'),"
        f" SUM(o.amount) FILTER (WHERE lower(o.status) = 'completed') FROM {OC} GROUP BY 1",
    ),
    "measure filter": Rule(
        "SELECT region, MEASURE(revenue) FILTER (WHERE customer__region = 'EU' OR status LIKE 'c%') AS r,"
        " MEASURE(avg_order_value) FILTER (WHERE is_large) AS a FROM orders GROUP BY 1",
        "SELECT o.region, SUM(o.amount) FILTER (WHERE c.region = 'EU' OR lower(o.status) LIKE 'c%'),"
        f" CAST(SUM(o.amount) FILTER (WHERE o.amount >= 100) AS DOUBLE) / COUNT(*) FILTER (WHERE o.amount >= 100)"
        f" FROM {OC} GROUP BY 1",
    ),
    "join one hop": Rule(
        "SELECT order__status, order__customer__region, MEASURE(quantity), MEASURE(item_count) FROM items GROUP BY 1, 2",
        "SELECT lower(o.status), c.region, SUM(i.quantity), COUNT(i.item_id) FROM shop.items i"
        f" LEFT JOIN {OC} ON i.order_id = o.order_id GROUP BY 1, 2",
    ),
    "join two hops": Rule(
        "SELECT customer__nation__name, customer__name, MEASURE(visit_count) FROM visits GROUP BY 1, 2",
        "SELECT n.name, c.name, COUNT(*) FROM shop.visits v LEFT JOIN shop.customers c USING (customer_id)"
        " LEFT JOIN shop.nations n ON c.nation_id = n.nation_id GROUP BY 1, 2",
    ),
}


def same(rows: Sequence[Sequence[object]], ordered: bool) -> list[tuple[object, ...]]:
    """Rows with numbers as floats to 9 places and timestamps without zone, sorted unless
    their order is the answer."""

    def value(v: object) -> object:
        if isinstance(v, int | float | decimal.Decimal) and not isinstance(v, bool):
            return round(float(v), 9)
        if isinstance(v, datetime.datetime):
            return v.replace(tzinfo=None)
        return v

    out = [tuple(value(v) for v in r) for r in rows]
    return out if ordered else sorted(out, key=lambda r: tuple((v is not None, str(v)) for v in r))


@pytest.mark.parametrize("name", list(RULES))
def test_rule_gives_the_numbers_of_hand_written_sql(
    name: str, con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    rule = RULES[name]
    ours = con.execute(compile_query(rule.ours, registry).sql).fetchall()
    assert same(ours, rule.ordered) == same(con.execute(rule.by_hand).fetchall(), rule.ordered)
