"""`/api/queries`: metric queries over HTTP, through the same router, compiler and engine
as the Postgres side.

    POST /api/queries/execute   {query, limit=1000, parameters=[...], search_path=[...]}
                                -> {columns, rows, row_count, truncated, execution_time_ms, statement_id}
    POST /api/queries/validate  -> {is_valid, errors, warnings}
    POST /api/queries/compile   -> {sql: {dialect: warehouse SQL}, columns}

Only statements on metric tables are answered here (catalog statements belong to the
Postgres port). `$1..$n` take `parameters`, bound into the syntax tree as typed literals.

Values in JSON: rows are arrays in column order; NULL is null; dates, times and
timestamps are ISO 8601 (with `Z` when the column has a time zone, converted to UTC);
numeric (decimal) values are JSON numbers, so beyond 15 significant digits they lose
precision (the Postgres port is exact); NaN and infinities are the strings "NaN",
"Infinity", "-Infinity"; bytea is `\\x<hex>`. `limit` rows at most are answered, and
`truncated` says whether more existed.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from decimal import Decimal
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlglot import exp

from semproxy.admin.auth import require
from semproxy.errors import SemproxyError
from semproxy.pg import types as t
from semproxy.sql.params import bind
from semproxy.sql.route import Catalog, Empty, Metric, Refused, route

log = structlog.get_logger("semproxy.admin.queries")
router = APIRouter(prefix="/api/queries", tags=["queries"])
DIALECTS = ("duckdb", "databricks", "spark", "postgres")
Param = str | int | float | bool | None


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=100_000)
    parameters: list[Param] = Field(default_factory=list, max_length=1000)
    search_path: list[str] = Field(default_factory=lambda: ["production"], min_length=1, max_length=20)


class ExecuteRequest(QueryRequest):
    limit: int = Field(default=1000, ge=0, le=1_000_000)


class CompileRequest(QueryRequest):
    dialects: list[str] = Field(default_factory=lambda: list(DIALECTS), min_length=1, max_length=4)


def _compile(request: Request, body: QueryRequest, dialect: str) -> tuple[str, tuple[str, ...]]:
    """(warehouse SQL, output column names); a SemproxyError or 400 when it is not one metric query."""
    registry = request.app.state.server.registry
    routed = route(body.query, registry, body.search_path, dialect)
    if len(routed) != 1:
        raise HTTPException(400, "send one statement at a time")
    statement = routed[0]
    if isinstance(statement, Refused):
        raise statement.error
    if isinstance(statement, Empty):
        raise HTTPException(400, "the query is empty")
    if isinstance(statement, Catalog) or not isinstance(statement, Metric):
        raise HTTPException(
            400,
            "this statement does not query a metric table; the HTTP API runs metric queries only "
            "(connect over the Postgres port for anything else)",
        )
    tree = statement.compiled.tree
    if body.parameters or any(True for _ in tree.find_all(exp.Parameter)):
        values = [None if v is None else _text(v).encode() for v in body.parameters]
        tree = bind(tree, values, [0], [_oid(v) for v in body.parameters])
        return tree.sql(dialect=dialect), statement.compiled.columns
    return statement.compiled.sql, statement.compiled.columns


def _text(value: Param) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _oid(value: Param) -> int:
    if isinstance(value, bool):
        return t.BOOL
    if isinstance(value, int):
        return t.INT8
    if isinstance(value, float):
        return t.FLOAT8
    return 0  # text and NULL: a string literal, typed by where it is used


def json_value(value: Any) -> Any:
    """One cell as JSON (see the module docstring)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
        )
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"P{value.days}DT{value.seconds + value.microseconds / 1e6:g}S"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


@router.post("/execute", dependencies=[require("execute")])
async def execute(request: Request, body: ExecuteRequest) -> dict[str, Any]:
    engine = request.app.state.server.engine
    statement_id = uuid.uuid4().hex
    started = time.perf_counter()
    sql, names = _compile(request, body, engine.dialect)
    columns: list[dict[str, str]] = []
    rows: list[list[Any]] = []
    truncated = False
    batches = engine.execute(sql)
    try:
        async for batch in batches:
            if not columns:
                columns = [
                    {"name": names[i] if i < len(names) else f.name, "type": t.pg_type_name(f.type)}
                    for i, f in enumerate(batch.schema)
                ]
            wanted = body.limit + 1 - len(rows)
            part = batch.slice(0, wanted)
            cells = [[json_value(v) for v in col.to_pylist()] for col in part.columns]
            rows.extend(list(row) for row in zip(*cells, strict=True))
            if len(rows) > body.limit:
                truncated = True
                del rows[body.limit :]
                break
    finally:
        await batches.aclose()  # stops the statement in the warehouse when we leave early
    elapsed = (time.perf_counter() - started) * 1000
    log.info(
        "http query", statement_id=statement_id, rows=len(rows), truncated=truncated, ms=round(elapsed, 1)
    )
    return {
        "statement_id": statement_id,
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
        "execution_time_ms": round(elapsed, 3),
    }


@router.post("/validate", dependencies=[require("read")])
async def validate(request: Request, body: QueryRequest) -> dict[str, Any]:
    try:
        _compile(request, body, request.app.state.server.engine.dialect)
    except SemproxyError as exc:
        return {"is_valid": False, "errors": [error_view(exc)], "warnings": []}
    except HTTPException as exc:
        return {"is_valid": False, "errors": [{"message": exc.detail}], "warnings": []}
    return {"is_valid": True, "errors": [], "warnings": []}


@router.post("/compile", dependencies=[require("read")])
async def compile_sql(request: Request, body: CompileRequest) -> dict[str, Any]:
    unknown = sorted(set(body.dialects) - set(DIALECTS))
    if unknown:
        raise HTTPException(422, f"unknown dialect(s) {', '.join(unknown)}; known: {', '.join(DIALECTS)}")
    out: dict[str, str] = {}
    columns: tuple[str, ...] = ()
    for dialect in body.dialects:
        out[dialect], columns = _compile(request, body, dialect)
    return {"sql": out, "columns": list(columns)}


def error_view(exc: SemproxyError) -> dict[str, Any]:
    return {"message": exc.message, "sqlstate": exc.sqlstate, "hint": exc.hint, "position": exc.position}
