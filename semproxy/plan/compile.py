"""A metric query -> warehouse SQL (a sqlglot tree), with a plan cache.

The plan has two levels, so that nothing is double counted and ratios come from parts:

    per model   SELECT <keys> AS _k<i>, <leaf aggregates> AS _m<j>
                FROM base t0 LEFT JOIN one-side models ... WHERE <filters> GROUP BY <keys>
    combined    the per-model results joined on the keys (the union of their key sets,
                then LEFT JOIN each on IS NOT DISTINCT FROM: full outer join semantics that
                every engine accepts), with the metric formulas, HAVING, ORDER BY, LIMIT.

A metric-table query nested in other SQL (subquery, CTE, UNION, IN) is compiled where it
stands; the SQL around it is kept and only re-dialected.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from semproxy.errors import FeatureNotSupported
from semproxy.plan.aggregate import ModelSub, sub_key
from semproxy.plan.cache import SLOT, CompiledQuery, Plan, plan_cache, remember, slot_literals
from semproxy.plan.metrics import TO_GRAIN, Leaf
from semproxy.plan.query import COMPILED, KEYS, Resolver, SemanticQuery
from semproxy.plan.tables import SchemaIndex, metric_table
from semproxy.semantic.registry import Registry
from semproxy.sql import quirks
from semproxy.sql.parse import Masked, mask_literals, output_name, parse_statement

__all__ = ["CompiledQuery", "compile_query", "compile_select", "compile_tree", "output_columns"]
GRAIN = "grain"


def compile_query(
    text: str | exp.Expr,
    registry: Registry,
    search_path: Sequence[str] = ("production",),
    dialect: str = "duckdb",
) -> CompiledQuery:
    """Compile one statement on metric tables into `dialect` SQL.

    Cached per Registry (see plan/cache.py): the same text is a dict lookup; the same
    shape with other literal values reuses the plan and only prints the values."""
    cache = plan_cache(registry)
    path = tuple(search_path)
    if not isinstance(text, str):
        return _compile_bound(text, registry, path, dialect)
    hit = cache.texts.get((text, path, dialect))
    if hit is not None:
        cache.texts.move_to_end((text, path, dialect))
        return hit
    masked = mask_literals(text)
    result = _from_shape(masked, registry, path, dialect) if masked is not None else None
    if result is None:
        result = _compile_text(text, masked, registry, path, dialect)
    remember(cache.texts, (text, path, dialect), result)
    return result


def _from_shape(
    masked: Masked, registry: Registry, path: tuple[str, ...], dialect: str
) -> CompiledQuery | None:
    cache = plan_cache(registry)
    shape = (masked.key, path, dialect)
    fixed = cache.fixed.get(shape)
    if fixed is None:
        return None
    plan = cache.plans.get((shape, tuple(masked.literals[i].value for i in fixed)))
    if plan is None:
        return None
    values = {
        i: exp.Literal(this=lit.value, is_string=lit.is_string)
        for i, lit in enumerate(masked.literals)
        if i not in fixed
    }
    return plan.fill(values)


def _compile_text(
    text: str, masked: Masked | None, registry: Registry, path: tuple[str, ...], dialect: str
) -> CompiledQuery:
    """Parse, plan and generate; remember the plan under the text's shape when the masked
    literals the plan does not depend on are all found in the tree where the mask saw them."""
    tree = parse_statement(text)
    if tree is None:
        raise FeatureNotSupported("this statement could not be parsed as a query on metric tables")
    found = masked.literals if masked is not None else ()
    slots = {lit.meta.get("start"): lit for lit in slot_literals(tree)}
    values: dict[int, exp.Expr] = {}
    for i, lit in enumerate(found):
        node = slots.get(lit.start)
        if node is not None and node.is_string == lit.is_string and node.this == lit.value:
            node.replace(exp.Placeholder(this=f"{SLOT}{i}"))
            values[i] = node
    plan, result = Plan.compile(*compile_tree(tree, registry, path, dialect), dialect, values)
    if masked is not None:
        cache = plan_cache(registry)
        shape = (masked.key, path, dialect)
        fixed = tuple(i for i in range(len(found)) if i not in values)
        remember(cache.fixed, shape, fixed)
        remember(cache.plans, (shape, tuple(found[i].value for i in fixed)), plan)
    return result


def _compile_bound(tree: exp.Expr, registry: Registry, path: tuple[str, ...], dialect: str) -> CompiledQuery:
    """A tree (the extended protocol's, with its parameters bound): plans by its shape."""
    shape = tree.copy()
    values: dict[int, exp.Expr] = {}
    for i, lit in enumerate(slot_literals(shape)):
        lit.replace(exp.Placeholder(this=f"{SLOT}{i}"))
        values[i] = lit
    cache = plan_cache(registry).trees
    plan = cache.get((shape, path, dialect))
    if plan is not None:
        return plan.fill(values)
    plan, result = Plan.compile(*compile_tree(shape.copy(), registry, path, dialect), dialect, values)
    remember(cache, (shape, path, dialect), plan)
    return result


# -- compiling ----------------------------------------------------------------------------
def compile_tree(
    tree: exp.Expr, registry: Registry, path: tuple[str, ...], dialect: str
) -> tuple[exp.Expr, tuple[str, ...]]:
    out: exp.Expr
    if isinstance(tree, exp.Select) and metric_table(tree, registry, path) is not None:
        out, columns = compile_select(tree, registry, path)
    else:
        out, columns = _compile_nested(tree, registry, path)
    return quirks.for_engine(out, dialect), columns


def _compile_nested(
    tree: exp.Expr, registry: Registry, path: tuple[str, ...]
) -> tuple[exp.Expr, tuple[str, ...]]:
    """Compile each SELECT on a metric table where it stands; keep the SQL around it."""
    out = quirks.merge_views(tree.copy(), lambda s: _is_view(s, registry, path))
    if isinstance(out, exp.Select) and metric_table(out, registry, path) is not None:
        return compile_select(out, registry, path)
    inner = [s for s in out.find_all(exp.Select) if metric_table(s, registry, path) is not None]
    if not inner:
        raise FeatureNotSupported("this statement names no metric table")
    for select in inner:
        compiled, _ = compile_select(select, registry, path)
        select.replace(compiled)
    return out, output_columns(out)


def _is_view(select: exp.Select, registry: Registry, path: tuple[str, ...]) -> bool:
    """An ungrouped selection of a metric table's columns (no aggregate, LIMIT, ORDER...)."""
    if metric_table(select, registry, path) is None:
        return False
    clauses = ("group", "having", "limit", "offset", "order", "distinct", "with_")
    if any(select.args.get(k) is not None for k in clauses):
        return False
    return not any(isinstance(n, exp.AggFunc) or (isinstance(n, exp.Anonymous) and n.name.upper() == "MEASURE")
                   for n in select.walk())  # fmt: skip


def output_columns(tree: exp.Expr) -> tuple[str, ...]:
    """The names of a statement's result columns, as Postgres names them (`*` expanded)."""
    if isinstance(tree, exp.SetOperation):
        return output_columns(tree.this)
    if isinstance(tree, exp.Subquery):
        return output_columns(tree.this)
    if not isinstance(tree, exp.Select):
        return ()
    names: list[str] = []
    for item in tree.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            names += _star_columns(tree, item)
        else:
            names.append(output_name(item))
    return tuple(names)


def _star_columns(select: exp.Select, star: exp.Expr) -> list[str]:
    sources = [select.args["from_"].this] if select.args.get("from_") else []
    sources += [j.this for j in select.args.get("joins") or []]
    qualifier = star.table if isinstance(star, exp.Column) else ""
    ctes = {c.alias_or_name: c.this for w in _withs(select) for c in w.expressions}
    names: list[str] = []
    for src in sources:
        if qualifier and src.alias_or_name != qualifier:
            continue
        query = (
            src.this
            if isinstance(src, exp.Subquery)
            else ctes.get(src.name)
            if isinstance(src, exp.Table)
            else None
        )
        names += list(output_columns(query)) if query is not None else ["?column?"]
    return names


def _withs(node: exp.Expr) -> list[exp.With]:
    found = []
    while node is not None:
        if node.args.get("with_") is not None:
            found.append(node.args["with_"])
        node = node.parent  # type: ignore[assignment]
    return found


def compile_select(
    select: exp.Select, registry: Registry, path: tuple[str, ...]
) -> tuple[exp.Select, tuple[str, ...]]:
    """One SELECT whose FROM is one metric table -> the two-level plan."""
    found = metric_table(select, registry, path)
    assert found is not None
    index, scope, qualifiers = found
    _compile_inner(select, registry, path)
    query = Resolver(select, scope, index, qualifiers).resolve()
    return _assemble(query, index), tuple(name for _, name in query.outputs)


def _compile_inner(select: exp.Select, registry: Registry, path: tuple[str, ...]) -> None:
    """Metric queries inside a metric query's clauses (`WHERE customer IN (SELECT customer
    FROM orders GROUP BY 1 HAVING ...)`) compile where they stand, before the outer one."""
    while True:
        inner = next(
            (
                n
                for n in select.walk(prune=lambda n: bool(n.meta.get(COMPILED)))
                if isinstance(n, exp.Select)
                and n is not select
                and not n.meta.get(COMPILED)
                and metric_table(n, registry, path) is not None
            ),
            None,
        )
        if inner is None:
            return
        compiled, _ = compile_select(inner, registry, path)
        compiled.meta[COMPILED] = True
        inner.replace(compiled)


def _assemble(q: SemanticQuery, index: SchemaIndex) -> exp.Select:
    groups: dict[tuple[str, str | None, object], list[tuple[Leaf, str]]] = {}
    for leaf, alias in q.leaves.items():
        groups.setdefault(sub_key(leaf, index, q), []).append((leaf, alias))
    if not groups:
        if q.scope.model is None:
            raise FeatureNotSupported("a query on the metrics table needs at least one metric")
        groups[(q.scope.model.name, None, None)] = []
    models = [ModelSub(q, index, key, leaves) for key, leaves in groups.items()]
    subs = [m.build() for m in models]
    # a period-over-period input adds no periods of its own (no row for the month after the last)
    offset = [isinstance(k[2], tuple) and k[2][1] is not None for k in groups]
    grain_subs = [i for i, o in enumerate(offset) if not o] or list(range(len(subs)))
    # an offset_to_grain input is read at the start of each period's grain: its time keys
    # join the grain's truncated to that grain
    truncs = [
        {i: m.shift[len(TO_GRAIN) :] for i, k in enumerate(q.keys) if m.is_time(k)}
        if m.shift and m.shift.startswith(TO_GRAIN)
        else {}
        for m in models
    ]
    outer = exp.Select()
    if len(subs) == 1:
        outer = outer.from_(subs[0].subquery("q0", copy=False), copy=False)
        grain = "q0"
    else:
        grain = GRAIN
        outer = _combine(outer, subs, len(q.keys), grain_subs, truncs)
    outer = outer.select(
        *(_keys_in(e, grain).as_(n, quoted=True, copy=False) for e, n in q.outputs), copy=False
    )
    if q.having is not None:
        outer = outer.where(_keys_in(q.having, grain), copy=False)
    if q.order:
        outer = outer.order_by(*(_keys_in(o, grain) for o in q.order), copy=False)
    if q.distinct:
        outer = outer.distinct(copy=False)
    for arg in ("limit", "offset"):
        if getattr(q, arg) is not None:
            outer.set(arg, getattr(q, arg).copy())
    return outer


def _combine(
    outer: exp.Select, subs: list[exp.Select], nkeys: int, grain_subs: list[int], truncs: list[dict[int, str]]
) -> exp.Select:
    names = [f"q{i}" for i in range(len(subs))]
    if nkeys == 0:
        outer = outer.from_(subs[0].subquery(names[0], copy=False), copy=False)
        for sub, name in zip(subs[1:], names[1:], strict=True):
            outer = outer.join(sub.subquery(name, copy=False), join_type="CROSS", copy=False)
        return outer
    keys = [exp.column(f"_k{i}") for i in range(nkeys)]
    union: exp.Query = exp.select(*keys).from_(exp.to_identifier(names[grain_subs[0]]))
    for i in grain_subs[1:]:
        union = exp.union(union, exp.select(*keys).from_(exp.to_identifier(names[i])), distinct=True)
    ctes = [
        exp.CTE(this=sub, alias=exp.TableAlias(this=exp.to_identifier(n)))
        for sub, n in zip(subs, names, strict=True)
    ]
    outer.set("with_", exp.With(expressions=ctes))
    outer = outer.from_(
        exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier(GRAIN))), copy=False
    )
    for name, trunc in zip(names, truncs, strict=True):
        on = exp.and_(*(exp.NullSafeEQ(this=_grain_key(i, trunc), expression=exp.column(f"_k{i}", name))
                        for i in range(nkeys)))  # fmt: skip
        outer = outer.join(exp.to_table(name), on=on, join_type="LEFT", copy=False)
    return outer


def _grain_key(i: int, trunc: dict[int, str]) -> exp.Expr:
    key = exp.column(f"_k{i}", GRAIN)
    return exp.TimestampTrunc(this=key, unit=exp.var(trunc[i].upper())) if i in trunc else key


def _keys_in(tree: exp.Expr, grain: str) -> exp.Expr:
    def visit(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and n.table == KEYS:
            return exp.column(n.name, grain)
        return n

    return tree.transform(visit, copy=False)
