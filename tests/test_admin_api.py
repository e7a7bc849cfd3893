"""Health, metadata and metric queries on the HTTP port, and its conventions: one error
shape, X-Process-Time, CORS, JSON values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from semproxy.admin.queries import json_value
from semproxy.catalog.server import CatalogServer
from tests.admin_support import *  # noqa: F403
from tests.admin_support import Admin, admin_settings, build_admin
from tests.conftest import DEMO_DB

BY_REGION = "SELECT region, MEASURE(revenue) FROM orders GROUP BY region ORDER BY region"


def truth(sql: str, *params: object) -> list[tuple[object, ...]]:
    with duckdb.connect(str(DEMO_DB), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


async def test_health_endpoints(admin: Admin) -> None:
    assert (await admin.client.get("/health")).json() == {"status": "healthy"}
    body = (await admin.client.get("/api/health/")).json()
    assert body["service"] == "semproxy" and body["environment"] == "development"
    for path in ("/api/health/engine", "/api/health/databricks"):
        r = await admin.client.get(path)
        assert r.status_code == 200 and r.json()["engine"] == "duckdb" and r.json()["response_time_ms"] >= 0
    r = await admin.client.get("/api/health/ready")
    assert r.status_code == 200
    assert {k: v["status"] for k, v in r.json()["checks"].items()} == {
        "engine": "ok", "catalog": "ok", "models": "ok", "configuration": "ok",
    }  # fmt: skip


async def test_engine_failure_is_503_with_the_reason(admin: Admin) -> None:
    await admin.server.engine.aclose()  # a closed DuckDB connection fails every statement
    r = await admin.client.get("/api/health/engine")
    assert r.status_code == 503 and r.json()["status"] == "error" and r.json()["detail"]
    r = await admin.client.get("/api/health/ready")
    assert r.status_code == 503 and r.json()["checks"]["engine"]["status"] == "error"


async def test_every_response_has_x_process_time_and_one_error_shape(admin: Admin) -> None:
    for path in ("/health", "/api/models/", "/nosuch", "/api/models/orders?page=x"):
        r = await admin.client.get(path, headers=admin.headers())
        assert float(r.headers["x-process-time"]) >= 0
        if r.status_code >= 400:
            body = r.json()
            assert isinstance(body["detail"], str) and body["status_code"] == r.status_code
            assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    r = await admin.client.post("/api/queries/execute", headers=admin.headers(), json={"limit": -1})
    assert r.status_code == 422 and {e["loc"][-1] for e in r.json()["errors"]} == {"query", "limit"}


async def test_cors_from_the_configuration(tmp_path: Path, admin_catalog: CatalogServer) -> None:
    settings = admin_settings(tmp_path, cors_origins="http://app.example, http://other.example")
    server, client = await build_admin(settings, admin_catalog)
    async with client:
        preflight = await client.options(
            "/api/models/",
            headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        assert "x-process-time" in preflight.headers
        r = await client.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    await server.engine.aclose()


async def test_execute_matches_hand_written_sql(admin: Admin) -> None:
    r = await admin.client.post(
        "/api/queries/execute", headers=admin.headers("analyst"), json={"query": BY_REGION}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == [
        {"name": "region", "type": "text"},
        {"name": "revenue", "type": "numeric(38,2)"},
    ]
    expected = truth("SELECT region, SUM(amount) FROM main.orders GROUP BY 1 ORDER BY 1")
    assert body["rows"] == [[region, float(total)] for region, total in expected]
    assert body["row_count"] == len(expected) and body["truncated"] is False
    assert len(body["statement_id"]) == 32 and body["execution_time_ms"] > 0


async def test_limit_says_when_rows_were_left_out(admin: Admin) -> None:
    total = len(truth("SELECT DISTINCT region FROM main.orders"))
    for limit, truncated in ((total - 1, True), (total, False), (0, True)):
        r = await admin.client.post(
            "/api/queries/execute", headers=admin.headers(), json={"query": BY_REGION, "limit": limit}
        )
        assert r.json()["row_count"] == limit and r.json()["truncated"] is truncated


async def test_parameters_are_bound_as_typed_literals(admin: Admin) -> None:
    region = truth("SELECT min(region) FROM main.orders")[0][0]
    query = "SELECT region, MEASURE(order_count) FROM orders WHERE region = $1 AND order_date >= $2 GROUP BY region"
    r = await admin.client.post(
        "/api/queries/execute",
        headers=admin.headers(),
        json={"query": query, "parameters": [region, "2024-01-01"]},
    )
    assert r.status_code == 200, r.text
    expected = truth(
        "SELECT count(order_id) FROM main.orders WHERE region = ? AND order_date >= '2024-01-01'", region
    )
    assert r.json()["rows"] == [[region, expected[0][0]]]
    hostile = "x' OR '1'='1"
    r = await admin.client.post(
        "/api/queries/execute",
        headers=admin.headers(),
        json={"query": query, "parameters": [hostile, "2024-01-01"]},
    )
    assert r.status_code == 200 and r.json()["rows"] == []  # a value, never SQL
    r = await admin.client.post("/api/queries/execute", headers=admin.headers(), json={"query": query})
    assert r.status_code == 400 and r.json()["sqlstate"] == "08P01"


async def test_errors_carry_sqlstate_and_position(admin: Admin) -> None:
    r = await admin.client.post(
        "/api/queries/execute",
        headers=admin.headers(),
        json={"query": "SELECT nosuch, MEASURE(revenue) FROM orders GROUP BY nosuch"},
    )
    assert r.status_code == 400 and r.json()["sqlstate"] == "42703" and r.json()["position"] == 8
    r = await admin.client.post("/api/queries/execute", headers=admin.headers(), json={"query": "SELECT 1"})
    assert r.status_code == 400 and "metric" in r.json()["detail"]
    r = await admin.client.post(
        "/api/queries/execute", headers=admin.headers(), json={"query": "DELETE FROM orders"}
    )
    assert r.status_code == 400 and r.json()["sqlstate"] == "25006"


async def test_validate_and_compile(admin: Admin) -> None:
    ok = await admin.client.post(
        "/api/queries/validate", headers=admin.headers("reader"), json={"query": BY_REGION}
    )
    assert ok.json() == {"is_valid": True, "errors": [], "warnings": []}
    bad = await admin.client.post(
        "/api/queries/validate",
        headers=admin.headers("reader"),
        json={"query": "SELECT x, MEASURE(revenue) FROM orders GROUP BY x"},
    )
    assert bad.json()["is_valid"] is False and bad.json()["errors"][0]["sqlstate"] == "42703"
    r = await admin.client.post(
        "/api/queries/compile", headers=admin.headers("reader"), json={"query": BY_REGION}
    )
    sql = r.json()["sql"]
    assert set(sql) == {"duckdb", "databricks", "spark", "postgres"}
    assert "`revenue`" in sql["databricks"] and '"revenue"' in sql["duckdb"]
    assert r.json()["columns"] == ["region", "revenue"]
    r = await admin.client.post(
        "/api/queries/compile",
        headers=admin.headers("reader"),
        json={"query": BY_REGION, "dialects": ["oracle"]},
    )
    assert r.status_code == 422


async def test_metadata_from_the_engine(admin: Admin) -> None:
    h = admin.headers("reader")
    assert {"name": "demo"} in (await admin.client.get("/api/metadata/catalogs", headers=h)).json()[
        "catalogs"
    ]
    schemas = (await admin.client.get("/api/metadata/schemas", headers=h, params={"catalog": "demo"})).json()
    assert {"name": "main"} in schemas["schemas"]
    tables = (await admin.client.get("/api/metadata/tables", headers=h, params={"schema": "main"})).json()
    assert {t["name"] for t in tables["tables"]} == {
        "customers",
        "orders",
        "order_items",
        "products",
        "refunds",
    }
    cols = (
        await admin.client.get(
            "/api/metadata/columns", headers=h, params={"schema": "main", "table": "refunds"}
        )
    ).json()["columns"]
    assert [c["name"] for c in cols] == [r[0] for r in truth("DESCRIBE main.refunds")]
    auto = (await admin.client.get("/api/metadata/sql-autocomplete", headers=h)).json()
    orders = next(t for t in auto["tables"] if t["table"] == "orders")
    assert {"name": "revenue", "type": "numeric(38,2)"} in orders["columns"] and "MEASURE" in auto["keywords"]


async def test_metadata_is_cached(admin: Admin) -> None:
    h = admin.headers("reader")
    calls = 0
    original = admin.server.engine.list_catalogs

    async def counted() -> list[str]:
        nonlocal calls
        calls += 1
        return await original()

    admin.server.engine.list_catalogs = counted  # type: ignore[method-assign]
    for _ in range(3):
        await admin.client.get("/api/metadata/catalogs", headers=h)
    assert calls == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (Decimal("12.50"), 12.5),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 1, 1, 12, 30), "2024-01-01T12:30:00"),
        (dt.datetime(2024, 1, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-01-01T12:30:00Z"),
        (b"\x01\xff", "\\x01ff"),
        ([1, None, Decimal("2")], [1, None, 2.0]),
    ],
)
def test_json_values(value: object, expected: object) -> None:
    assert json_value(value) == expected
