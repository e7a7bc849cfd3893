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

import sqlglot
from sqlglot import exp

from semproxy.errors import FeatureNotSupported, UndefinedColumn
from semproxy.semantic.model import (
    Agg,
    Grain,
    Measure,
    MetricInput,
    MetricType,
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
    offset: str | None = None  # offset_window of a derived input ('1 month'), or TO_GRAIN + grain
    adhoc: exp.Expr | None = None  # an aggregate over dimensions: MAX(order_date)


TO_GRAIN = "to "  # Leaf.offset of an offset_to_grain input: 'to month'


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
    return any(i.offset_window or i.offset_to_grain or needs_time(category, i.name) for i in inputs)


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
        shift = i.offset_window or (TO_GRAIN + i.offset_to_grain.value if i.offset_to_grain else None)
        if (i.offset_window and i.offset_to_grain) or (shift and offset):
            raise FeatureNotSupported(
                f'input "{i.ref}": an offset inside another offset (or offset_window with offset_to_grain)'
                " is not supported"
            )
        return exp.paren(self.metric(i.name, own, shift or offset, depth + 1), copy=False)

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
