"""One compiler per metric type: a metric becomes a formula over leaf aggregations.

A *leaf* is one aggregation of one measure over one model's rows, maybe filtered
(`SUM(CASE WHEN status = 'completed' THEN amount END)`). Leaves are computed per model at
the query's grain; a metric is a formula over them, evaluated after the per-model results
are joined on the grain, so ratios and derived metrics are computed from their parts:

    simple      leaf
    ratio       CAST(num AS DOUBLE) / NULLIF(den, 0)
    derived     the expression with each input replaced by its own formula
    cumulative  a leaf whose rows are the window of time ending at each period
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlglot
from sqlglot import exp

from semproxy.errors import FeatureNotSupported, UndefinedColumn
from semproxy.plan.joins import Relation
from semproxy.semantic.model import (
    Agg,
    Dimension,
    Grain,
    Measure,
    MetricInput,
    MetricType,
    NonAdditiveDimension,
    SemanticModel,
)
from semproxy.semantic.registry import Category

DOUBLE = exp.DataType.build("double")
PLAIN_AGGS = {
    Agg.sum: {"sum"},
    Agg.sum_boolean: {"sum"},
    Agg.count: {"sum", "count"},
    Agg.min: {"min"},
    Agg.max: {"max"},
}
ANY_AGGS = {"sum", "min", "max", "avg", "any_value"}
OWN_AGG = {Agg.count_distinct: "count_distinct", Agg.avg: "avg"}

# resolves a filter's SQL text, written against a model's columns, into a tree of DimRefs
FilterResolver = Callable[[str, SemanticModel], exp.Expr]


@dataclass(frozen=True)
class Cumulative:
    window: str | None  # '7 days'
    grain_to_date: Grain | None


@dataclass(frozen=True)
class Leaf:
    """One aggregation over one model's rows. Hashable: equal leaves are computed once."""

    model: str
    measure: str | None  # None: COUNT(*) of the model's rows, or `adhoc`
    filters: tuple[exp.Expr, ...] = ()
    cumulative: Cumulative | None = None
    offset: str | None = None  # offset_window of a derived input: '1 month'
    adhoc: exp.Expr | None = None  # an aggregate over dimensions: MAX(order_date)


def metric_names(model: SemanticModel) -> list[str]:
    """The metrics a model defines: its measures (implicit simple metrics), then its metrics."""
    return list(dict.fromkeys([m.name for m in model.measures] + [m.name for m in model.metrics]))


def leaf_models(category: Category, name: str) -> set[str]:
    """The models whose rows metric `name` aggregates."""
    owner = category.metric_owner(name)
    if owner is None:
        return set()
    model, metric = owner
    if metric is None or metric.type in (MetricType.simple, MetricType.cumulative):
        measure = metric.type_params.measure if metric else name
        found = _measure_model(category, model, measure or name)
        return {found.name} if found else set()
    return set().union(*(leaf_models(category, i.name) for i in _inputs(metric.type, metric.type_params)))


def needs_time(category: Category, name: str) -> bool:
    """Whether metric `name` only has a value at a grain with metric_time (windows, offsets)."""
    owner = category.metric_owner(name)
    if owner is None or owner[1] is None:
        return False
    metric = owner[1]
    params = metric.type_params
    if metric.type is MetricType.cumulative:
        return bool(params.window or params.grain_to_date)
    if metric.type is MetricType.simple:
        return False
    inputs = _inputs(metric.type, params)
    return any(i.offset_window or needs_time(category, i.name) for i in inputs)


def allowed_aggregates(category: Category, name: str) -> set[str]:
    """Which client aggregates around metric column `name` mean the metric itself."""
    owner = category.metric_owner(name)
    assert owner is not None
    model, metric = owner
    plain = metric is None or (metric.type is MetricType.simple and not metric.filter)
    measure_name = name if metric is None else metric.type_params.measure
    measure = model.measure(measure_name) if measure_name else None
    if plain and measure is not None and measure.agg in PLAIN_AGGS:
        return PLAIN_AGGS[measure.agg]
    own = OWN_AGG.get(measure.agg) if (plain and measure is not None) else None
    return ANY_AGGS | ({own} if own else set())


def _measure_model(category: Category, model: SemanticModel, measure: str) -> SemanticModel | None:
    if model.measure(measure) is not None:
        return model
    return next((m for m in category.models.values() if m.measure(measure) is not None), None)


