"""`/api/metadata`: the warehouse's catalogs, schemas, tables and columns, and what a SQL
editor may complete. Cached for `metadata_cache_ttl_minutes`.

Listings come from the engine's `list_catalogs`, `list_schemas`, `list_tables` and
`list_columns` (Unity Catalog on Databricks); a missing `catalog` means the engine's
current one.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from semproxy.admin.auth import require

router = APIRouter(prefix="/api/metadata", tags=["metadata"], dependencies=[require("read")])
Name = Annotated[str | None, Query(max_length=255)]
RequiredName = Annotated[str, Query(min_length=1, max_length=255)]
KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "MEASURE", "AND", "OR",
            "NOT", "IN", "BETWEEN", "LIKE", "IS NULL", "DATE_TRUNC", "CAST", "AS", "DESC", "ASC")  # fmt: skip


class MetadataCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[tuple[str, ...], tuple[float, list[dict[str, Any]]]] = {}

    def get(self, key: tuple[str, ...]) -> list[dict[str, Any]] | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: tuple[str, ...], value: list[dict[str, Any]]) -> None:
        self._items[key] = (time.monotonic() + self.ttl_s, value)


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"name": item}
    return dataclasses.asdict(item)  # TableInfo, ColumnInfo


async def _listing(request: Request, kind: str, **where: str | None) -> list[dict[str, Any]]:
    cache: MetadataCache = request.app.state.metadata_cache
    key = (kind, *(f"{k}={v}" for k, v in sorted(where.items())))
    found = cache.get(key)
    if found is None:
        engine = request.app.state.server.engine
        found = [_as_dict(item) for item in await getattr(engine, f"list_{kind}")(**where)]
        cache.put(key, found)
    return found


@router.get("/catalogs")
async def catalogs(request: Request) -> dict[str, Any]:
    return {"catalogs": await _listing(request, "catalogs")}


@router.get("/schemas")
async def schemas(request: Request, catalog: Name = None) -> dict[str, Any]:
    return {"catalog": catalog, "schemas": await _listing(request, "schemas", catalog=catalog)}


@router.get("/tables")
async def tables(request: Request, schema: RequiredName, catalog: Name = None) -> dict[str, Any]:
    found = await _listing(request, "tables", schema=schema, catalog=catalog)
    return {"catalog": catalog, "schema": schema, "tables": found}


@router.get("/columns")
async def columns(
    request: Request, schema: RequiredName, table: RequiredName, catalog: Name = None
) -> dict[str, Any]:
    found = await _listing(request, "columns", table=table, schema=schema, catalog=catalog)
    return {"catalog": catalog, "schema": schema, "table": table, "columns": found}


@router.get("/sql-autocomplete")
async def sql_autocomplete(request: Request, schema: Name = None) -> dict[str, Any]:
    """What the query editor can complete: the metric tables (as `POST /api/queries/execute`
    queries them), their columns with Postgres types, and keywords."""
    served = request.app.state.server.column_types
    tables = [
        {"schema": s, "table": t, "columns": [{"name": c, "type": ty} for c, ty in cols.items()]}
        for (s, t), cols in sorted(served.items())
        if schema in (None, s)
    ]
    return {"tables": tables, "keywords": list(KEYWORDS)}
