"""route(): statements split by token position, each routed with its exact text."""

from __future__ import annotations

import pytest

from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry
from semproxy.sql.route import Catalog, Empty, Metric, Refused, route
from tests.compiler_fixtures import load_database


def test_split_keeps_each_statement_byte_for_byte(registry: Registry) -> None:
    text = "SET  application_name = 'a;b' ;\n/* c; */ SELECT 1 -- x;\n; ; SHOW \"TimeZone\""
    routed = route(text, registry)
    assert routed == [
        Catalog("SET  application_name = 'a;b'"),
        Catalog("/* c; */ SELECT 1 -- x;"),  # the ; inside the line comment is comment
        Catalog('SHOW "TimeZone"'),
    ]


@pytest.mark.parametrize("text", ["", "   ", ";", " ; ;\n", "-- only a comment"])
def test_empty_query_string(registry: Registry, text: str) -> None:
    assert route(text, registry) == [Empty()]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT version()",
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
        "SELECT * FROM information_schema.columns WHERE table_schema = 'production'",
        "SET search_path TO production",
        "SET TIME ZONE 'UTC'",
        "SHOW server_version",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "DISCARD ALL",
        "DEALLOCATE ALL",
        "CREATE TEMP TABLE t (a int)",
        'CREATE LOCAL TEMPORARY TABLE "#Tableau_1_Connect" (a int)',
        'INSERT INTO "#Tableau_1_Connect" VALUES (1)',
        "DROP TABLE pg_temp.t",
        "COPY (SELECT 1) TO STDOUT",
        "SELECT $$ unparseable ( $$ +",
        "EXPLAIN SELECT 1",
    ],
)
def test_catalog_statements(registry: Registry, sql: str) -> None:
    assert route(sql, registry) == [Catalog(sql)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO production.orders VALUES (1)",
        "INSERT INTO orders VALUES (1)",
        "UPDATE orders SET region = 'x'",
        "DELETE FROM public.t",
        "MERGE INTO main.t USING u ON t.a = u.a WHEN MATCHED THEN DELETE",
        "CREATE TABLE t (a int)",
        "CREATE VIEW v AS SELECT 1",
        "DROP TABLE production.orders",
        "DROP SCHEMA production",
        "ALTER TABLE t ADD COLUMN b int",
        "GRANT SELECT ON t TO u",
        "REVOKE SELECT ON t FROM u",
        "TRUNCATE production.orders",
        "COPY t FROM STDIN",
        "WITH d AS (DELETE FROM main.t RETURNING *) SELECT * FROM d",
    ],
)
def test_writes_are_refused(registry: Registry, sql: str) -> None:
    [routed] = route(sql, registry)
    assert isinstance(routed, Refused) and routed.sql == sql
    assert routed.error.sqlstate == "25006", routed.error


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region, MEASURE(revenue) FROM orders GROUP BY 1",
        'SELECT "orders"."region" AS "region", SUM("orders"."revenue") AS "sum:revenue:ok"'
        ' FROM "production"."orders" "orders" GROUP BY 1',
        "SELECT * FROM production.metrics LIMIT 10",
        "WITH t AS (SELECT region, MEASURE(revenue) AS r FROM orders GROUP BY 1) SELECT region FROM t WHERE r > 1",
    ],
)
def test_metric_statements_are_compiled(registry: Registry, sql: str) -> None:
    [routed] = route(sql, registry)
    assert isinstance(routed, Metric), routed
    assert routed.sql == sql


def test_search_path_resolves_unqualified_names(registry: Registry) -> None:
    assert isinstance(route("SELECT * FROM orders", registry, search_path=["production"])[0], Metric)
    assert route("SELECT * FROM orders", registry, search_path=["public"]) == [
        Catalog("SELECT * FROM orders")
    ]


def test_mixing_metric_tables_and_other_relations_is_refused(registry: Registry) -> None:
    [routed] = route(
        "SELECT o.region FROM orders o WHERE o.region IN (SELECT relname FROM pg_class)", registry
    )
    assert isinstance(routed, Refused)
    assert routed.error.sqlstate == "0A000" and "pg_class" in routed.error.message


def test_unknown_tables_and_errors_point_into_the_whole_string(registry: Registry) -> None:
    text = "SELECT 1; SELECT MEASURE(revenue) FROM production.ordrs"
    first, second = route(text, registry)
    assert first == Catalog("SELECT 1")
    assert isinstance(second, Refused) and second.error.sqlstate == "42P01"
    assert second.error.hint and "orders" in second.error.hint and "metrics" in second.error.hint
    assert second.error.position == text.index("production.ordrs") + 1
    [unqualified] = route("SELECT MEASURE(revenue) FROM ordrs", registry)
    assert isinstance(unqualified, Refused) and unqualified.error.sqlstate == "42P01"
    text = "SELECT 1;\nSELECT regoin FROM orders"
    [_, bad] = route(text, registry)
    assert isinstance(bad, Refused) and bad.error.position == text.index("regoin") + 1


def test_explain_returns_the_warehouse_sql_as_rows(registry: Registry) -> None:
    sql = "EXPLAIN SELECT region, MEASURE(revenue) FROM orders GROUP BY 1"
    [routed] = route(sql, registry)
    assert isinstance(routed, Metric) and routed.compiled.columns == ("QUERY PLAN",)
    con = load_database()
    lines = [r[0] for r in con.execute(routed.compiled.sql).fetchall()]
    expected = compile_query("SELECT region, MEASURE(revenue) FROM orders GROUP BY 1", registry).tree
    assert "\n".join(lines) == expected.sql(dialect="duckdb", pretty=True)
    [verbose] = route("EXPLAIN (ANALYZE, VERBOSE) SELECT MEASURE(revenue) FROM orders", registry)
    assert isinstance(verbose, Metric)


def test_routes_are_cached_per_registry_but_refusals_are_not(registry: Registry) -> None:
    fresh = Registry(categories=registry.categories)
    text = "SELECT 1; SELECT region, MEASURE(revenue) FROM orders GROUP BY 1"
    first = route(text, fresh)
    again = route(text, fresh)
    assert first == again and first[1] is again[1]
    bad = "SELECT 1; SELECT regoin FROM orders"
    one, two = route(bad, fresh)[1], route(bad, fresh)[1]
    assert isinstance(one, Refused) and isinstance(two, Refused)
    assert one.error is not two.error and one.error.position == two.error.position == bad.index("regoin") + 1
