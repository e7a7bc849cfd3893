"""The extended query protocol of one session: Parse, Bind, Describe, Execute, Close, Sync, Flush.

Each prepared statement is classified at Parse. Metric statements are compiled here
(at Bind, with their parameters as typed literals) and run on the engine, with row
limits as suspended portals. Catalog statements are forwarded to the session's catalog
connection message by message, and its answers relayed in order: before we answer a
message ourselves, or at Flush or Sync, the catalog's pending answers are drained first.
After an error, messages are discarded until Sync, as Postgres does.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import exp

from semproxy.catalog import quirks as catalog_quirks
from semproxy.catalog.relay import changes_settings
from semproxy.cursors import RowStream, head, parse_close, parse_declare, parse_fetch, result_schema
from semproxy.errors import (
    DuplicatePreparedStatement,
    FeatureNotSupported,
    InvalidCursorName,
    InvalidStatementName,
    SemproxyError,
    SyntaxError_,
)
from semproxy.pg import messages as m
from semproxy.pg.client import encode_frontend
from semproxy.pg.rows import encode_batch, row_description
from semproxy.plan.compile import CompiledQuery, compile_query
from semproxy.plan.prepared import compile_prepared
from semproxy.results import SqlCursor
from semproxy.sql.params import bind, infer_types, literals, oid_of_ddl, parameter_count
from semproxy.sql.route import PLAN_COLUMN, Catalog, Empty, Metric, Refused, route

if TYPE_CHECKING:
    from semproxy.session import Session

TREE_CACHE_SIZE = 1024
_TREES: OrderedDict[str, exp.Expr] = OrderedDict()


def _parsed(sql: str) -> exp.Expr:
    """The client's tree of a metric statement, parsed once per text for every session (each
    connection of a pool prepares the same statements). Shared: users copy (params.bind)."""
    tree = _TREES.get(sql)
    if tree is None:
        tree = _TREES[sql] = sqlglot.parse_one(sql, read="postgres")
        if len(_TREES) > TREE_CACHE_SIZE:
            _TREES.popitem(last=False)
    else:
        _TREES.move_to_end(sql)
    return tree


# What ends the catalog's answer to each forwarded message kind ('E' always does).
_TERMINALS = {
    "Parse": {b"1"},
    "Bind": {b"2"},
    "Describe": {b"T", b"n"},
    "Execute": {b"C", b"I", b"s"},
    "Close": {b"3"},
}


@dataclass
class Prepared:
    sql: str
    on_catalog: bool
    tree: exp.Expr | None = None  # metric statements: the client's tree, with $n
    param_types: tuple[int, ...] = ()
    schema: pa.Schema | None = None  # cached result schema, for Describe
    cursor: str = ""  # DECLARE, FETCH, MOVE or CLOSE of a SQL cursor over a metric query (tree: its query)
    changes_settings: bool = False  # a catalog statement after which settings are read back
    explained: CompiledQuery | None = None  # EXPLAIN <metric query>: its rows are fixed at Parse


@dataclass
class Portal:
    prepared: Prepared
    on_catalog: bool
    compiled: CompiledQuery | None = None
    formats: tuple[int, ...] = ()
    rows: RowStream | None = None


@dataclass
class Extended:
    session: Session
    statements: dict[str, Prepared] = field(default_factory=dict)
    portals: dict[str, Portal] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # forwarded messages not yet answered
    forwarded: bool = False  # something went to the catalog since the last Sync
    skipping: bool = False  # an error happened: discard until Sync
    failed_locally: bool = False
    refresh: bool = False  # a catalog statement run since the last Sync may have changed settings

    async def handle(self, msg: m.FrontendMessage) -> None:
        if isinstance(msg, m.Sync):
            await self._sync()
            return
        if isinstance(msg, m.Flush):
            await self._drain()
            return
        if self.skipping:
            return
        try:
            if isinstance(msg, m.Parse):
                await self._parse(msg)
            elif isinstance(msg, m.Bind):
                await self._bind(msg)
            elif isinstance(msg, m.Describe):
                await self._describe(msg)
            elif isinstance(msg, m.Execute):
                await self._execute(msg)
            elif isinstance(msg, m.Close):
                await self._close(msg)
        except SemproxyError as exc:
            await self._drain()
            self.session.send_error(exc)
            self.skipping = True
            self.failed_locally = True

    # -- catalog forwarding -----------------------------------------------------------
    async def _forward(self, msg: m.FrontendMessage) -> None:
        """Queue `msg` for the catalog; it leaves with the Flush or Sync that asks for answers."""
        catalog = await self.session.catalog_connection()
        catalog.queue(encode_frontend(msg))
        self.pending.append(type(msg).__name__)
        self.forwarded = True

    async def _drain(self) -> None:
        """Relay the catalog's answers to everything forwarded so far, in order."""
        if not self.pending:
            return
        catalog = await self.session.catalog_connection()
        await catalog.send_raw(encode_frontend(m.Flush()))
        while self.pending:
            stop = _TERMINALS[self.pending[0]] | {b"E"}
            last = b""
            async for type_, payload in catalog.read_until(stop):
                self.session.relay_frame(type_, payload)
                last = type_
            if last == b"E":  # the catalog now discards until Sync; so do we
                self.pending.clear()
                self.skipping = True
            else:
                self.pending.pop(0)

    async def _sync(self) -> None:
        if self.forwarded:
            # one round trip: the answers to what is still pending, then ReadyForQuery
            catalog = await self.session.catalog_connection()
            await catalog.send_raw(encode_frontend(m.Sync()))
            async for type_, payload in catalog.read_until({b"Z"}):
                if type_ != b"Z":
                    self.session.relay_frame(type_, payload)
            self.pending.clear()
            await self.session.after_relay(self.refresh)
        if self.failed_locally:
            await self.session.abort_block()
        self.forwarded = self.skipping = self.failed_locally = self.refresh = False
        if self.session.status() == "I":  # portals live until the end of their transaction
            for name, portal in self.portals.items():
                if portal.rows is not None:
                    self.session.results.cursors.pop(name, None)
                    await portal.rows.close()
            self.portals.clear()
        self.session.ready()

    # -- messages -------------------------------------------------------------------
    async def _parse(self, msg: m.Parse) -> None:
        if msg.name and msg.name in self.statements:
            raise DuplicatePreparedStatement(f'prepared statement "{msg.name}" already exists')
        session = self.session
        routed = route(msg.sql, session.server.registry, session.search_path(), session.server.engine.dialect)
        if len(routed) > 1:
            raise SyntaxError_("cannot insert multiple commands into a prepared statement")
        statement = routed[0] if routed else Empty()
        if isinstance(statement, Refused):
            raise statement.error
        if isinstance(statement, Catalog) and session.owns(msg.sql):
            declare = parse_declare(msg.sql)
            tree = _parsed(declare.query) if declare is not None else None
            types = self._parameter_types(tree, msg.param_types) if tree is not None else ()
            self.statements[msg.name] = Prepared(msg.sql, False, tree, types, cursor=head(msg.sql))
            await self._drain()
            session.send(m.ParseComplete())
            return
        if isinstance(statement, Catalog):
            self.statements[msg.name] = Prepared(msg.sql, True, changes_settings=changes_settings(msg.sql))
            await self._forward(replace(msg, sql=catalog_quirks.apply(msg.sql)))
            return
        if isinstance(statement, Metric) and statement.compiled.columns == (PLAN_COLUMN,):
            # EXPLAIN: the statement is not a plan of its own; its answer is the text of one
            self.statements[msg.name] = Prepared(msg.sql, False, explained=statement.compiled)
            await self._drain()
            session.send(m.ParseComplete())
            return
        tree = _parsed(msg.sql) if isinstance(statement, Metric) else None
        types = self._parameter_types(tree, msg.param_types) if tree is not None else ()
        self.statements[msg.name] = Prepared(msg.sql, False, tree, types)
        await self._drain()
        session.send(m.ParseComplete())

    async def _bind(self, msg: m.Bind) -> None:
        prepared = self.statements.get(msg.statement)
        if prepared is None:
            raise InvalidStatementName(f'prepared statement "{msg.statement}" does not exist')
        if prepared.on_catalog:
            self.portals[msg.portal] = Portal(prepared, on_catalog=True)
            await self._forward(msg)
            return
        compiled = prepared.explained
        if prepared.tree is not None and not (prepared.param_types or msg.params or prepared.cursor):
            compiled = self._compile(prepared.sql)  # nothing to bind: the plan cache's text lookup
        elif prepared.tree is not None and not prepared.cursor:
            # the plan cache's slots take the values: no parse, plan or tree copy per Bind
            values = literals(
                msg.params, msg.param_formats, prepared.param_types, parameter_count(prepared.tree)
            )
            session = self.session
            compiled = compile_prepared(
                prepared.sql,
                session.server.registry,
                values,
                session.search_path(),
                session.server.engine.dialect,
            )
        elif prepared.tree is not None:  # DECLARE ... FOR: the statement around the query is not a plan
            tree = bind(prepared.tree, msg.params, msg.param_formats, prepared.param_types)
            compiled = self._compile(tree)
        portal = self.portals[msg.portal] = Portal(prepared, False, compiled, msg.result_formats)
        if msg.portal and compiled is not None and not prepared.cursor:
            # a named portal is a cursor to SQL too: asyncpg moves its cursors with a simple
            # `MOVE FORWARD n "__asyncpg_portal_1__"` (the engine query starts at the first read)
            portal.rows = self.session.results.start(compiled)
            self.session.results.cursors[msg.portal] = SqlCursor(portal.rows, compiled, False, False)
        await self._drain()
        self.session.send(m.BindComplete())

    async def _describe(self, msg: m.Describe) -> None:
        if msg.kind == "S":
            prepared = self.statements.get(msg.name)
            if prepared is None:
                raise InvalidStatementName(f'prepared statement "{msg.name}" does not exist')
            if prepared.on_catalog:
                await self._forward(msg)
                return
            await self._drain()
            self.session.send(m.ParameterDescription(prepared.param_types))
            self.session.send(await self._description(prepared, None, None))
            return
        portal = self.portals.get(msg.name)
        if portal is None and msg.name in self.session.results.cursors:
            # a SQL cursor is a portal too: psycopg describes its server-side cursors so
            await self._drain()
            self.session.send(await self.session.results.description(msg.name, None))
            return
        if portal is None:
            raise InvalidCursorName(f'portal "{msg.name}" does not exist')
        if portal.on_catalog:
            await self._forward(msg)
            return
        await self._drain()
        self.session.send(await self._description(portal.prepared, portal.compiled, portal.formats))

    async def _execute(self, msg: m.Execute) -> None:
        portal = self.portals.get(msg.portal)
        if portal is None:
            raise InvalidCursorName(f'portal "{msg.portal}" does not exist')
        if portal.on_catalog:
            self.refresh = self.refresh or portal.prepared.changes_settings
            await self._forward(msg)
            return
        await self._drain()
        if portal.prepared.cursor:
            await self.session.cancellable(self._cursor_statement(portal))
            return
        if portal.compiled is None:
            self.session.send(m.EmptyQueryResponse())
            return
        await self.session.cancellable(self._run(portal, portal.compiled, msg.max_rows))

    async def _run(self, portal: Portal, compiled: CompiledQuery, max_rows: int) -> None:
        if portal.rows is None:
            portal.rows = RowStream(self.session.engine.execute(compiled.sql))
        rows, timezone = portal.rows, self.session.timezone
        try:
            async for batch in rows.take(max_rows if max_rows > 0 else None):
                await self.session.write_rows(encode_batch(batch, portal.formats, timezone))
            if rows.done:
                self.session.send(m.CommandComplete.rows("SELECT", rows.sent))
            else:
                self.session.send(m.PortalSuspended())
        except BaseException:
            await rows.close()  # a failed or cancelled portal is finished: free the engine's query
            raise

    async def _close(self, msg: m.Close) -> None:
        table: dict[str, Prepared] | dict[str, Portal] = self.statements if msg.kind == "S" else self.portals
        item = table.pop(msg.name, None)
        if item is not None and item.on_catalog:
            await self._forward(msg)
            return
        if isinstance(item, Portal) and item.rows is not None:
            self.session.results.cursors.pop(msg.name, None)
            await item.rows.close()
        await self._drain()
        self.session.send(m.CloseComplete())

    async def _cursor_statement(self, portal: Portal) -> None:
        results, sql = self.session.results, portal.prepared.sql
        declare, fetch, close = parse_declare(sql), parse_fetch(sql), parse_close(sql)
        if declare is not None and portal.compiled is not None:
            results.declare(declare, portal.compiled)
        elif fetch is not None:
            await results.fetch(fetch, describe=False, formats=portal.formats)
        elif close is not None:
            await results.close(close)
        else:
            raise FeatureNotSupported("a cursor over a metric query can only FETCH or MOVE forward")

    # -- helpers ----------------------------------------------------------------------
    async def _description(
        self, prepared: Prepared, compiled: CompiledQuery | None, formats: tuple[int, ...] | None
    ) -> m.RowDescription | m.NoData:
        """What Describe answers: the result columns, or NoData for a statement without rows."""
        if prepared.cursor == "FETCH":
            fetch = parse_fetch(prepared.sql)
            if fetch is not None and fetch.name in self.session.results.cursors:
                return await self.session.results.description(fetch.name, formats)
            return m.NoData()
        if prepared.cursor:
            return m.NoData()
        schema = await self._schema(prepared, compiled)
        return row_description(schema, formats) if schema is not None else m.NoData()

    def _parameter_types(self, tree: exp.Expr, given: tuple[int, ...]) -> tuple[int, ...]:
        server, path = self.session.server, self.session.search_path()
        tables = list(tree.find_all(exp.Table))

        def column_type(column: exp.Column) -> int | None:
            ddl = server.column_type(path, tables, column.name)
            return oid_of_ddl(ddl) if ddl else None

        return infer_types(tree, given, column_type)

    def _compile(self, tree: str | exp.Expr) -> CompiledQuery:
        session = self.session
        return compile_query(
            tree, session.server.registry, session.search_path(), session.server.engine.dialect
        )

    async def _schema(self, prepared: Prepared, compiled: CompiledQuery | None) -> pa.Schema | None:
        """The result columns, from the compiled plan and the engine, without running the query."""
        compiled = compiled or prepared.explained
        if compiled is None:
            if prepared.tree is None:
                return None
            if prepared.schema is not None:
                return prepared.schema
            nulls = [None] * len(prepared.param_types)
            bound = bind(prepared.tree, nulls, (), prepared.param_types) if nulls else prepared.sql
            compiled = self._compile(bound)
        session = self.session
        schema = await result_schema(session.engine, session.server.registry, compiled)
        prepared.schema = schema
        return schema
