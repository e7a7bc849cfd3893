"""Named rewrites over sqlglot trees, one function each.

Engine rewrites fix what sqlglot's dialects would otherwise get wrong for us (see
notes/dialect-traps.md); client rewrites (named after the BI tool) normalise idioms.
"""

from __future__ import annotations

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

    return tree.transform(visit)


ENGINE_QUIRKS = {
    "spark": (spark_exact_percentile,),
    "databricks": (spark_exact_percentile,),
}


def for_engine(tree: exp.Expr, dialect: str) -> exp.Expr:
    """Apply the rewrites `dialect` needs, in order."""
    for rewrite in ENGINE_QUIRKS.get(dialect, ()):
        tree = rewrite(tree)
    return tree
