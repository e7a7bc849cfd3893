"""What a session answers from the engine in the simple query protocol: a metric SELECT's
rows, COPY (metric query) TO STDOUT in text or CSV, and SQL cursors over metric queries
(DECLARE ... CURSOR FOR / FETCH n / MOVE n / CLOSE), as psqlODBC's declare/fetch mode uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from semproxy.cursors import CloseCursor, Declare, Fetch, RowStream, named, result_schema
from semproxy.errors import (
    DuplicateCursor,
    FeatureNotSupported,
    InvalidCursorName,
    NoActiveTransaction,
)
from semproxy.pg import messages as m
from semproxy.pg.copy import CopyFormat, copy_header, copy_rows
from semproxy.pg.rows import encode_batch, row_description
from semproxy.plan.compile import CompiledQuery, compile_query
from semproxy.sql.parse import parse_statement

if TYPE_CHECKING:
    from semproxy.session import Session


@dataclass
class SqlCursor:
    rows: RowStream
    compiled: CompiledQuery
    binary: bool
    hold: bool


@dataclass
class Results:
    session: Session
    cursors: dict[str, SqlCursor] = field(default_factory=dict)

    def start(self, compiled: CompiledQuery) -> RowStream:
        return RowStream(self.session.engine.execute(compiled.sql))

    async def select(self, compiled: CompiledQuery) -> None:
        """RowDescription, every DataRow, CommandComplete."""
        rows = self.start(compiled)
        try:
            await self._send_rows(rows, compiled, None, described=False)
        finally:
            await rows.close()
        self.session.send(m.CommandComplete.rows("SELECT", rows.sent))

    async def _send_rows(
        self,
        rows: RowStream,
        compiled: CompiledQuery,
        formats: Sequence[int] | None,
        *,
        described: bool,
        limit: int | None = None,
    ) -> None:
        session = self.session
        async for batch in rows.take(limit):
            if not described:
                session.send(row_description(named(batch.schema, compiled), formats))
                described = True
            await session.write_rows(encode_batch(batch, formats, session.timezone))
        if not described:  # no rows at all: the schema still comes from the engine
            schema = await result_schema(session.engine, session.server.registry, compiled)
            session.send(row_description(schema, formats))

    # -- COPY ----------------------------------------------------------------------------------
    def copy_query(self, sql: str) -> tuple[CompiledQuery, CopyFormat] | None:
        """The compiled query and format of `COPY (metric query) TO STDOUT [options]`."""
        tree = parse_statement(sql)
        if not isinstance(tree, exp.Copy) or tree.args.get("kind") or not isinstance(tree.this, exp.Subquery):
            return None
        files = tree.args.get("files") or []
        if [f.name.upper() for f in files] != ["STDOUT"]:
            raise FeatureNotSupported("COPY of a metric query can only go TO STDOUT")
        session = self.session
        compiled = compile_query(
            tree.this.this, session.server.registry, session.search_path(), session.server.engine.dialect
        )
        return compiled, _copy_format(tree.args.get("params") or [])

    async def copy(self, compiled: CompiledQuery, fmt: CopyFormat) -> None:
        session = self.session
        rows = self.start(compiled)
        try:
            first = True
            async for batch in rows.take(None):
                if first:
                    session.send(m.CopyOutResponse(0, (0,) * batch.num_columns))
                    if fmt.header:
                        session.write(copy_header(named(batch.schema, compiled).names, fmt))
                    first = False
                await session.write_rows(copy_rows(batch, fmt, session.timezone))
            if first:
                schema = await result_schema(session.engine, session.server.registry, compiled)
                session.send(m.CopyOutResponse(0, (0,) * len(schema)))
                if fmt.header:
                    session.write(copy_header(schema.names, fmt))
        finally:
            await rows.close()
        session.send(m.CopyDone())
        session.send(m.CommandComplete.rows("COPY", rows.sent))

    # -- SQL cursors ---------------------------------------------------------------------------
    def declare(self, statement: Declare, compiled: CompiledQuery) -> None:
        if not statement.hold and self.session.status() != "T":
            raise NoActiveTransaction("DECLARE CURSOR can only be used in transaction blocks")
        if statement.name in self.cursors:
            raise DuplicateCursor(f'cursor "{statement.name}" already exists')
        self.cursors[statement.name] = SqlCursor(
            self.start(compiled), compiled, statement.binary, statement.hold
        )
        self.session.send(m.CommandComplete("DECLARE CURSOR"))

    async def description(self, name: str, formats: Sequence[int] | None) -> m.RowDescription:
        """The RowDescription a FETCH from cursor `name` answers (Describe of it, or of the cursor)."""
        cursor = self.cursors[name]
        session = self.session
        schema = await result_schema(session.engine, session.server.registry, cursor.compiled)
        return row_description(schema, [1] if cursor.binary else formats)

    async def fetch(
        self, statement: Fetch, *, describe: bool = True, formats: Sequence[int] | None = None
    ) -> None:
        cursor = self.cursors.get(statement.name)
        if cursor is None:
            raise InvalidCursorName(f'cursor "{statement.name}" does not exist')
        before = cursor.rows.sent
        if statement.move:
            async for _ in cursor.rows.take(statement.count):
                pass
            self.session.send(m.CommandComplete.rows("MOVE", cursor.rows.sent - before))
            return
        formats = [1] if cursor.binary else formats
        await self._send_rows(
            cursor.rows, cursor.compiled, formats, described=not describe, limit=statement.count
        )
        self.session.send(m.CommandComplete.rows("FETCH", cursor.rows.sent - before))

    async def close(self, statement: CloseCursor) -> None:
        names = list(self.cursors) if statement.name is None else [statement.name]
        for name in names:
            cursor = self.cursors.pop(name, None)
            if cursor is None:
                raise InvalidCursorName(f'cursor "{name}" does not exist')
            await cursor.rows.close()
        if statement.name is not None:
            self.session.send(m.CommandComplete("CLOSE CURSOR"))

    async def end_of_transaction(self) -> None:
        """The transaction ended: cursors without HOLD close with it, as in Postgres."""
        for name in [n for n, c in self.cursors.items() if not c.hold]:
            await self.cursors.pop(name).rows.close()

    async def close_all(self) -> None:
        for cursor in self.cursors.values():
            await cursor.rows.close()
        self.cursors.clear()


def _copy_format(params: list[exp.Expr]) -> CopyFormat:
    csv = header = False
    delimiter, null = "", None
    for param in params:
        name = param.this.name.upper()
        value = param.args.get("expression")
        text = value.name if isinstance(value, exp.Expr) else ""
        if isinstance(value, exp.Boolean):
            text = "true" if value.this else "false"
        if name == "FORMAT" and text.lower() not in ("text", "csv"):
            raise FeatureNotSupported(
                f"COPY format {text} is not supported for metric queries; use text or csv"
            )
        if (name == "FORMAT" and text.lower() == "csv") or name == "CSV":
            csv = True
            header = header or text.upper() == "HEADER"
        elif name == "HEADER":
            header = text.lower() not in ("false", "off", "0")
        elif name == "DELIMITER":
            delimiter = text
        elif name == "NULL":
            null = text
    return CopyFormat(csv, delimiter, null, header)
