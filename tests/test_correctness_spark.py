"""The compiled spark and databricks SQL of every correctness query gives DuckDB's numbers
on a local Apache Spark (classic session, one per module). The slow part of `make test`;
alone: `pytest -m spark`.

DuckDB's numbers are themselves checked against hand-written SQL (test_correctness.py,
test_correctness_rules.py), so agreeing with them is agreeing with the hand-written answer.
Numbers compare to 9 places, so Spark's 6-place decimal averages and divisions would show.
About 80 queries: ~35 s on a quiet machine plus ~15 s to start Spark (no code generation or
AQE, tables cached: planning dominates on tiny tables). Each Spark rewrite in sql/quirks.py
is caught here when removed (percentiles, EXTRACT, date - date, integer division, numeric).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry
from tests.compiler_fixtures import HERE
from tests.test_correctness import ENGINE_QUERIES
from tests.test_correctness_rules import RULES, same

QUERIES = [(rule.ours, rule.ordered) for rule in RULES.values()] + [
    (sql, False) for sql in ENGINE_QUERIES if sql not in {r.ours for r in RULES.values()}
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    import pyspark.sql as pyspark_sql

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warehouse = tempfile.mkdtemp(prefix="semproxy-compiler-spark-")
    session = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.showConsoleProgress", "false")
        # tiny tables, many queries: planning dominates, so skip code generation and AQE
        # (measured: 80 queries 83 s -> 14 s warm, with the tables cached in memory)
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.sql.adaptive.enabled", "false")
        .getOrCreate()
    )
    for statement in sqlglot.transpile((HERE / "data.sql").read_text(), read="duckdb", write="spark"):
        session.sql(statement)
        created = sqlglot.parse_one(statement, read="spark")
        if isinstance(created, exp.Create) and created.kind == "TABLE":
            session.sql(exp.Cache(this=created.find(exp.Table)).sql("spark"))
    yield session
    session.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


@pytest.mark.spark
def test_spark_and_databricks_sql_give_duckdb_numbers(
    spark: Any, con: duckdb.DuckDBPyConnection, registry: Registry
) -> None:
    """Every query, in both dialects (the databricks text run only where it differs)."""
    failures = []
    for sql, ordered in QUERIES:
        expected = same(con.execute(compile_query(sql, registry).sql).fetchall(), ordered)
        texts = {compile_query(sql, registry, dialect=d).sql for d in ("spark", "databricks")}
        for text in texts:
            try:
                got = same([tuple(r) for r in spark.sql(text).collect()], ordered)
            except Exception as exc:  # noqa: BLE001 - reported with the query below
                failures.append(f"{sql}\n  -> {text}\n  !! {str(exc).splitlines()[0]}")
                continue
            if got != expected:
                failures.append(f"{sql}\n  -> {text}\n  spark  {got}\n  duckdb {expected}")
    assert not failures, "\n\n".join(failures)
