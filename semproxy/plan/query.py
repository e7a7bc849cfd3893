"""The semantic query: a client SELECT on one virtual table, resolved against its columns.

Resolution turns the client's tree into three parts the compiler renders:

- `keys`: the grain, each an expression over dimensions (`DimRef` nodes);
- `where` and leaf filters: predicates over dimensions, rendered per model;
- `outputs`, `having`, `order`: expressions over the grain's keys (`_k<i>` of the
  `__keys` relation) and the leaf aggregates (`_m<j>`), evaluated after the per-model
  aggregates are joined.

Every rule of the SQL interface about what a column may be used for is enforced here,
with Postgres's SQLSTATEs and a position into the query text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from semproxy.errors import (
    FeatureNotSupported,
    GroupingError,
    InvalidParameterValue,
    UndefinedColumn,
    UndefinedTable,
)
from semproxy.plan.metrics import Expander, Leaf, allowed_aggregates, needs_time
from semproxy.plan.tables import DimBinding, SchemaIndex, TableScope
from semproxy.semantic.model import Grain, SemanticModel
from semproxy.sql.parse import did_you_mean, ident_name, output_name, parse_expr, position

KEYS = "__keys"
COMPILED = "semproxy_compiled"  # meta flag of a nested metric query compiled where it stands
AGG_KINDS: dict[type[exp.Expr], str] = {
    exp.Sum: "sum",
    exp.Min: "min",
    exp.Max: "max",
    exp.Avg: "avg",
    exp.AnyValue: "any_value",
    exp.Count: "count",
}
GRAIN_RANK = {"second": -2, "minute": -1, **{g.value: g.rank for g in Grain}}


class DimRef(exp.Expression):
    """A dimension column: `this` is its name in the table of `model` (None: the queried table)."""

    arg_types = {"this": True, "model": False}


class MetricValue(exp.Expression):
    """A metric evaluated at the query's grain; `this` is its formula over leaf columns."""

    arg_types = {"this": True}


