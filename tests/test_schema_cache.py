"""The Describe schema cache is shared by sessions, but never across principals: a schema
described with one Databricks user's token must not answer another user's Describe."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from semproxy.cursors import result_schema
from semproxy.plan.compile import compile_query
from semproxy.semantic.registry import Registry

MODELS = Path(__file__).resolve().parent.parent / "semantic-models"


class CountingEngine:
    dialect = "duckdb"

    def __init__(self, principal: str) -> None:
        self.principal = principal
        self.described: list[str] = []

    async def describe(self, sql: str) -> pa.Schema:
        self.described.append(sql)
        return pa.schema([("region", pa.string()), ("revenue", pa.decimal128(38, 2))])


async def test_each_principal_describes_for_itself() -> None:
    registry = Registry.load(MODELS)
    compiled = compile_query("SELECT region, MEASURE(revenue) FROM orders GROUP BY 1", registry)
    alice, bob, alice_again = CountingEngine("alice"), CountingEngine("bob"), CountingEngine("alice")
    for engine in (alice, bob, alice_again):
        schema = await result_schema(engine, registry, compiled)  # type: ignore[arg-type]
        assert schema.names == ["region", "revenue"]
    assert len(alice.described) == 1 and len(bob.described) == 1
    assert alice_again.described == []  # the same principal shares the cache
