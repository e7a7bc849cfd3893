"""Running metric results read a number of rows at a time: what an extended-protocol portal
and a SQL cursor (DECLARE ... CURSOR FOR / FETCH n / MOVE n / CLOSE) hold.

The SQL cursor statements over metric queries are recognised here, by their heads, so that
they never reach the catalog server (where a metric table is empty: a silent wrong answer).
Only forward fetches exist: a metric result is a stream.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pyarrow as pa

from semproxy.engines.base import Engine
from semproxy.plan.compile import CompiledQuery
from semproxy.semantic.registry import Registry

SCHEMA_CACHE_SIZE = 1024
# engine result schemas by (dialect, SQL), per registry (by identity: a model reload
# describes again), forgotten with the registry
_SCHEMAS: dict[int, tuple[weakref.ref[Registry], OrderedDict[tuple[str, str, str], pa.Schema]]] = {}


def named(schema: pa.Schema, compiled: CompiledQuery) -> pa.Schema:
    """The engine's result schema with the client-facing column names of the compiled query."""
    names = [*compiled.columns, *schema.names[len(compiled.columns) :]]
    return pa.schema([f.with_name(n) for f, n in zip(schema, names, strict=True)])


async def result_schema(engine: Engine, registry: Registry, compiled: CompiledQuery) -> pa.Schema:
    """The client-facing result schema of `compiled` without running it (what Describe and
    an empty result answer). The engine describes each SQL text once per registry."""
    cache = _schema_cache(registry)
    key = (engine.dialect, engine.principal, compiled.sql)  # one user's Describe never answers another's
    schema = cache.get(key)
    if schema is None:
        schema = await engine.describe(compiled.sql)
        cache[key] = schema
        if len(cache) > SCHEMA_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return named(schema, compiled)


def _schema_cache(registry: Registry) -> OrderedDict[tuple[str, str, str], pa.Schema]:
    owner = id(registry)
    found = _SCHEMAS.get(owner)
    if found is not None and found[0]() is registry:
        return found[1]
    cache: OrderedDict[tuple[str, str, str], pa.Schema] = OrderedDict()
    _SCHEMAS[owner] = (weakref.ref(registry, lambda _: _SCHEMAS.pop(owner, None)), cache)
    return cache


@dataclass
class RowStream:
    """A running engine query, consumed `limit` rows at a time."""

    batches: AsyncIterator[pa.RecordBatch]
    leftover: pa.RecordBatch | None = None
    sent: int = 0
    done: bool = False

    async def take(self, limit: int | None) -> AsyncIterator[pa.RecordBatch]:
        """Yield the next `limit` rows (all the rest when None) as batches."""
        got = 0
        while not self.done and (limit is None or got < limit):
            batch, self.leftover = self.leftover, None
            if batch is None:
                batch = await anext(self.batches, None)
                if batch is None:
                    self.done = True
                    break
            if limit is not None and batch.num_rows > limit - got:
                self.leftover = batch.slice(limit - got)
                batch = batch.slice(0, limit - got)
            got += batch.num_rows
            self.sent += batch.num_rows
            if batch.num_rows:
                yield batch

    async def close(self) -> None:
        """Stop the engine query (DuckDB interrupts it) and free what it holds."""
        self.done = True
        self.leftover = None
        await self.batches.aclose()  # type: ignore[attr-defined]


# ---- SQL cursor statements ---------------------------------------------------------------------

_NAME = r'(?P<name>"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_DECLARE = re.compile(
    r"^\s*DECLARE\s+" + _NAME + r"\s+(?P<options>(?:(?:BINARY|ASENSITIVE|INSENSITIVE|NO|SCROLL)\s+)*)"
    r"CURSOR\s+(?:(?P<hold>WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(?P<query>.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FETCH = re.compile(
    r"^\s*(?P<verb>FETCH|MOVE)\s+(?:(?P<direction>NEXT|ALL|FORWARD(?:\s+(?:ALL|\+?\d+))?|\+?\d+)\s+)?"
    r"(?:(?:FROM|IN)\s+)?" + _NAME + r"\s*;?\s*$",
    re.IGNORECASE,
)
_CLOSE = re.compile(r"^\s*CLOSE\s+(?:(?P<all>ALL)|" + _NAME + r")\s*;?\s*$", re.IGNORECASE)


_HEAD = re.compile(r"^\s*([A-Za-z]+)")


def head(sql: str) -> str:
    """A statement's first word, upper-cased: head(' fetch 10 in c') == 'FETCH'."""
    found = _HEAD.match(sql)
    return found.group(1).upper() if found else ""


def _name(raw: str) -> str:
    return raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()


@dataclass(frozen=True)
class Declare:
    name: str
    query: str
    binary: bool
    hold: bool


@dataclass(frozen=True)
class Fetch:
    name: str
    count: int | None  # None: ALL
    move: bool  # MOVE skips the rows instead of returning them


@dataclass(frozen=True)
class CloseCursor:
    name: str | None  # None: CLOSE ALL


def parse_declare(sql: str) -> Declare | None:
    found = _DECLARE.match(sql)
    if found is None:
        return None
    options = found["options"].upper().split()
    return Declare(
        _name(found["name"]), found["query"], "BINARY" in options, (found["hold"] or "").upper() == "WITH"
    )


def parse_fetch(sql: str) -> Fetch | None:
    found = _FETCH.match(sql)
    if found is None:
        return None
    direction = (found["direction"] or "NEXT").upper().split()
    word = direction[-1]
    count = None if word == "ALL" else 1 if word in ("NEXT", "FORWARD") else int(word)
    return Fetch(_name(found["name"]), count, found["verb"].upper() == "MOVE")


def parse_close(sql: str) -> CloseCursor | None:
    found = _CLOSE.match(sql)
    if found is None:
        return None
    return CloseCursor(None if found["all"] else _name(found["name"]))


def cursor_name(sql: str) -> str | None:
    """The cursor a FETCH/MOVE/CLOSE statement names, also for directions we do not support."""
    found = re.match(r"^\s*(?:FETCH|MOVE|CLOSE)\b.*?(?:\s|^)" + _NAME + r"\s*;?\s*$", sql, re.I | re.S)
    return _name(found["name"]) if found else None
