"""The compiler's contract beyond numbers: errors (SQLSTATE, message, hint, position),
output names, the plan cache, dialects, and the virtual tables it exposes."""

from __future__ import annotations

import time

import pytest
import sqlglot
from sqlglot import exp

from semproxy.errors import SemproxyError
from semproxy.plan import compile as compile_module
from semproxy.plan.compile import compile_query
from semproxy.plan.prepared import compile_prepared
from semproxy.plan.tables import virtual_tables
from semproxy.semantic.model import SemanticModel
from semproxy.semantic.registry import Category, Registry
from semproxy.sql.parse import mask_literals
from tests.compiler_fixtures import load_database


def error(registry: Registry, sql: str) -> SemproxyError:
    with pytest.raises(SemproxyError) as caught:
        compile_query(sql, registry)
    return caught.value


ERRORS = [
    # sql, sqlstate, in message, in hint, position of (substring)
    (
        "SELECT region, revenue FROM orders GROUP BY region",
        "42803",
        '"revenue"',
        "MEASURE(revenue)",
        "revenue FROM",
    ),
    ("SELECT MEASURE(revenue) FROM orders WHERE revenue > 10", "42803", "WHERE", "HAVING", "revenue >"),
    ("SELECT MAX(revenue) FROM orders", "42803", "revenue", "SUM(revenue)", "MAX("),
    ("SELECT COUNT(buyers) FROM orders", "42803", "buyers", "COUNT(DISTINCT buyers)", "COUNT("),
    (
        "SELECT STDDEV(avg_order_value) FROM orders",
        "42803",
        "avg_order_value",
        "MEASURE(avg_order_value)",
        "STDDEV(",
    ),
    ("SELECT regoin, MEASURE(revenue) FROM orders GROUP BY 1", "42703", '"regoin"', '"region"', "regoin"),
    ("SELECT MEASURE(revenue) FROM ordrs", None, None, None, None),
    ("SELECT MEASURE(revenue) FROM production.ordrs", "42P01", "ordrs", "orders", "production.ordrs"),
    (
        "SELECT DATE_TRUNC('hour', order_date), MEASURE(revenue) FROM orders GROUP BY 1",
        "22023",
        "hour",
        "day",
        "order_date",
    ),
    ("SELECT region, MEASURE(revenue) FROM orders", "42803", '"region"', "GROUP BY", "region,"),
    ("SELECT MEASURE(region) FROM orders", "42803", "dimension", None, "MEASURE("),
    ("SELECT region FROM orders GROUP BY MEASURE(revenue)", "42803", "GROUP BY", None, "MEASURE(revenue)"),
    ("SELECT x.region FROM orders o GROUP BY 1", "42P01", '"x"', None, "x.region"),
    ("SELECT region, MEASURE(revenue) FROM orders GROUP BY 3", "42803", "position 3", None, "3"),
    ("SELECT product, MEASURE(revenue) FROM metrics GROUP BY 1", "42703", "product", None, "product"),
    (
        "SELECT item__product, MEASURE(revenue) FROM metrics GROUP BY 1",
        "42803",
        "revenue",
        None,
        "item__product",
    ),
    ("SELECT MEASURE(revenue) FROM orders JOIN items ON true", "0A000", "metrics table", "metrics", "items"),
    ("SELECT COUNT(*) FROM metrics", "0A000", "model table", None, "COUNT("),
    (
        "SELECT metric_time, MEASURE(quantity) FROM metrics GROUP BY 1",
        "42803",
        "agg_time_dimension",
        None,
        "metric_time",
    ),
    ("SELECT SUM(revenue * 2) FROM orders", "42803", "on its own", "MEASURE(revenue)", "revenue *"),
    (
        "SELECT MEASURE(revenue) FILTER (WHERE revenue > 1) FROM orders",
        "42803",
        "FILTER",
        "HAVING",
        "revenue >",
    ),
    (
        "SELECT region, MEASURE(revenue) FROM orders GROUP BY 1 HAVING status = 'x'",
        "42803",
        '"status"',
        "GROUP BY",
        "status =",
    ),
    ("SELECT region, MEASURE(revenue_7d) FROM orders GROUP BY 1", "0A000", "metric_time", None, None),
]


@pytest.mark.parametrize(("sql", "state", "message", "hint", "at"), ERRORS)
def test_errors_say_what_and_where(
    registry: Registry, sql: str, state: str | None, message: str | None, hint: str | None, at: str | None
) -> None:
    if state is None:  # an unqualified unknown table is not a metric table: route sends it to the catalog
        with pytest.raises(SemproxyError):
            compile_query(sql, registry)
        return
    err = error(registry, sql)
    assert err.sqlstate == state, err
    assert message is None or message in err.message, err.message
    assert hint is None or (err.hint and hint in err.hint), err.hint
    assert at is None or err.position == sql.index(at) + 1, (err.position, sql.index(at) + 1)