def _inputs(kind: MetricType, params: object) -> list[MetricInput]:
    from semproxy.semantic.model import MetricTypeParams

    assert isinstance(params, MetricTypeParams)
    if kind is MetricType.ratio:
        return [
            p if isinstance(p, MetricInput) else MetricInput(name=str(p))
            for p in (params.numerator, params.denominator)
        ]
    return params.inputs()


class Expander:
    """Expands metric names into formulas, collecting the leaves they need."""

    def __init__(self, category: Category, resolve_filter: FilterResolver) -> None:
        self.category = category
        self.resolve_filter = resolve_filter
        self.leaves: dict[Leaf, str] = {}

    def leaf(self, leaf: Leaf) -> exp.Column:
        alias = self.leaves.setdefault(leaf, f"_m{len(self.leaves)}")
        return exp.column(alias)

    def metric(
        self, name: str, filters: tuple[exp.Expr, ...] = (), offset: str | None = None, depth: int = 0
    ) -> exp.Expr:
        if depth > 20:
            raise FeatureNotSupported(f'metric "{name}" is defined in terms of itself')
        owner = self.category.metric_owner(name)
        if owner is None:
            raise UndefinedColumn(f'metric "{name}" does not exist')
        model, metric = owner
        if metric is None:
            return self._measure(model, name, filters, offset, None)
        own = (*filters, self.resolve_filter(metric.filter, model)) if metric.filter else filters
        params = metric.type_params
        if metric.type is MetricType.simple:
            return self._measure(model, params.measure or name, own, offset, None)
        if metric.type is MetricType.cumulative:
            window = Cumulative(params.window, params.grain_to_date)
            return self._measure(model, params.measure or name, own, offset, window)
        inputs = _inputs(metric.type, params)
        formulas = {i.ref: self._input(i, model, own, offset, depth) for i in inputs}
        if metric.type is MetricType.ratio:
            num, den = (formulas[i.ref] for i in inputs)
            return exp.Div(
                this=exp.cast(num, DOUBLE), expression=exp.func("NULLIF", den, exp.Literal.number(0))
            )
        tree = sqlglot.parse_one(params.expr or "", read="postgres")
        return exp.paren(_float_division(_substitute(tree, formulas, name)), copy=False)

    def _input(
        self,
        i: MetricInput,
        model: SemanticModel,
        filters: tuple[exp.Expr, ...],
        offset: str | None,
        depth: int,
    ) -> exp.Expr:
        own = (*filters, self.resolve_filter(i.filter, model)) if i.filter else filters
        if i.offset_window and offset:
            raise FeatureNotSupported("an offset_window inside another offset_window is not supported")
        return exp.paren(self.metric(i.name, own, i.offset_window or offset, depth + 1), copy=False)

    def _measure(
        self,
        model: SemanticModel,
        measure: str,
        filters: tuple[exp.Expr, ...],
        offset: str | None,
        cumulative: Cumulative | None,
    ) -> exp.Expr:
        found = _measure_model(self.category, model, measure)
        if found is None:
            raise UndefinedColumn(f'measure "{measure}" does not exist in any model of {self.category.name}')
        return self.leaf(Leaf(found.name, measure, filters, cumulative, offset))


def _substitute(tree: exp.Expr, formulas: dict[str, exp.Expr], metric: str) -> exp.Expr:
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            if node.name not in formulas:
                raise UndefinedColumn(
                    f'derived metric "{metric}" names "{node.name}", which is not one of its inputs'
                )
            return formulas[node.name].copy()
        return node

    return tree.transform(swap, copy=False)


def _float_division(tree: exp.Expr) -> exp.Expr:
    """`a / b` divides as numbers on every engine (never integer division)."""
    for div in list(tree.find_all(exp.Div)):
        div.set("this", exp.cast(div.this, DOUBLE))
    return tree


