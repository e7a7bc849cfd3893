"""psycopg2 + SQLAlchemy, the path Superset takes: its dataset picker and column list come
from the inspector, and its charts run SQL through text()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.clients.support import truth
from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def engine(server: RunningServer) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"postgresql+psycopg2://tester@{server.host}:{server.port}/semantic")
    yield engine
    engine.dispose()


def test_inspector_lists_schemas_tables_and_columns(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert "production" in inspector.get_schema_names()
    assert {"orders", "customers", "metrics"} <= set(inspector.get_table_names(schema="production"))
    assert inspector.get_view_names(schema="production") == []
    columns = {c["name"]: c for c in inspector.get_columns("orders", schema="production")}
    assert isinstance(columns["region"]["type"], sa.TEXT)
    assert isinstance(columns["order_date"]["type"], sa.DATE)
    assert isinstance(columns["revenue"]["type"], sa.NUMERIC) and columns["revenue"]["type"].scale == 2
    assert isinstance(columns["order_count"]["type"], sa.BIGINT)
    assert (columns["revenue"]["comment"] or "").startswith("Revenue: Gross order amount")


def test_inspector_keys_indexes_and_comment(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("orders", schema="production")["constrained_columns"] == []
    assert inspector.get_foreign_keys("orders", schema="production") == []
    assert inspector.get_indexes("orders", schema="production") == []
    comment = inspector.get_table_comment("orders", schema="production")["text"] or ""
    assert comment.startswith("One row per order")


def test_metric_query_through_text(server: RunningServer, engine: sa.Engine) -> None:
    query = sa.text(
        "SELECT DATE_TRUNC('quarter', order_date) AS quarter, MEASURE(revenue) AS revenue "
        "FROM orders WHERE status = :status GROUP BY 1 ORDER BY 1"
    )
    with engine.connect() as conn:
        got = [(q.date(), r) for q, r in conn.execute(query, {"status": "completed"})]
    expected = truth(
        server,
        "SELECT date_trunc('quarter', order_date)::date, sum(amount) FROM main.orders "
        "WHERE status = 'completed' GROUP BY 1 ORDER BY 1",
    )
    assert got == expected