def test_output_names_follow_postgres(registry: Registry) -> None:
    compiled = compile_query(
        'SELECT "orders"."region", MEASURE(revenue), SUM(order_count), DATE_TRUNC(\'month\', order_date),'
        ' CAST(order_date AS date), COUNT(*), 1 + 1, MEASURE(revenue) AS "Rev" FROM "production"."orders" "orders"'
        " GROUP BY 1, 4, 5",
        registry,
    )
    assert compiled.columns == (
        "region",
        "revenue",
        "sum",
        "date_trunc",
        "order_date",
        "count",
        "?column?",
        "Rev",
    )


def test_select_star_lists_own_dimensions_then_every_metric(registry: Registry) -> None:
    compiled = compile_query("SELECT * FROM items", registry)
    assert compiled.columns == ("product", "quantity", "item_revenue", "item_count", "revenue_per_unit")


def test_plan_cache_reuses_the_plan_for_other_literals(registry: Registry) -> None:
    fresh = Registry(categories=registry.categories)
    sql = "SELECT region, MEASURE(revenue) FROM orders WHERE status = 'completed' GROUP BY 1 LIMIT 5"
    start = time.perf_counter()
    cold = compile_query(sql, fresh)
    cold_ms = (time.perf_counter() - start) * 1000
    other = compile_query(sql.replace("'completed'", "'cancelled'").replace("5", "7"), fresh)
    assert "'cancelled'" in other.sql and "LIMIT 7" in other.sql and "'completed'" not in other.sql
    start = time.perf_counter()
    for _ in range(100):
        again = compile_query(sql, fresh)
    hit_ms = (time.perf_counter() - start) * 10
    assert again is cold
    assert hit_ms < 0.1, hit_ms
    assert cold_ms < 50, cold_ms  # generous for a loaded CI machine; typically a few ms


def test_a_shape_hit_neither_parses_nor_plans(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Registry(categories=registry.categories)
    sql = (
        "SELECT customer__region, MEASURE(revenue) FROM orders WHERE status IN ({}, 'x')"
        " AND order_date >= DATE {} GROUP BY 1 HAVING MEASURE(revenue) > {} LIMIT {}"
    )
    cold = compile_query(sql.format("'completed'", "'2024-01-01'", 10, 5), fresh, dialect="spark")
    monkeypatch.setattr(compile_module, "parse_statement", _never)
    monkeypatch.setattr(compile_module, "compile_tree", _never)
    hit = compile_query(sql.format("'it''s'", "'2024-02-01'", 2.5, 7), fresh, dialect="spark")
    expected = (
        cold.sql.replace("'completed'", "'it\\'s'")  # Spark escapes a quote with a backslash
        .replace("2024-01-01", "2024-02-01")
        .replace("> 10", "> 2.5")
        .replace("LIMIT 5", "LIMIT 7")
    )
    assert hit.sql == expected
    assert hit.tree.sql(dialect="spark") == expected  # the tree, built on demand, says the same
    samples = []
    for i in range(200):
        start = time.perf_counter()
        compile_query(sql.format(f"'v{i}'", "'2024-03-01'", i, i), fresh, dialect="spark")
        samples.append((time.perf_counter() - start) * 1000)
    assert sorted(samples)[100] < 0.5, sorted(samples)[100]  # ~0.05 ms on a quiet machine


def _never(*args: object) -> None:
    raise AssertionError("a plan-cache hit parsed or planned")


def test_literals_that_shape_the_plan_are_part_of_its_key(registry: Registry) -> None:
    sql = "SELECT DATE_TRUNC({}, order_date), MEASURE(revenue) FROM orders WHERE region = 'EU' GROUP BY 1 ORDER BY 1"
    month = compile_query(sql.format("'month'"), registry).sql
    week = compile_query(sql.format("'week'"), registry).sql
    assert "MONTH" in month.upper() and "WEEK" in week.upper() and "MONTH" not in week.upper()
    by_position = compile_query(
        "SELECT region, status, MEASURE(revenue) FROM orders GROUP BY 1, 2 ORDER BY 2", registry
    )
    other = compile_query(
        "SELECT region, status, MEASURE(revenue) FROM orders GROUP BY 1, 2 ORDER BY 3", registry
    )
    assert by_position.sql != other.sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT MEASURE(revenue) FROM orders WHERE status = E'it\\'s'",  # escape string: not masked
        "SELECT MEASURE(revenue) FROM orders /* a 'comment' */ WHERE status = 'x'",
        "SELECT MEASURE(revenue) FROM orders WHERE status = $$x$$",
    ],
)
def test_texts_the_mask_cannot_read_still_compile(registry: Registry, sql: str) -> None:
    assert mask_literals(sql) is None
    assert "SUM(" in compile_query(sql, registry).sql


