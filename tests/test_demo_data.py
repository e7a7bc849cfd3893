"""The demo warehouse: deterministic, fast, and holding the promised traps."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from semproxy.demo import generate
from semproxy.semantic.load import load_registry
from semproxy.semantic.model import Dimension, Entity, Measure

TABLES = ("customers", "products", "orders", "order_items", "refunds")
ROOT = Path(__file__).parent.parent / "semantic-models"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("demo") / "nested" / "demo.duckdb"
    start = time.perf_counter()
    generate(path)
    assert time.perf_counter() - start < 5.0
    return duckdb.connect(str(path), read_only=True)


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> object:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]


def contents(path: Path) -> dict[str, pa.Table]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {name: con.table(name).order(con.table(name).columns[0]).to_arrow_table() for name in TABLES}


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a.duckdb", orders=3000, seed=7)
    generate(tmp_path / "b.duckdb", orders=3000, seed=7)
    generate(tmp_path / "c.duckdb", orders=3000, seed=8)
    a, b, c = (contents(tmp_path / f"{x}.duckdb") for x in "abc")
    assert a == b
    assert a["orders"] != c["orders"]
    assert a["orders"].num_rows == 3000


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    generate(path, orders=2000)
    generate(path, orders=1000)
    assert contents(path)["orders"].num_rows == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.duckdb"]


def test_schema_matches_the_production_models(demo: duckdb.DuckDBPyConnection) -> None:
    registry = load_registry(ROOT)
    production = registry.category("production")
    assert production is not None
    for model in production.models.values():
        assert model.model is not None
        columns = set(demo.table(model.model).columns)
        nodes: list[Entity | Dimension | Measure] = [*model.entities, *model.dimensions, *model.measures]
        for node in nodes:
            tree = sqlglot.parse_one(node.expr or node.name, read="postgres")
            assert {c.name for c in tree.find_all(exp.Column)} <= columns, f"{model.name}.{node.name}"
    types = dict(demo.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'orders'").fetchall())
    assert types["amount"] == "DECIMAL(12,2)" and types["order_date"] == "DATE"
    assert types["ordered_at"] == "TIMESTAMP"


def test_orphan_orders_and_customers_without_orders(demo: duckdb.DuckDBPyConnection) -> None:
    orphans = one(demo, "SELECT count(*) FROM orders o ANTI JOIN customers c USING (customer_id)")
    assert 300 <= orphans <= 700  # type: ignore[operator]
    idle = one(demo, "SELECT count(*) FROM customers c ANTI JOIN orders o USING (customer_id)")
    assert idle > 1000  # type: ignore[operator]


def test_null_dimension_values(demo: duckdb.DuckDBPyConnection) -> None:
    share = one(demo, "SELECT avg((region IS NULL)::int) FROM orders")
    assert 0.005 < share < 0.02  # type: ignore[operator]
    assert one(demo, "SELECT count(*) FROM customers WHERE segment IS NULL") > 0  # type: ignore[operator]
    assert one(demo, "SELECT count(*) FROM products WHERE brand IS NULL") > 0  # type: ignore[operator]


def test_order_amount_is_the_sum_of_its_items(demo: duckdb.DuckDBPyConnection) -> None:
    mismatched = one(
        demo,
        "SELECT count(*) FROM orders o LEFT JOIN "
        "(SELECT order_id, sum(line_amount) AS total FROM order_items GROUP BY order_id) i USING (order_id) "
        "WHERE o.amount IS DISTINCT FROM i.total",
    )
    assert mismatched == 0
    assert one(demo, "SELECT count(*) FROM order_items WHERE line_amount <> quantity * unit_price") == 0
    assert one(demo, "SELECT count(*) FROM refunds r JOIN orders o USING (order_id) WHERE r.refund_amount > o.amount") == 0


def test_dates_statuses_and_seasonality(demo: duckdb.DuckDBPyConnection) -> None:
    first, last = demo.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone() or (None, None)
    assert (str(first), str(last)) == ("2023-01-01", "2025-12-31")
    assert one(demo, "SELECT count(*) FROM orders WHERE CAST(ordered_at AS DATE) <> order_date") == 0
    statuses = {s for (s,) in demo.execute("SELECT DISTINCT status FROM orders").fetchall()}
    assert statuses == {"completed", "shipped", "cancelled", "returned"}
    december, february = (
        one(demo, "SELECT count(*) FROM orders WHERE month(order_date) = ?", m) for m in (12, 2)
    )
    assert december > 1.3 * february  # type: ignore[operator]