def aggregate(
    measure_agg: Agg | None,
    value: exp.Expr,
    when: exp.Expr | None,
    percentile: float | None,
    discrete: bool,
) -> exp.Expr:
    """The aggregate of one measure; `when` keeps only the rows of a metric's filter."""
    if measure_agg is Agg.sum_boolean:
        value = exp.Case(ifs=[exp.If(this=value, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    if when is not None:
        value = exp.Case(ifs=[exp.If(this=when, true=value)])
    match measure_agg:
        case None | Agg.count:
            return exp.Count(this=value)
        case Agg.sum | Agg.sum_boolean:
            return exp.Sum(this=value)
        case Agg.count_distinct:
            return exp.Count(this=exp.Distinct(expressions=[value]))
        case Agg.avg:
            return exp.Avg(this=exp.cast(value, DOUBLE))
        case Agg.min:
            return exp.Min(this=value)
        case Agg.max:
            return exp.Max(this=value)
        case Agg.median | Agg.percentile:
            func = exp.PercentileDisc if discrete else exp.PercentileCont
            p = 0.5 if percentile is None else percentile
            order = exp.Order(expressions=[exp.Ordered(this=exp.cast(value, DOUBLE), nulls_first=False)])
            result: exp.Expr = exp.WithinGroup(this=func(this=exp.Literal.number(p)), expression=order)
            return exp.cast(result, DOUBLE) if discrete else result
    raise FeatureNotSupported(f"aggregation {measure_agg} is not supported")


def measure_aggregate(measure: Measure, value: exp.Expr, when: exp.Expr | None) -> exp.Expr:
    params = measure.agg_params
    percentile = params.percentile if params else None
    return aggregate(measure.agg, value, when, percentile, bool(params and params.use_discrete_percentile))


# -- time-aware leaves: offsets, cumulative windows, semi-additive measures ---------------
class ModelAggregation(Protocol):
    """What the time-aware compilers need of one model's aggregation (compile.ModelSub)."""

    model: SemanticModel
    keys: list[exp.Expr]
    where: exp.Expr | None
    leaves: list[tuple[Leaf, str]]
    metric: str
    time_dim: str | None

    def relation(self) -> Relation: ...
    def render(self, tree: exp.Expr, rel: Relation) -> exp.Expr: ...
    def is_time(self, tree: exp.Expr) -> bool: ...
    def time_column(self, rel: Relation) -> exp.Expr: ...
    def leaf_sql(self, leaf: Leaf, rel: Relation) -> exp.Expr: ...
    def plain(self) -> exp.Select: ...


def interval(text: str) -> exp.Interval:
    """'7 days' / '1 month' -> INTERVAL '7' DAY."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit():
        raise FeatureNotSupported(f'cannot read the time window "{text}" (write e.g. "7 days")')
    unit = parts[1].lower().rstrip("s")
    if unit not in GRAIN_UNITS:
        raise FeatureNotSupported(f'unknown time unit in "{text}"')
    return exp.Interval(this=exp.Literal.string(parts[0]), unit=exp.var(unit.upper()))


GRAIN_UNITS = {"hour", "day", "week", "month", "quarter", "year"}


def shifted(column: exp.Expr, offset: str | None, dim: Dimension | None) -> exp.Expr:
    """A time column moved forward by `offset`, so a row counts in the period it is compared
    with (revenue of January is `revenue_last_month` of February); dates stay dates."""
    if not offset:
        return column
    moved: exp.Expr = exp.Add(this=column, expression=interval(offset))
    if dim is None or dim.granularity is not Grain.hour:
        moved = exp.cast(moved, exp.DataType.build("date"))
    return moved


def _grain(sub: ModelAggregation, key: exp.Expr) -> str:
    if isinstance(key, exp.TimestampTrunc | exp.DateTrunc) and key.args.get("unit") is not None:
        return key.args["unit"].name.lower()
    dim = sub.model.dimension(sub.time_dim or "")
    if key.find(exp.Extract) is None and dim is not None and dim.granularity is not None:
        return dim.granularity.value
    raise FeatureNotSupported(
        f'cumulative metric "{sub.metric}" needs metric_time or DATE_TRUNC of it as a key'
    )


def _conjuncts(tree: exp.Expr | None) -> list[exp.Expr]:
    return list(tree.flatten()) if isinstance(tree, exp.And) else ([tree] if tree is not None else [])


def cumulative_sub(sub: ModelAggregation, cum: Cumulative) -> exp.Select:
    """Each period's value aggregates the rows of the window ending with the period:
    `window` (7 days), `grain_to_date` (month to date), or all time before its end."""
    time_keys = [i for i, k in enumerate(sub.keys) if sub.is_time(k)]
    if not time_keys:
        if cum.window or cum.grain_to_date:
            raise FeatureNotSupported(f'cumulative metric "{sub.metric}" needs metric_time in GROUP BY')
        return sub.plain()
    if len(time_keys) > 1:
        raise FeatureNotSupported(f'cumulative metric "{sub.metric}" needs exactly one time key')
    j = time_keys[0]
    grain = _grain(sub, sub.keys[j])
    prel = sub.relation()
    periods = exp.select(*(sub.render(k, prel).as_(f"_k{i}") for i, k in enumerate(sub.keys))).distinct()
    periods = select_from(periods, prel)
    if sub.where is not None:
        periods = periods.where(sub.render(sub.where, prel), copy=False)
    rel = sub.relation()
    t = sub.time_column(rel)
    start = exp.column(f"_k{j}", "p")
    end = exp.Add(this=start.copy(), expression=interval(f"1 {grain}"))
    conds: list[exp.Expr] = [
        exp.NullSafeEQ(this=exp.column(f"_k{i}", "p"), expression=sub.render(k, rel))
        for i, k in enumerate(sub.keys)
        if i != j
    ]
    conds.append(exp.LT(this=t.copy(), expression=end))
    if cum.window:
        conds.append(
            exp.GTE(this=t.copy(), expression=exp.Sub(this=end.copy(), expression=interval(cum.window)))
        )
    if cum.grain_to_date:
        last = exp.Sub(this=end.copy(), expression=interval("1 hour" if grain == "hour" else "1 day"))
        lower = exp.TimestampTrunc(this=last, unit=exp.var(cum.grain_to_date.value.upper()))
        conds.append(exp.GTE(this=t.copy(), expression=lower))
    keys = [exp.column(f"_k{i}", "p") for i in range(len(sub.keys))]
    main = exp.select(*(k.as_(f"_k{i}") for i, k in enumerate(keys)))
    for leaf, alias in sub.leaves:
        main = main.select(sub.leaf_sql(leaf, rel).as_(alias), copy=False)
    main = select_from(main, rel).join(
        periods.subquery("p"), on=exp.and_(*conds), join_type="INNER", copy=False
    )
    rows_filter = [c for c in _conjuncts(sub.where) if not sub.is_time(c)]
    if rows_filter:
        main = main.where(*(sub.render(c, rel) for c in rows_filter), copy=False)
    return main.group_by(*(k.copy() for k in keys), copy=False)


def semi_additive_sub(sub: ModelAggregation, nad: NonAdditiveDimension) -> exp.Select:
    """A semi-additive measure (a balance) takes only the rows at the last (or first) value
    of its non-additive dimension within each group, then aggregates those."""
    rel = sub.relation()
    keys = [sub.render(k, rel) for k in sub.keys]
    dim = sub.model.dimension(nad.name)
    if dim is None:
        raise FeatureNotSupported(f'non_additive_dimension "{nad.name}" is no dimension of {sub.model.name}')
    at = rel.own(dim.sql)
    groupings = [
        rel.own((sub.model.entity(g) or sub.model.dimension(g) or _missing(g)).sql)
        for g in nad.window_groupings
    ]
    edge_func = exp.Max if nad.window_choice == "max" else exp.Min
    edge = exp.Window(this=edge_func(this=at.copy()), partition_by=[k.copy() for k in keys] + groupings)
    inner = exp.select(*(k.as_(f"_k{i}") for i, k in enumerate(keys)), at.as_("_at"), edge.as_("_edge"))
    outer = exp.select(*(exp.column(f"_k{i}") for i in range(len(keys))))
    for j, (leaf, alias) in enumerate(sub.leaves):
        measure = sub.model.measure(leaf.measure or "")
        assert measure is not None
        inner = inner.select(rel.own(measure.sql).as_(f"_v{j}"), copy=False)
        when = None
        if leaf.filters:
            inner = inner.select(
                exp.and_(*(sub.render(f, rel) for f in leaf.filters)).as_(f"_w{j}"), copy=False
            )
            when = exp.column(f"_w{j}")
        outer = outer.select(measure_aggregate(measure, exp.column(f"_v{j}"), when).as_(alias), copy=False)
    inner = select_from(inner, rel)
    if sub.where is not None:
        inner = inner.where(sub.render(sub.where, rel), copy=False)
    outer = outer.from_(inner.subquery("s"), copy=False).where(
        exp.EQ(this=exp.column("_at"), expression=exp.column("_edge")), copy=False
    )
    return outer.group_by(*(exp.column(f"_k{i}") for i in range(len(keys))), copy=False) if keys else outer


def _missing(name: str) -> Any:
    raise FeatureNotSupported(f'window grouping "{name}" is no entity or dimension of the model')


def select_from(select: exp.Select, rel: Relation) -> exp.Select:
    base, joins = rel.from_()
    select = select.from_(base, copy=False)
    for join in joins:
        select.append("joins", join.copy())
    return select