def test_the_mask_skips_quoted_names_and_comments() -> None:
    masked = mask_literals("SELECT \"a'b\", t1.x FROM \"t2\" WHERE y = 3 -- 'c' 4\n AND z = 'd''e'")
    assert masked is not None
    assert [(lit.is_string, lit.value) for lit in masked.literals] == [(False, "3"), (True, "d'e")]


def test_cache_is_per_registry(registry: Registry) -> None:
    sql = "SELECT MEASURE(revenue) FROM orders"
    assert compile_query(sql, registry) is compile_query(sql, registry)
    assert compile_query(sql, Registry(categories=registry.categories)) is not compile_query(sql, registry)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "databricks"])
def test_dialects_keep_exact_percentiles_and_double_division(registry: Registry, dialect: str) -> None:
    compiled = compile_query(
        "SELECT order__region, MEASURE(p90_amount), MEASURE(avg_order_value), MEASURE(net_revenue) FROM metrics"
        " WHERE order__region IS NOT NULL GROUP BY 1",
        registry,
        dialect=dialect,
    )
    assert "APPROX" not in compiled.sql.upper()
    assert "DECIMAL(10, 0)" not in compiled.sql.upper()
    sqlglot.parse_one(compiled.sql, read=dialect)  # the engine's dialect reads it back


def test_virtual_tables_columns_in_spec_order(registry: Registry) -> None:
    tables = {(t.schema, t.name): t for t in virtual_tables(registry)}
    orders = tables[("production", "orders")]
    names = [c.name for c in orders.columns]
    assert names[:6] == ["region", "status", "is_large", "order_date", "order", "customer"]
    assert names[6] == "metric_time"
    assert "customer__region" in names and "customer__nation__name" in names
    assert names.index("customer__nation__name") < names.index("revenue")
    assert {c.kind for c in orders.columns} == {"dimension", "time", "entity", "metric"}
    region = next(c for c in orders.columns if c.name == "region")
    assert region.description == "Sales region of the order."
    metrics = tables[("production", "metrics")]
    mnames = [c.name for c in metrics.columns]
    assert {
        "order__region",
        "customer__region",
        "nation__name",
        "metric_time",
        "revenue",
        "quantity",
        "refunded",
    } <= set(mnames)
    assert "revenue_per_unit" in [c.name for c in tables[("production", "items")].columns]


def test_engine_traps_are_rewritten(registry: Registry) -> None:
    sql = (
        "SELECT EXTRACT(dow FROM order_date) AS d, EXTRACT(epoch FROM order_date) AS e,"
        " CAST(MEASURE(revenue) AS numeric) AS r FROM orders GROUP BY 1, 2"
    )
    spark = compile_query(sql, registry, dialect="spark").sql
    assert "(EXTRACT(DOW FROM t0.order_date) - 1)" in spark  # Spark counts Sunday as 1
    assert "UNIX_MICROS(" in spark and "EPOCH" not in spark
    for dialect in ("duckdb", "spark", "databricks"):
        assert "DECIMAL(38, 10)" in compile_query(sql, registry, dialect=dialect).sql  # never DECIMAL(10, 0)
    assert "CAST(_m0 AS DECIMAL)" in compile_query(sql, registry, dialect="postgres").sql


PREPARED = (
    "SELECT DATE_TRUNC($1, order_date) AS m, MEASURE(revenue) FROM orders WHERE status = $2"
    " AND order_date >= $3 AND region IN ($4, 'EU') GROUP BY 1 ORDER BY 1 LIMIT $5"
)


def _values(grain: str, status: str, since: str, region: exp.Expr, limit: int) -> list[exp.Expr]:
    """What params.py binds for text parameters typed (text, text, date, text, int4)."""
    day = exp.cast(exp.Literal.string(since), "DATE")
    return [exp.Literal.string(grain), exp.Literal.string(status), day, region, exp.Literal.number(limit)]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "databricks"])
def test_prepared_statements_give_what_the_bound_tree_gives(registry: Registry, dialect: str) -> None:
    fresh = Registry(categories=registry.categories)
    tree = sqlglot.parse_one(PREPARED, read="postgres")
    for values in [
        _values("month", "completed", "2024-01-01", exp.Literal.string("US"), 5),
        _values("month", "it's", "2024-02-01", exp.Null(), 7),  # NULL: a value of another kind
        _values("week", "x", "2023-01-01", exp.Literal.string("US"), 1),  # a unit shapes the plan
        _values("month", "completed", "2024-03-01", exp.Literal.string("APAC"), 2),
    ]:
        bound = tree.transform(
            lambda n, v=values: v[int(n.name) - 1].copy() if isinstance(n, exp.Parameter) else n
        )
        assert (
            compile_prepared(PREPARED, fresh, values, dialect=dialect).sql
            == compile_query(bound, registry, dialect=dialect).sql
        )


