"""Keep the catalog server's schemas and empty tables in step with the virtual tables.

Every managed schema is owned by the `semproxy_catalog` role; that is how a later sync
knows which schemas it made. A sync drops them all and creates the new set in one
transaction, so a client reading the catalog sees the old tables or the new, never half."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlglot import exp

from semproxy.catalog.server import OWNER_ROLE, CatalogServer

_DIALECT = "postgres"
_SYNC_LOCK = "semproxy catalog sync"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    pg_type: str  # as Postgres spells it: 'numeric(12,2)', 'bigint', 'timestamp without time zone'
    comment: str | None


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    comment: str | None
    columns: tuple[ColumnSpec, ...]


async def sync_catalog(server: CatalogServer, tables: Sequence[TableSpec], schemas: Sequence[str]) -> None:
    """Make the catalog hold exactly `schemas` (plus those of `tables`) and `tables`. Idempotent."""
    conn = await server.connect_admin()
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", _SYNC_LOCK)
            # a session holding a virtual table open in a long transaction must fail the
            # sync (the caller retries), not stall every reload behind it
            await conn.execute("SET LOCAL lock_timeout = '10s'")
            managed = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspowner = $1::regrole ORDER BY nspname", OWNER_ROLE
            )
            # objects made under this role are owned by it, which marks them as managed
            statement = await conn.fetchval("SELECT format('SET LOCAL ROLE %I', $1::text)", OWNER_ROLE)
            await conn.execute(statement)
            script = catalog_ddl([m["nspname"] for m in managed], tables, schemas, server.endpoint.user)
            await conn.execute(script)  # one round trip, simple protocol: many statements
    finally:
        await conn.close()


def catalog_ddl(
    dropped: Sequence[str], tables: Sequence[TableSpec], schemas: Sequence[str], reader: str
) -> str:
    """The script that drops `dropped` and creates `schemas` and `tables`, readable by `reader`."""
    return ";\n".join(s.sql(dialect=_DIALECT) for s in _statements(dropped, tables, schemas, reader))


def _statements(
    dropped: Sequence[str], tables: Sequence[TableSpec], schemas: Sequence[str], reader: str
) -> Iterator[exp.Expression]:
    for schema in dropped:
        yield exp.Drop(tables=[_schema(schema)], kind="SCHEMA", cascade=True)
    for schema in dict.fromkeys([*schemas, *(t.schema for t in tables)]):
        yield exp.Create(this=_schema(schema), kind="SCHEMA")
        yield _grant("USAGE", "SCHEMA", _schema(schema), reader)
    for table in tables:
        yield from _table_statements(table, reader)


def _table_statements(table: TableSpec, reader: str) -> Iterator[exp.Expression]:
    columns = [
        exp.ColumnDef(this=_ident(c.name), kind=exp.DataType.build(c.pg_type, dialect=_DIALECT))
        for c in table.columns
    ]
    yield exp.Create(this=exp.Schema(this=_table(table), expressions=columns), kind="TABLE")
    if table.comment:
        yield exp.Comment(this=_table(table), kind="TABLE", expression=exp.Literal.string(table.comment))
    for column in table.columns:
        if column.comment:
            target = exp.column(_ident(column.name), _ident(table.name), db=_ident(table.schema))
            yield exp.Comment(this=target, kind="COLUMN", expression=exp.Literal.string(column.comment))
    yield _grant("SELECT", "TABLE", _table(table), reader)


def _grant(privilege: str, kind: str, securable: exp.Expression, role: str) -> exp.Grant:
    return exp.Grant(
        privileges=[exp.GrantPrivilege(this=exp.Var(this=privilege))],
        kind=kind,
        securable=securable,
        principals=[exp.GrantPrincipal(this=_ident(role))],
    )


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _schema(name: str) -> exp.Table:
    return exp.Table(this=_ident(name))


def _table(table: TableSpec) -> exp.Table:
    return exp.Table(this=_ident(table.name), db=_ident(table.schema))
