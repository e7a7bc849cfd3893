"""Named rewrites over sqlglot trees, one function each.

Engine rewrites fix what sqlglot's dialects would otherwise get wrong for us (see
notes/dialect-traps.md); client rewrites (named after the BI tool) normalise idioms.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp


def spark_exact_percentile(tree: exp.Expr) -> exp.Expr:
    """sqlglot prints PERCENTILE_CONT ... WITHIN GROUP as PERCENTILE_APPROX for Spark and
    Databricks; their exact forms are `percentile(x, p)` and `percentile_disc(p) WITHIN GROUP`."""

    def visit(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.WithinGroup):
            return node
        func, order = node.this, node.expression
        value = order.expressions[0].this if isinstance(order, exp.Order) and order.expressions else None
        if value is None:
            return node
        if isinstance(func, exp.PercentileCont):
            return exp.Anonymous(this="PERCENTILE", expressions=[value, func.this])
        if isinstance(func, exp.PercentileDisc):
            disc = exp.Anonymous(this="PERCENTILE_DISC", expressions=[func.this])
            return exp.WithinGroup(this=disc, expression=order)
        return node

    return tree.transform(visit, copy=False)


def merge_views(tree: exp.Expr, is_view: Callable[[exp.Select], bool]) -> exp.Expr:
    """Tableau custom SQL and Metabase models wrap a metric table in an ungrouped selection
    (`SELECT region, order_date, revenue FROM orders`) and aggregate around it. That inner
    selection is a view, not a result: fold it into the query that reads it, so the metrics
    are computed from base rows at the outer query's grain (never a sum of ratios)."""
    for select in reversed(list(tree.find_all(exp.Select))):
        source = select.args.get("from_")
        inner = source.this.this if source is not None and isinstance(source.this, exp.Subquery) else None
        if not isinstance(inner, exp.Select) or select.args.get("joins") or not is_view(inner):
            continue
        assert source is not None
        alias = source.this.alias_or_name
        items = {_name(i): i.unalias() for i in inner.expressions if not isinstance(i, exp.Star)}
        star = any(isinstance(i, exp.Star) for i in inner.expressions)
        _substitute(select, alias, items, star)
        select.set("from_", inner.args["from_"].copy())
        where = inner.args.get("where")
        if where is not None:
            select.where(where.this.copy(), copy=False)
    return tree


def _name(item: exp.Expr) -> str:
    return item.alias_or_name.lower() if not isinstance(item, exp.Alias) else item.alias


def _substitute(select: exp.Select, alias: str, items: dict[str, exp.Expr], star: bool) -> None:
    """Replace the outer query's references to the view's columns by their definitions;
    a select item keeps the name the client gave it."""
    for i, item in enumerate(list(select.expressions)):
        if (
            isinstance(item, exp.Column)
            and not isinstance(item.this, exp.Star)
            and item.name.lower() in items
        ):
            select.expressions[i].replace(exp.alias_(item.copy(), item.name))
    for col in list(select.find_all(exp.Column)):
        if col.find_ancestor(exp.Select) is not select or isinstance(col.this, exp.Star):
            continue
        if col.table and col.table != alias:
            continue
        found = items.get(col.name.lower())
        if found is not None:
            col.replace(found.copy())
        elif star:
            col.set("table", None)


def numeric_keeps_scale(tree: exp.Expr) -> exp.Expr:
    """Postgres `numeric` without precision is exact at any scale; DuckDB reads a bare
    DECIMAL as DECIMAL(18,3) and Spark as DECIMAL(10,0), rounding cents away."""

    def visit(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.DataType) and node.this == exp.DType.DECIMAL and not node.expressions:
            return exp.DataType.build("DECIMAL(38, 10)")
        return node

    return tree.transform(visit, copy=False)


def spark_extract(tree: exp.Expr) -> exp.Expr:
    """Spark counts EXTRACT(DOW) from Sunday = 1 (Postgres: 0) and has no EXTRACT(EPOCH)."""

    def visit(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Extract):
            return node
        part = node.this.name.upper()
        if part == "DOW":
            return exp.paren(exp.Sub(this=node.copy(), expression=exp.Literal.number(1)), copy=False)
        if part == "EPOCH":
            ts = exp.cast(node.expression.copy(), exp.DataType.build("timestamp"))
            micros = exp.Anonymous(this="UNIX_MICROS", expressions=[ts])
            return exp.paren(exp.Div(this=micros, expression=exp.Literal.number(1000000.0)), copy=False)
        return node

    return tree.transform(visit, copy=False)


def spark_date_difference(tree: exp.Expr) -> exp.Expr:
    """`date - date` is a number of days in Postgres and an interval on Spark: a
    difference with a DATE on one side and a column or DATE on the other is DATEDIFF."""

    def dated(node: exp.Expr) -> bool:
        return isinstance(node, exp.Cast) and node.to.this == exp.DType.DATE

    def visit(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Sub):
            return node
        pair = (node.this, node.expression)
        if any(dated(x) for x in pair) and all(dated(x) or isinstance(x, exp.Column) for x in pair):
            return exp.Anonymous(this="DATEDIFF", expressions=list(pair))
        return node

    return tree.transform(visit, copy=False)


_INTEGERS = {exp.DType.TINYINT, exp.DType.SMALLINT, exp.DType.INT, exp.DType.BIGINT}


def integer_division(tree: exp.Expr) -> exp.Expr:
    """Postgres divides two integers as integers (7 / 2 = 3); DuckDB and Spark give 3.5.

    A client's `/` (sqlglot marks it `typed` when read as Postgres) whose operands are
    both known integers (integer literals, integer casts, COUNT, and the plan's columns
    that hold them) becomes integer division. Dimension columns are typed by the engine,
    not known here, so `order_id / 2` still divides as numbers."""
    defined: dict[str, list[exp.Expr]] = {}
    for select in tree.find_all(exp.Select):
        for item in select.expressions:
            if isinstance(item, exp.Alias):
                defined.setdefault(item.alias, []).append(item.this)

    def integer(node: exp.Expr, depth: int = 0) -> bool:
        if depth > 8:
            return False
        if isinstance(node, exp.Paren | exp.Neg):
            return integer(node.this, depth + 1)
        if isinstance(node, exp.Literal):
            return not node.is_string and node.this.isdigit()
        if isinstance(node, exp.Cast):
            return node.to.this in _INTEGERS
        if isinstance(node, exp.Count):
            return True
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.IntDiv):
            return integer(node.this, depth + 1) and integer(node.expression, depth + 1)
        if isinstance(node, exp.Column) and node.name in defined:
            return all(integer(d, depth + 1) for d in defined[node.name])
        return False

    def visit(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Div)
            and node.args.get("typed")
            and integer(node.this)
            and integer(node.expression)
        ):
            return exp.IntDiv(this=node.this, expression=node.expression)
        return node

    return tree.transform(visit, copy=False)


SPARK = (spark_exact_percentile, spark_extract, spark_date_difference, integer_division, numeric_keeps_scale)
ENGINE_QUIRKS = {
    "duckdb": (integer_division, numeric_keeps_scale),
    "spark": SPARK,
    "databricks": SPARK,
}


def for_engine(tree: exp.Expr, dialect: str) -> exp.Expr:
    """Apply the rewrites `dialect` needs, in order, changing `tree` in place."""
    for rewrite in ENGINE_QUIRKS.get(dialect, ()):
        tree = rewrite(tree)
    return tree
