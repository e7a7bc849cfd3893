"""Route each statement of a simple-Query string: compile it, relay it, or refuse it.

    Catalog   relayed byte-for-byte to the catalog server (SET, SHOW, pg_catalog, SELECT 1,
              temp tables, anything sqlglot cannot read)
    Metric    a statement on metric tables, compiled (EXPLAIN of one returns its SQL)
    Refused   writes (25006), metric tables mixed with other relations (0A000), errors
    Empty     an empty query string (EmptyQueryResponse)

A statement naming a metric table never reaches the catalog server, where the table is
empty: that would be a silent wrong answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from semproxy.errors import FeatureNotSupported, ReadOnlyViolation, SemproxyError, UndefinedTable
from semproxy.plan.cache import CompiledQuery, plan_cache, remember
from semproxy.plan.compile import compile_query
from semproxy.plan.tables import resolve_table, schema_index
from semproxy.semantic.registry import Registry
from semproxy.sql.parse import POSTGRES, mask_literals, parse_statement, split_statements, table_parts

WRITES = {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "DROP", "ALTER", "GRANT", "REVOKE", "COMMENT",
          "REFRESH", "REINDEX", "CLUSTER", "CALL", "DO", "IMPORT", "SECURITY", "LOCK"}  # fmt: skip
TEMP_WORDS = {"TEMP", "TEMPORARY"}
EXPLAIN_OPTIONS = {"ANALYZE", "ANALYSE", "VERBOSE"}
PLAN_COLUMN = "QUERY PLAN"


@dataclass(frozen=True)
class Catalog:
    sql: str  # relay this statement text unchanged to the real PostgreSQL catalog server


@dataclass(frozen=True)
class Metric:
    sql: str
    compiled: CompiledQuery


@dataclass(frozen=True)
class Refused:
    sql: str
    error: SemproxyError


@dataclass(frozen=True)
class Empty:
    pass


Routed = Catalog | Metric | Refused | Empty


def route(
    text: str, registry: Registry, search_path: Sequence[str] = ("production",), dialect: str = "duckdb"
) -> list[Routed]:
    """Split `text` at top-level `;` and route each statement, keeping its exact text.

    Cached per Registry when nothing was refused: BI tools repeat the same strings."""
    cache = plan_cache(registry)
    path = tuple(search_path)
    key = (text, path, dialect)
    hit = cache.routes.get(key)
    if hit is not None:
        return list(hit)
    masked = mask_literals(text)
    shape = (masked.key, path, dialect) if masked is not None and ";" not in masked.key else None
    if shape is not None and shape in cache.route_shapes:
        routed = [_metric_by_shape(text, registry, path, dialect)]
    else:
        routed = _route_all(text, registry, search_path, dialect)
        if shape is not None and isinstance(routed[0], Metric) and _words(routed[0].sql)[:1] != ["EXPLAIN"]:
            remember(cache.route_shapes, shape, "metric")
    if not any(isinstance(r, Refused) for r in routed):
        remember(cache.routes, key, routed)
    return list(routed)


def _metric_by_shape(text: str, registry: Registry, path: tuple[str, ...], dialect: str) -> Routed:
    """One statement of a shape already routed as a metric query: its tables, words and
    clauses are those of that query, only its literal values differ, so it is compiled
    (from the plan cache) without being parsed or routed again."""
    statement = text.strip()
    try:
        return Metric(statement, compile_query(statement, registry, path, dialect))
    except SemproxyError as err:
        if err.position is not None:
            err.position += len(text) - len(text.lstrip())
        return Refused(statement, err)


def _route_all(text: str, registry: Registry, search_path: Sequence[str], dialect: str) -> list[Routed]:
    spans = split_statements(text)
    if not spans:
        return [Empty()]
    routed: list[Routed] = []
    for start, end in spans:
        statement = text[start:end]
        try:
            routed.append(_route_one(statement, registry, tuple(search_path), dialect))
        except SemproxyError as err:
            if err.position is not None:
                err.position += start  # positions count from the start of the whole query string
            routed.append(Refused(statement, err))
    return routed


def _route_one(statement: str, registry: Registry, path: tuple[str, ...], dialect: str) -> Routed:
    words = _words(statement)
    first = words[0] if words else ""
    if first == "EXPLAIN":
        return _explain(statement, registry, path, dialect)
    if first == "CREATE":
        return _create(statement, words, registry, path)
    if first == "COPY":
        return _copy(statement, registry, path)
    tree = parse_statement(statement)
    if first in WRITES or (tree is not None and _writes(tree)):
        return _write(statement, first, tree, registry, path)
    if tree is None:
        return Catalog(statement)
    metric, other = _relations(tree, registry, path)
    if metric and other:
        names = ", ".join(sorted(other))
        raise FeatureNotSupported(
            f"a query cannot mix metric tables with other relations ({names})",
            hint="query metric tables on their own; the metrics table joins every metric of a schema",
        )
    if metric:
        if isinstance(tree, exp.Select) and tree.args.get("into") is not None:
            raise ReadOnlyViolation("cannot execute SELECT INTO in a read-only transaction")
        return Metric(statement, compile_query(statement, registry, path, dialect))
    if _mentions_measure(tree):
        tables = ", ".join(sorted(_tables_of(registry, path)))
        raise UndefinedTable(
            f'relation "{", ".join(sorted(other)) or "?"}" does not exist',
            hint=f"The metric tables are: {tables}.",
        )
    return Catalog(statement)


def _words(statement: str) -> list[str]:
    try:
        tokens = POSTGRES.tokenize(statement)
    except Exception:
        return statement.split()[:1]
    return [t.text.upper() for t in tokens[:6]]


def _explain(statement: str, registry: Registry, path: tuple[str, ...], dialect: str) -> Routed:
    offset = _explained_start(statement)
    if offset >= len(statement):
        return Catalog(statement)
    try:
        inner = _route_one(statement[offset:], registry, path, dialect)
    except SemproxyError as err:
        if err.position is not None:
            err.position += offset
        raise
    if isinstance(inner, Metric):
        return Metric(statement, explain(inner.compiled, dialect))
    return inner if isinstance(inner, Refused) else Catalog(statement)


def _explained_start(statement: str) -> int:
    """Where the statement under EXPLAIN [(options)] [ANALYZE] [VERBOSE] starts.

    Scanned by hand: the Postgres tokenizer reads everything after EXPLAIN as one string."""
    i = len("EXPLAIN")
    while True:
        while i < len(statement) and statement[i].isspace():
            i += 1
        if statement.startswith("(", i):
            close = statement.find(")", i)
            i = len(statement) if close < 0 else close + 1
            continue
        word = statement[i:].split(None, 1)[0] if statement[i:].strip() else ""
        if word.upper() not in EXPLAIN_OPTIONS:
            return i
        i += len(word)


def explain(compiled: CompiledQuery, dialect: str) -> CompiledQuery:
    """A query whose rows are the lines of the warehouse SQL, in one text column."""
    lines = compiled.tree.sql(dialect=dialect, pretty=True).splitlines()
    values = exp.values([(i, line) for i, line in enumerate(lines)], alias="plan", columns=["n", "line"])
    tree = exp.select(exp.column("line").as_(PLAN_COLUMN, quoted=True)).from_(values).order_by("n")
    return CompiledQuery(tree.sql(dialect=dialect), (PLAN_COLUMN,), tree)


def _create(statement: str, words: list[str], registry: Registry, path: tuple[str, ...]) -> Routed:
    if not TEMP_WORDS & set(words[1:3]):
        # refused before its names are resolved: creating a new table in a schema of ours is
        # a write, not a missing relation
        raise ReadOnlyViolation("cannot execute CREATE in a read-only transaction", hint=_READ_ONLY)
    tree = parse_statement(statement)
    if tree is not None:
        metric, _ = _relations(tree, registry, path)
        if metric:
            raise FeatureNotSupported("a metric table cannot be used in CREATE", hint="query it with SELECT")
    return Catalog(statement)


def _copy(statement: str, registry: Registry, path: tuple[str, ...]) -> Routed:
    tree = parse_statement(statement)
    if tree is None or (isinstance(tree, exp.Copy) and tree.args.get("kind")):
        raise ReadOnlyViolation("cannot execute COPY FROM in a read-only transaction", hint=_READ_ONLY)
    metric, _ = _relations(tree, registry, path)
    if metric:
        raise FeatureNotSupported("COPY of a metric table is not supported", hint="query it with SELECT")
    return Catalog(statement)


_READ_ONLY = "semproxy is read-only: only temporary tables of this session can be written"


def _writes(tree: exp.Expr) -> bool:
    return any(isinstance(n, exp.Insert | exp.Update | exp.Delete | exp.Merge) for n in tree.walk())


def _write(
    statement: str, word: str, tree: exp.Expr | None, registry: Registry, path: tuple[str, ...]
) -> Routed:
    targets = _targets(tree) if tree is not None else None
    if targets is not None and all(_temporary(t, registry, path) for t in targets):
        return Catalog(statement)
    verb = word if word in WRITES else "a data-modifying statement"
    raise ReadOnlyViolation(f"cannot execute {verb} in a read-only transaction", hint=_READ_ONLY)


def _targets(tree: exp.Expr) -> list[exp.Table] | None:
    """The tables a write changes, when it is a plain INSERT/UPDATE/DELETE/MERGE/TRUNCATE/DROP TABLE."""
    if isinstance(tree, exp.Insert | exp.Update | exp.Delete | exp.Merge):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        return [target] if isinstance(target, exp.Table) else None
    if isinstance(tree, exp.TruncateTable):
        return [t for t in tree.expressions if isinstance(t, exp.Table)]
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "TABLE":
        tables = tree.args.get("tables") or [tree.this]
        return tables if all(isinstance(t, exp.Table) for t in tables) else None
    return None


def _temporary(table: exp.Table, registry: Registry, path: tuple[str, ...]) -> bool:
    """A table a session may write: not a metric table, and in pg_temp or unqualified (the
    catalog server holds no other table this session's role may write)."""
    schema, _ = table_parts(table)
    if schema is not None and schema != "pg_temp":
        return False
    return resolve_table(table, registry, path) is None


def _relations(tree: exp.Expr, registry: Registry, path: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(metric tables, other relations) a statement reads; CTE names are neither."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    metric: set[str] = set()
    other: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        schema, name = table_parts(table)
        if schema is None and name in ctes:
            continue
        found = resolve_table(table, registry, path)
        (metric if found else other).add(f"{schema}.{name}" if schema else name)
    return metric, other


def _mentions_measure(tree: exp.Expr) -> bool:
    return any(isinstance(n, exp.Anonymous) and n.name.upper() == "MEASURE" for n in tree.walk())


def _tables_of(registry: Registry, path: tuple[str, ...]) -> list[str]:
    return [name for schema in path if (index := schema_index(registry, schema)) for name in index.scopes]