def test_a_prepared_statement_is_parsed_and_planned_once_per_kind_of_values(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Registry(categories=registry.categories)
    cold = compile_prepared(PREPARED, fresh, _values("month", "a", "2024-01-01", exp.Literal.string("US"), 5))
    monkeypatch.setattr(compile_module, "parse_statement", _never)
    monkeypatch.setattr(compile_module, "compile_tree", _never)
    samples = []
    for i in range(200):
        start = time.perf_counter()
        hit = compile_prepared(
            PREPARED, fresh, _values("month", f"v{i}", "2024-02-01", exp.Literal.string("US"), i)
        )
        samples.append((time.perf_counter() - start) * 1000)
    assert hit.sql == cold.sql.replace("'a'", "'v199'").replace("2024-01-01", "2024-02-01").replace(
        "LIMIT 5", "LIMIT 199"
    )
    assert sorted(samples)[100] < 0.5, sorted(samples)[100]  # ~0.05 ms on a quiet machine
    with pytest.raises(AssertionError, match="parsed or planned"):  # another unit is another plan
        compile_prepared(PREPARED, fresh, _values("year", "a", "2024-01-01", exp.Literal.string("US"), 5))


def _with_model(registry: Registry, doc: dict[str, object]) -> Registry:
    models = dict(registry.categories["production"].models)
    model = SemanticModel.model_validate(doc)
    models[model.name] = model
    return Registry(categories={"production": Category("production", models)})


def test_an_offset_window_with_offset_to_grain_is_refused(registry: Registry) -> None:
    orders = registry.categories["production"].models["orders"].model_dump(exclude_none=True, by_alias=True)
    both = {"name": "revenue", "alias": "start", "offset_window": "1 month", "offset_to_grain": "month"}
    orders["metrics"] = [
        {
            "name": "revenue_vs_last_month_start",
            "type": "derived",
            "type_params": {"expr": "revenue - start", "metrics": ["revenue", both]},
        }
    ]
    with pytest.raises(SemproxyError) as caught:
        compile_query(
            "SELECT metric_time, MEASURE(revenue_vs_last_month_start) FROM orders GROUP BY 1",
            _with_model(registry, orders),
        )
    assert caught.value.sqlstate == "0A000" and "offset_to_grain" in str(caught.value)


ATTRIBUTIONS = {  # reaches customers by two paths of two hops: order -> customer, visit -> customer
    "name": "attributions",
    "model": "shop.attributions",
    "defaults": {"agg_time_dimension": "attributed_at"},
    "entities": [
        {"name": "attribution", "type": "primary", "expr": "attribution_id"},
        {"name": "order", "type": "foreign", "expr": "order_id"},
        {"name": "visit", "type": "foreign", "expr": "visit_id"},
    ],
    "dimensions": [{"name": "attributed_at", "type": "time", "type_params": {"time_granularity": "day"}}],
    "measures": [{"name": "attributions", "agg": "count", "expr": "attribution_id"}],
}


def test_a_dimension_reached_by_two_paths_is_ambiguous_but_its_full_paths_work_on_both_tables(
    registry: Registry,
) -> None:
    two_paths = _with_model(registry, ATTRIBUTIONS)
    with pytest.raises(SemproxyError) as caught:
        compile_query("SELECT customer__region, MEASURE(attributions) FROM metrics GROUP BY 1", two_paths)
    assert caught.value.sqlstate == "42702"
    assert "two join paths" in str(caught.value) and "full path" in (caught.value.hint or "")
    con = load_database()
    con.execute(
        "CREATE TABLE shop.attributions AS SELECT * FROM (VALUES (1, 1, 6, DATE '2024-01-05'),"
        " (2, 3, 3, DATE '2024-01-10'), (3, 6, 5, DATE '2024-02-20')) t(attribution_id, order_id, visit_id, attributed_at)"
    )
    sql = compile_query(
        "SELECT order__customer__name AS via_order, visit__customer__name AS via_visit, MEASURE(attributions)"
        " FROM attributions GROUP BY 1, 2",
        two_paths,
    ).sql
    assert sorted(con.execute(sql).fetchall(), key=str) == sorted(
        [("Alice", "Bob", 1), ("Bob", "Bob", 1), (None, None, 1)], key=str
    )  # order 6 is an orphan (customer 99); visit 5 too
    on_metrics = compile_query(
        "SELECT visit__customer__name, MEASURE(attributions) FROM metrics GROUP BY 1", two_paths
    ).sql
    assert sorted(con.execute(on_metrics).fetchall(), key=str) == sorted([("Bob", 2), (None, 1)], key=str)
