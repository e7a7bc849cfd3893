"""Property tests: random metric queries give the numbers of a naive, independent reference.

Hypothesis draws group-by columns (own and joined dimensions, DATE_TRUNC at every grain),
WHERE filters (IN, BETWEEN, IS [NOT] NULL on own and joined dimensions) and metrics
(simple, filtered, count distinct, ratio, derived, cross-model). The reference is SQL this
test writes over the raw tables: one model's rows LEFT JOINed to its one-side models and
aggregated, and for cross-model metrics one such aggregate per model FULL OUTER JOINed on
the keys. It shares no code with the compiler, and each drawn query runs through the plan
cache too (equal shapes with other values reuse a plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry
from tests.compiler_fixtures import rows

GRAINS = ["day", "week", "month", "quarter", "year"]
SETTINGS = settings(
    max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@dataclass(frozen=True)
class Column:
    name: str  # as the client writes it
    sql: dict[str, str]  # the raw-table expression, per model of the reference


# the orders table: own and joined dimensions, over `shop.orders o` joined to c and n
ORDER_DIMS = [
    Column("region", {"o": "o.region"}),
    Column("status", {"o": "lower(o.status)"}),
    Column("is_large", {"o": "o.amount >= 100"}),
    Column("customer__region", {"o": "c.region"}),
    Column("customer__nation__name", {"o": "n.name"}),
]
ORDER_METRICS = {
    "revenue": "SUM(o.amount)",
    "order_count": "COUNT(o.order_id)",
    "buyers": "COUNT(DISTINCT o.customer_id)",
    "completed_revenue": "SUM(o.amount) FILTER (WHERE lower(o.status) = 'completed')",
    "avg_order_value": "CAST(SUM(o.amount) AS DOUBLE) / NULLIF(COUNT(o.order_id), 0)",
    "completed_share": "CAST(SUM(o.amount) FILTER (WHERE lower(o.status) = 'completed') AS DOUBLE)"
    " / SUM(o.amount)",
}
ORDERS_FROM = (
    "shop.orders o LEFT JOIN shop.customers c ON o.customer_id = c.customer_id"
    " LEFT JOIN shop.nations n ON c.nation_id = n.nation_id"
)
VALUES = {
    "region": ["EU", "US", "APAC"],
    "status": ["completed", "cancelled", "shipped"],
    "customer__region": ["EU", "US"],
    "customer__nation__name": ["France", "USA", "Peru"],
}

# the metrics table: dimensions of orders and customers, seen from orders and from refunds
CROSS_DIMS = [
    Column("order__region", {"o": "o.region", "f": "o.region"}),
    Column("order__status", {"o": "lower(o.status)", "f": "lower(o.status)"}),
    Column("customer__region", {"o": "c.region", "f": "c.region"}),
]
REFUNDS_FROM = (
    "shop.refunds f LEFT JOIN shop.orders o ON f.order_id = o.order_id"
    " LEFT JOIN shop.customers c ON o.customer_id = c.customer_id"
)
TIME = {"o": "o.order_date", "f": "f.refund_date"}


@st.composite
def filters(draw: st.DrawFn, dims: list[Column], time: str) -> list[tuple[str, dict[str, str]]]:
    """Up to two WHERE conjuncts: (client SQL, reference SQL per model)."""
    out = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["in", "null", "between"]))
        if kind == "between":
            lo = draw(st.dates(min_value=_date("2023-12-01"), max_value=_date("2024-04-30")))
            hi = draw(st.dates(min_value=lo, max_value=_date("2024-05-31")))
            bounds = f"BETWEEN DATE '{lo}' AND DATE '{hi}'"
            out.append((f"{time} {bounds}", {m: f"{c} {bounds}" for m, c in TIME.items()}))
            continue
        dim = draw(st.sampled_from([d for d in dims if d.name != "is_large"]))
        if kind == "null":
            test = draw(st.sampled_from(["IS NULL", "IS NOT NULL"]))
            out.append((f"{dim.name} {test}", {m: f"{c} {test}" for m, c in dim.sql.items()}))
        else:
            key = dim.name.replace("order__", "")
            picked = draw(st.lists(st.sampled_from(VALUES[key]), min_size=1, max_size=3, unique=True))
            listed = "(" + ", ".join(f"'{v}'" for v in picked) + ")"
            out.append((f"{dim.name} IN {listed}", {m: f"{c} IN {listed}" for m, c in dim.sql.items()}))
    return out


def _date(text: str) -> Any:
    import datetime

    return datetime.date.fromisoformat(text)


@st.composite
def keys(draw: st.DrawFn, dims: list[Column], time: str) -> list[tuple[str, dict[str, str]]]:
    """Group-by columns: dimensions, and maybe one DATE_TRUNC of the time dimension."""
    chosen = draw(st.lists(st.sampled_from(dims), max_size=3, unique_by=lambda d: d.name))
    out = [(d.name, d.sql) for d in chosen]
    if draw(st.booleans()):
        grain = draw(st.sampled_from(GRAINS))
        trunc = {m: f"CAST(DATE_TRUNC('{grain}', {c}) AS DATE)" for m, c in TIME.items()}
        out.append((f"CAST(DATE_TRUNC('{grain}', {time}) AS DATE)", trunc))
    return out


def client_sql(
    table: str, key: list[tuple[str, Any]], metrics: list[str], where: list[tuple[str, Any]]
) -> str:
    items = [k for k, _ in key] + [f"MEASURE({m})" for m in metrics]
    sql = f"SELECT {', '.join(items)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(w for w, _ in where)
    return sql + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(key)))}" if key else "")


def reference(model: str, source: str, key: list[tuple[str, Any]], aggs: list[str], where: list[Any]) -> str:
    """One model's rows, joined to its one-side models, aggregated at the keys."""
    items = [k[model] for _, k in key] + aggs
    sql = f"SELECT {', '.join(items)} FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(w[model] for _, w in where)
    return sql + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(key)))}" if key else "")


