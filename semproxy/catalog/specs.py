"""The catalog server's view of the registry: one typed, commented TableSpec per virtual table.

Column types come from the engine: each model's virtual table is compiled as a preview
query and described (no rows fetched), so a dimension is typed exactly as the warehouse
types it and a metric as its aggregate returns.
"""

from __future__ import annotations

from sqlglot import exp

from semproxy.catalog.sync import ColumnSpec, TableSpec
from semproxy.engines.base import Engine
from semproxy.pg.types import pg_type_name
from semproxy.plan.compile import compile_query
from semproxy.plan.tables import VirtualColumn, VirtualTable, virtual_tables
from semproxy.semantic.registry import Registry


async def table_specs(registry: Registry, engine: Engine) -> list[TableSpec]:
    tables = virtual_tables(registry)
    types: dict[tuple[str, str, str], str] = {}
    # models first: the `metrics` table then only describes what no model table typed
    for table in sorted(tables, key=lambda t: t.name == "metrics"):
        types.update(await _column_types(registry, engine, table, types))
    specs = []
    for table in tables:
        columns = tuple(
            ColumnSpec(c.name, _type_for(types, table, c), _comment(c.description, c.label))
            for c in table.columns
        )
        specs.append(TableSpec(table.schema, table.name, table.description, columns))
    return specs


async def _column_types(
    registry: Registry, engine: Engine, table: VirtualTable, known: dict[tuple[str, str, str], str]
) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) -> Postgres type, from one described query per column.

    Described one column at a time: a broken column then types as text instead of
    hiding the whole table."""
    found: dict[tuple[str, str, str], str] = {}
    source = exp.table_(table.name, db=table.schema, quoted=True)
    for column in table.columns:
        if table.name == "metrics" and _type_for(known, table, column) != "text":
            continue
        ident = exp.to_identifier(column.name, quoted=True)
        select = exp.select(exp.Anonymous(this="MEASURE", expressions=[ident]))
        if column.kind != "metric":
            select = exp.select(exp.column(ident)).group_by(exp.column(ident.copy()))
        query = select.from_(source).limit(0)
        try:
            compiled = compile_query(query, registry, (table.schema,), engine.dialect)
            schema = await engine.describe(compiled.sql)
            found[(table.schema, table.name, column.name)] = pg_type_name(schema.field(0).type)
        except Exception:  # noqa: BLE001 - one bad column must not hide the table
            found[(table.schema, table.name, column.name)] = "text"
    return found


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