@dataclass
class SemanticQuery:
    scope: TableScope
    bindings: dict[str, DimBinding]
    keys: list[exp.Expr] = field(default_factory=list)
    where: exp.Expr | None = None
    outputs: list[tuple[exp.Expr, str]] = field(default_factory=list)
    having: exp.Expr | None = None
    order: list[exp.Ordered] = field(default_factory=list)
    limit: exp.Expr | None = None
    offset: exp.Expr | None = None
    distinct: bool = False
    leaves: dict[Leaf, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # leaf alias -> the metric that needs it


def key_ref(i: int) -> exp.Column:
    return exp.column(f"_k{i}", table=KEYS)


class Resolver:
    """Resolves one SELECT on one virtual table into a SemanticQuery."""

    def __init__(
        self, select: exp.Select, scope: TableScope, index: SchemaIndex, qualifiers: set[str]
    ) -> None:
        self.select = select
        self.scope = scope
        self.index = index
        self.category = index.category
        self.qualifiers = qualifiers
        self.expander = Expander(index.category, self._filter)
        self.query = SemanticQuery(scope, scope.dims)

    # -- entry -------------------------------------------------------------
    def resolve(self) -> SemanticQuery:
        s, q = self.select, self.query
        if s.args.get("distinct") is not None and s.args["distinct"].args.get("on") is not None:
            raise FeatureNotSupported("SELECT DISTINCT ON is not supported on metric tables")
        q.distinct = s.args.get("distinct") is not None
        items = self._expand_star(s.expressions)
        view = s.args.get("group") is None and not any(_has_aggregate(i) for i in items + _clauses(s))
        if s.args.get("where") is not None:
            q.where = self._resolve(s.args["where"].this, "where")
        resolved = [
            self._resolve(i.unalias() if isinstance(i, exp.Alias) else i, "view" if view else "select")
            for i in items
        ]
        names = [output_name(i) for i in items]
        aliases = {
            ident_name(i.args["alias"]): r
            for i, r in zip(items, resolved, strict=True)
            if isinstance(i, exp.Alias)
        }
        if view:
            q.keys = _unique(r for r in resolved if not r.find(MetricValue))
        elif s.args.get("group") is not None:
            q.keys = self._group(s.args["group"], resolved, aliases)
        q.outputs = [(self._outer(r), n) for r, n in zip(resolved, names, strict=True)]
        if s.args.get("having") is not None:
            q.having = self._outer(self._resolve(s.args["having"].this, "select"))
        if s.args.get("order") is not None:
            q.order = [self._order(o, names, view) for o in s.args["order"].expressions]
        q.limit, q.offset = s.args.get("limit"), s.args.get("offset")
        q.leaves = self.expander.leaves
        return q

    def _expand_star(self, items: list[exp.Expr]) -> list[exp.Expr]:
        """`*`: the table's own dimensions, then every metric that has a value at their grain."""
        out: list[exp.Expr] = []
        for item in items:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                own = [
                    n
                    for n, b in self.scope.dims.items()
                    if b.kind != "entity" and "__" not in n and n != "metric_time"
                ]
                timed = any(self.scope.dims[n].kind == "time" for n in own)
                metrics = [m for m in self.scope.metrics if timed or not needs_time(self.category, m)]
                out += [exp.column(n) for n in own + metrics]
            else:
                out.append(item)
        return out

    # -- GROUP BY ----------------------------------------------------------
    def _group(
        self, group: exp.Group, resolved: list[exp.Expr], aliases: dict[str, exp.Expr]
    ) -> list[exp.Expr]:
        if group.args.get("all"):
            return _unique(r for r in resolved if not r.find(MetricValue))
        keys = []
        for item in group.expressions:
            if isinstance(item, exp.Literal) and not item.is_string:
                index = int(item.name)
                if not 1 <= index <= len(resolved):
                    raise GroupingError(
                        f"GROUP BY position {index} is not in select list", position=position(item)
                    )
                key = resolved[index - 1]
            elif (
                isinstance(item, exp.Column)
                and not item.table
                and self._lookup(item) is None
                and ident_name(item.this) in aliases
            ):
                key = aliases[ident_name(item.this)]
            else:
                key = self._resolve(item, "group")
            if key.find(MetricValue):
                raise GroupingError(
                    "aggregate functions are not allowed in GROUP BY", position=position(item)
                )
            keys.append(key)
        return _unique(keys)

    # -- ORDER BY ----------------------------------------------------------
    def _order(self, ordered: exp.Ordered, names: list[str], view: bool) -> exp.Ordered:
        this = ordered.this
        out = ordered.copy()
        if isinstance(this, exp.Literal) and not this.is_string:
            if not 1 <= int(this.name) <= len(names):
                raise GroupingError(
                    f"ORDER BY position {this.name} is not in select list", position=position(this)
                )
            return out
        if isinstance(this, exp.Column) and not this.table and ident_name(this.this) in names:
            out.set("this", exp.Literal.number(names.index(ident_name(this.this)) + 1))
            return out
        out.set("this", self._outer(self._resolve(this, "view" if view else "select")))
        return out

    # -- column and aggregate resolution -------------------------------------
    def _lookup(self, col: exp.Column) -> DimBinding | str | None:
        name = ident_name(col.this)
        if col.table and ident_name(col.args["table"]) not in self.qualifiers:
            raise UndefinedTable(f'missing FROM-clause entry for table "{col.table}"', position=position(col))
        if name in self.scope.dims:
            return self.scope.dims[name]
        return name if name in self.scope.metrics else None

    def _unknown(self, col: exp.Column) -> UndefinedColumn:
        name = ident_name(col.this)
        close = did_you_mean(name, self.scope.names)
        return UndefinedColumn(
            f'column "{name}" does not exist in {self.scope.schema}.{self.scope.table.name}',
            hint=f"Perhaps you meant {close}." if close else None,
            position=position(col),
        )

    def _resolve(self, node: exp.Expr, clause: str) -> exp.Expr:
        def visit(n: exp.Expr) -> exp.Expr:
            if n.meta.get(COMPILED):
                return n.copy()  # a nested metric query, already compiled: kept whole
            if isinstance(n, exp.Column) and not isinstance(n.this, exp.Star):
                return self._column(n, clause)
            if _is_measure(n) or isinstance(n, exp.AggFunc | exp.Filter):
                if clause == "adhoc":
                    raise GroupingError("aggregate function calls cannot be nested", position=position(n))
                if clause in ("where", "group", "filter"):
                    where = {"where": "WHERE", "group": "GROUP BY", "filter": "FILTER"}[clause]
                    raise GroupingError(
                        f"aggregate functions are not allowed in {where}",
                        position=position(n),
                        hint="filter on metrics in HAVING" if clause == "where" else None,
                    )
                return self._aggregate(n, ())
            return n

        resolved = node.copy().transform(visit, copy=False)
        check_grains(resolved, self.scope.dims)
        return resolved

    def _column(self, col: exp.Column, clause: str) -> exp.Expr:
        found = self._lookup(col)
        if found is None:
            raise self._unknown(col)
        if isinstance(found, DimBinding):
            ref = DimRef(this=found.name)
            ref.meta["position"] = position(col)
            return ref
        if clause == "view":
            return self._metric(found, ())
        if clause == "where":
            raise GroupingError(
                f'metric "{found}" cannot be used in WHERE',
                position=position(col),
                hint=f"WHERE filters rows before aggregation; filter metrics in HAVING, e.g. HAVING MEASURE({found}) > ...",
            )
        if clause == "adhoc":
            raise GroupingError(
                f'metric "{found}" can only be aggregated on its own',
                hint=f"write MEASURE({found}) or SUM({found}), and compute around it",
                position=position(col),
            )
        if clause in ("group", "filter"):
            raise GroupingError(
                f'metric "{found}" cannot be used in {"GROUP BY" if clause == "group" else "FILTER (WHERE ...)"}',
                hint="FILTER (WHERE ...) takes dimensions; filter on metrics in HAVING"
                if clause == "filter"
                else None,
                position=position(col),
            )
        raise GroupingError(
            f'metric column "{found}" must be used in MEASURE() or an aggregate function',
            hint=f"wrap it in MEASURE(): MEASURE({found})",
            position=position(col),
        )

    def _filter(self, text: str, model: SemanticModel) -> exp.Expr:
        """A metric's filter, written against the columns of its own model's table."""
        dims = self.index.scopes[model.name].dims

        def visit(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Column):
                name = ident_name(n.this)
                if name not in dims:
                    raise UndefinedColumn(
                        f'the filter of a metric of {model.name} names "{name}", which is not its dimension'
                    )
                return DimRef(this=dims[name].name, model=model.name)
            return n

        return parse_expr(text).copy().transform(visit, copy=False)

    def _aggregate(self, node: exp.Expr, filters: tuple[exp.Expr, ...]) -> exp.Expr:
        if isinstance(node, exp.Filter):
            pred = self._resolve(node.expression.this, "filter")
            return self._aggregate(node.this, (*filters, pred))
        args = node.expressions if _is_measure(node) else [node.this] if node.this is not None else []
        arg = args[0] if len(args) == 1 else None
        distinct = isinstance(arg, exp.Distinct)
        if distinct:
            assert isinstance(arg, exp.Distinct)
            arg = arg.expressions[0] if len(arg.expressions) == 1 else None
        if isinstance(arg, exp.Star) and isinstance(node, exp.Count):
            return self._count_rows(node, filters, None)
        found = self._lookup(arg) if isinstance(arg, exp.Column) else None
        if isinstance(found, str):
            return self._metric_agg(node, found, filters, distinct)
        if _is_measure(node):
            what = (
                f'"{found.name}" is a dimension'
                if isinstance(found, DimBinding)
                else "it takes one metric column"
            )
            raise GroupingError(f"MEASURE() needs a metric column: {what}", position=position(node))
        inner = node.copy()  # an aggregate over dimensions: MIN(order_date), COUNT(DISTINCT status)
        for child in list(inner.iter_expressions()):
            child.replace(self._resolve(child, "adhoc"))
        return self._count_rows(node, filters, inner)

    def _metric_agg(
        self, node: exp.Expr, metric: str, filters: tuple[exp.Expr, ...], distinct: bool
    ) -> exp.Expr:
        if not _is_measure(node):
            kind = AGG_KINDS.get(type(node))
            kind = "count_distinct" if kind == "count" and distinct else kind
            allowed = allowed_aggregates(self.category, metric)
            if kind not in allowed:
                forms = ", ".join(sorted(_agg_sql(a, metric) for a in allowed))
                raise GroupingError(
                    f'{output_name(node).upper()}{"(DISTINCT " if distinct else "("}{metric}) is not an aggregate of metric "{metric}"',
                    hint=f"use MEASURE({metric}) or one of: {forms}",
                    position=position(node),
                )
        return self._metric(metric, filters)

    def _metric(self, metric: str, filters: tuple[exp.Expr, ...]) -> exp.Expr:
        before = len(self.expander.leaves)
        formula = self.expander.metric(metric, filters)
        for alias in list(self.expander.leaves.values())[before:]:
            self.query.origins[alias] = metric
        return MetricValue(this=formula)

    def _count_rows(self, node: exp.Expr, filters: tuple[exp.Expr, ...], adhoc: exp.Expr | None) -> exp.Expr:
        model = self.scope.model
        if model is None:
            raise FeatureNotSupported(
                "COUNT(*) and aggregates of dimensions need a model table, not the metrics table",
                position=position(node),
            )
        leaf = Leaf(model.name, None, filters, adhoc=adhoc)
        alias = self.expander.leaves.setdefault(leaf, f"_m{len(self.expander.leaves)}")
        self.query.origins.setdefault(alias, "COUNT(*)" if adhoc is None else node.sql())
        return MetricValue(this=exp.column(alias))

    # -- after aggregation ---------------------------------------------------
    def _outer(self, resolved: exp.Expr) -> exp.Expr:
        keys = self.query.keys

        def visit(n: exp.Expr) -> exp.Expr:
            for i, key in enumerate(keys):
                if n == key:
                    return key_ref(i)
            if isinstance(n, MetricValue):
                return n.this
            if isinstance(n, DimRef):
                raise GroupingError(
                    f'column "{n.name}" must appear in the GROUP BY clause or be used in an aggregate function',
                    hint="add it to GROUP BY, or write GROUP BY ALL",
                    position=n.meta.get("position"),
                )
            return n

        return resolved.transform(visit, copy=True)


def _clauses(s: exp.Select) -> list[exp.Expr]:
    return [s.args[k] for k in ("having", "order") if s.args.get(k) is not None]


def _is_measure(n: exp.Expr) -> bool:
    return isinstance(n, exp.Anonymous) and n.name.upper() == "MEASURE"


def _has_aggregate(n: exp.Expr) -> bool:
    return any(_is_measure(x) or isinstance(x, exp.AggFunc) for x in n.walk())


def _agg_sql(kind: str, metric: str) -> str:
    return f"COUNT(DISTINCT {metric})" if kind == "count_distinct" else f"{kind.upper()}({metric})"


def _unique(items: Any) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def check_grains(tree: exp.Expr, bindings: dict[str, DimBinding]) -> None:
    """DATE_TRUNC to a grain finer than the dimension holds is an error (22023)."""
    for trunc in tree.find_all(exp.TimestampTrunc, exp.DateTrunc):
        ref = trunc.this.this if isinstance(trunc.this, exp.Cast) else trunc.this
        unit = trunc.args.get("unit")
        if not isinstance(ref, DimRef) or ref.args.get("model") or unit is None:
            continue
        held = bindings[ref.name].granularity
        grain = unit.name.lower()
        if held is not None and GRAIN_RANK.get(grain, 99) < held.rank:
            raise InvalidParameterValue(
                f'cannot truncate "{ref.name}" to {grain}: it holds {held.value}s',
                hint=f"use a grain of {held.value} or coarser",
                position=ref.meta.get("position"),
            )