def same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    def norm(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(round(float(v), 6) if isinstance(v, float) else v for v in r)

    return [norm(r) for r in got] == [norm(r) for r in want]


@SETTINGS
@given(
    key=keys(ORDER_DIMS, "order_date"),
    where=filters(ORDER_DIMS, "order_date"),
    metrics=st.lists(st.sampled_from(sorted(ORDER_METRICS)), min_size=1, max_size=4, unique=True),
)
def test_one_model_with_joined_dimensions(
    con: duckdb.DuckDBPyConnection, registry: Registry, key: Any, where: Any, metrics: list[str]
) -> None:
    sql = client_sql("orders", key, metrics, where)
    want = rows(con, reference("o", ORDERS_FROM, key, [ORDER_METRICS[m] for m in metrics], where))
    got = rows(con, compile_query(sql, registry).sql)
    assert same(got, want), (sql, got, want)


@SETTINGS
@given(
    key=keys(CROSS_DIMS, "metric_time"),
    where=filters(CROSS_DIMS, "metric_time"),
    metrics=st.lists(st.sampled_from(["revenue", "refunded", "net_revenue"]), min_size=1, unique=True),
)
def test_cross_model_metrics_on_the_metrics_table(
    con: duckdb.DuckDBPyConnection, registry: Registry, key: Any, where: Any, metrics: list[str]
) -> None:
    sql = client_sql("metrics", key, metrics, where)
    want = rows(con, cross_reference(key, where, metrics))
    got = rows(con, compile_query(sql, registry).sql)
    assert same(got, want), (sql, got, want)


def cross_reference(key: list[tuple[str, Any]], where: list[Any], metrics: list[str]) -> str:
    """Each model's aggregate at the keys, FULL OUTER JOINed on them when both are needed
    (only the models of the asked metrics make rows)."""
    names = [f"k{i}" for i in range(len(key))]
    columns = f"({', '.join([*names, 'v'])})"
    parts = {
        "a": reference("o", ORDERS_FROM, key, ["SUM(o.amount)"], where),
        "b": reference("f", REFUNDS_FROM, key, ["SUM(f.refund_amount)"], where),
    }
    needed = {m: {"revenue": "a", "refunded": "b", "net_revenue": "ab"}[m] for m in metrics}
    used = sorted(set("".join(needed.values())))
    sql = f"FROM ({parts[used[0]]}) {used[0]}{columns}"
    if len(used) == 2:
        on = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in names) or "true"
        sql += f" FULL OUTER JOIN ({parts['b']}) b{columns} ON {on}"
    keys = [f"COALESCE({', '.join(f'{u}.{k}' for u in used)})" for k in names]
    formulas = {"revenue": "a.v", "refunded": "b.v", "net_revenue": "a.v - b.v"}
    return f"SELECT {', '.join(keys + [formulas[m] for m in metrics])} {sql}"
