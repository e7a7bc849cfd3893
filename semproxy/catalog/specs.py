"""The catalog server's view of the registry: one typed, commented TableSpec per virtual table.

Column types come from the engine: each model's virtual table is compiled as a preview
query and described (no rows fetched), so a dimension is typed exactly as the warehouse
types it and a metric as its aggregate returns.

The engine is asked once first whether it answers at all. When it does not (a warehouse
that is down at startup), columns get types guessed from their kind instead of waiting on
a describe per column, so the catalog (psql's describe, BI tools' introspection) serves at once;
`CatalogSpecs.typed_by_engine` is then False and a later reload types them properly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlglot import exp

from semproxy.catalog.sync import ColumnSpec, TableSpec
from semproxy.engines.base import Engine
from semproxy.pg.types import pg_type_name
from semproxy.plan.compile import compile_query
from semproxy.plan.tables import VirtualColumn, VirtualTable, virtual_tables
from semproxy.semantic.registry import Registry

log = structlog.get_logger("semproxy.catalog")
DESCRIBE_CONCURRENCY = 8  # describes overlap their round trips to the warehouse
HEALTH_TIMEOUT_S = 10.0
# a column's type while the engine cannot be asked, by the column's kind
GUESSED_TYPES = {"metric": "numeric", "time": "timestamp", "dimension": "text", "entity": "text"}


@dataclass(frozen=True)
class CatalogSpecs:
    tables: list[TableSpec]
    typed_by_engine: bool  # False: the engine did not answer, the types are guesses from each column's kind


async def table_specs(registry: Registry, engine: Engine) -> CatalogSpecs:
    tables = virtual_tables(registry)
    types: dict[tuple[str, str, str], str] = {}
    answers = await _answers(engine)
    if answers:
        # models first: the `metrics` table then only describes what no model table typed
        for table in sorted(tables, key=lambda t: t.name == "metrics"):
            types.update(await _column_types(registry, engine, table, types))
    else:
        types = {
            (t.schema, t.name, c.name): GUESSED_TYPES.get(c.kind, "text") for t in tables for c in t.columns
        }
    specs = []
    for table in tables:
        columns = tuple(
            ColumnSpec(c.name, _type_for(types, table, c), _comment(c.description, c.label))
            for c in table.columns
        )
        specs.append(TableSpec(table.schema, table.name, table.description, columns))
    return CatalogSpecs(specs, answers)


async def _answers(engine: Engine) -> bool:
    try:
        await asyncio.wait_for(engine.health(), HEALTH_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever the reason, nothing can be described now
        log.warning("the engine does not answer: column types are guessed until a reload", error=str(exc))
        return False
    return True


async def _column_types(
    registry: Registry, engine: Engine, table: VirtualTable, known: dict[tuple[str, str, str], str]
) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) -> Postgres type, from described queries (no rows fetched).

    Described one column at a time (concurrently): a column that cannot be typed becomes text instead of
    hiding the whole table. Metrics that need a time grain (cumulative, offsets) and
    metric_time itself are described grouped by metric_time."""
    source = exp.table_(table.name, db=table.schema, quoted=True)
    names = {c.name for c in table.columns}
    any_metric = next((c.name for c in table.columns if c.kind == "metric"), None)
    limit = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def describe(column: VirtualColumn) -> tuple[tuple[str, str, str], str] | None:
        for select, index in _probes(column, any_metric, "metric_time" in names):
            try:
                query = select.from_(source.copy()).limit(0)
                compiled = compile_query(query, registry, (table.schema,), engine.dialect)
                async with limit:
                    schema = await engine.describe(compiled.sql)
            except Exception:  # noqa: BLE001, S112 - try the next probe; text if none works
                continue
            return (table.schema, table.name, column.name), pg_type_name(schema.field(index).type)
        return None

    wanted = [c for c in table.columns if table.name != "metrics" or _type_for(known, table, c) == "text"]
    whole = await _describe_whole(registry, engine, table, wanted)
    if whole is not None:
        return whole
    return dict(found for found in await asyncio.gather(*map(describe, wanted)) if found is not None)


async def _describe_whole(
    registry: Registry, engine: Engine, table: VirtualTable, columns: list[VirtualColumn]
) -> dict[tuple[str, str, str], str] | None:
    """Every column in one described query (grouped by all the non-metric columns), or
    None when that query does not compile or run: then each column is probed alone."""
    keys = [exp.column(exp.to_identifier(c.name, quoted=True)) for c in columns if c.kind != "metric"]
    metrics = [
        exp.Anonymous(this="MEASURE", expressions=[exp.column(exp.to_identifier(c.name, quoted=True))])
        for c in columns
        if c.kind == "metric"
    ]
    if not columns:
        return {}
    query = exp.select(*keys, *metrics).from_(exp.table_(table.name, db=table.schema, quoted=True))
    if keys:
        query = query.group_by(*(k.copy() for k in keys))
    try:
        compiled = compile_query(query.limit(0), registry, (table.schema,), engine.dialect)
        schema = await engine.describe(compiled.sql)
    except Exception:  # noqa: BLE001 - fall back to one probe per column
        return None
    ordered = [c for c in columns if c.kind != "metric"] + [c for c in columns if c.kind == "metric"]
    return {
        (table.schema, table.name, c.name): pg_type_name(schema.field(i).type) for i, c in enumerate(ordered)
    }


def _probes(column: VirtualColumn, any_metric: str | None, has_time: bool) -> list[tuple[exp.Select, int]]:
    """Queries that type `column`, each with the index of the column's field in its result."""
    col = exp.column(exp.to_identifier(column.name, quoted=True))
    time = exp.column(exp.to_identifier("metric_time", quoted=True))
    if column.kind == "metric":
        measure = exp.Anonymous(this="MEASURE", expressions=[col])
        probes = [(exp.select(measure), 0)]
        if has_time:
            probes.append((exp.select(time, measure.copy()).group_by(time.copy()), 1))
        return probes
    probes = [(exp.select(col).group_by(col.copy()), 0)]
    if any_metric is not None:
        metric = exp.Anonymous(
            this="MEASURE", expressions=[exp.column(exp.to_identifier(any_metric, quoted=True))]
        )
        probes.append((exp.select(col.copy(), metric).group_by(col.copy()), 0))
    return probes


def _type_for(types: dict[tuple[str, str, str], str], table: VirtualTable, column: VirtualColumn) -> str:
    if (table.schema, table.name, column.name) in types:
        return types[(table.schema, table.name, column.name)]
    # the `metrics` table: a column keeps the type it has on the model that owns it
    candidates = [t for (s, _, c), t in types.items() if s == table.schema and c == column.name]
    if not candidates and "__" in column.name:
        leaf = column.name.rsplit("__", 1)[1]
        candidates = [t for (s, _, c), t in types.items() if s == table.schema and c == leaf]
    return candidates[0] if candidates else "text"


def _comment(description: str | None, label: str | None) -> str | None:
    if description and label:
        return f"{label}: {description}"
    return description or label
