"""One model's aggregation at the query's grain: keys `_k<i>`, leaf aggregates `_m<j>`.

    SELECT <keys> AS _k<i>, <aggregates> AS _m<j>
    FROM base t0 LEFT JOIN <one-side models the dimensions need> WHERE <filters> GROUP BY <keys>

Time-aware leaves get their own shapes: a cumulative window joins each period to the rows
of its window, an offset shifts the time column by the offset, a semi-additive measure
keeps the rows at the last value of its non-additive dimension.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from semproxy.errors import FeatureNotSupported, GroupingError
from semproxy.plan.joins import Relation
from semproxy.plan.metrics import TO_GRAIN, Cumulative, Leaf, aggregate, measure_aggregate
from semproxy.plan.query import DimRef, SemanticQuery
from semproxy.plan.tables import ENTITY, METRIC_TIME, TIME, DimBinding, SchemaIndex
from semproxy.semantic.model import Dimension, Grain, NonAdditiveDimension


def _uses_metric_time(q: SemanticQuery) -> bool:
    trees = [t for t in (*q.keys, q.where) if t is not None]
    return any(isinstance(n, DimRef) and n.name == METRIC_TIME for t in trees for n in t.walk())


def sub_key(leaf: Leaf, index: SchemaIndex, q: SemanticQuery) -> tuple[str, str | None, object]:
    """Leaves computed together: same model, same time column for metric_time, same kind."""
    model = index.category.models[leaf.model]
    measure = model.measure(leaf.measure) if leaf.measure else None
    timed = _uses_metric_time(q) or leaf.cumulative or leaf.offset
    time_dim = model.agg_time_dimension(measure) if timed else None
    nad = measure.non_additive_dimension if measure else None
    semi = (nad.name, nad.window_choice, tuple(nad.window_groupings), leaf.measure) if nad else None
    special = (leaf.cumulative, leaf.offset, semi)
    return (leaf.model, time_dim, special if any(special) else None)


class ModelSub:
    """One model's aggregation at the query's grain: keys `_k<i>`, leaves `_m<j>`."""

    def __init__(self, q: SemanticQuery, index: SchemaIndex, key: tuple[str, str | None, object],
                 leaves: list[tuple[Leaf, str]]) -> None:  # fmt: skip
        self.q, self.index, self.leaves = q, index, leaves
        model_name, self.time_dim, self.special = key
        self.model = index.category.models[model_name]
        self.keys, self.where = q.keys, q.where
        self.metric = q.origins.get(leaves[0][1], model_name) if leaves else model_name
        self.shift = leaves[0][0].offset if leaves else None

    def relation(self) -> Relation:
        return Relation(self.index.category, self.model, self.index.targets[self.model.name])

    def build(self) -> exp.Select:
        first = self.leaves[0][0] if self.leaves else None
        measure = self.model.measure(first.measure) if first and first.measure else None
        if first is not None and first.cumulative is not None:
            return cumulative_sub(self, first.cumulative)
        if measure is not None and measure.non_additive_dimension is not None:
            return semi_additive_sub(self, measure.non_additive_dimension)
        if self.shift and not any(self.is_time(k) for k in self.keys):
            raise FeatureNotSupported(f'metric "{self.metric}" compares periods: group by metric_time')
        return self.plain()

    def plain(self) -> exp.Select:
        rel = self.relation()
        keys = [self.render(k, rel) for k in self.keys]
        sub = exp.select(*(k.as_(f"_k{i}", copy=False) for i, k in enumerate(keys)))
        for leaf, alias in self.leaves:
            sub = sub.select(self.leaf_sql(leaf, rel).as_(alias, copy=False), copy=False)
        where = self.render(self.where, rel) if self.where is not None else None
        sub = select_from(sub, rel)  # after rendering: rendering adds the joins it needs
        if where is not None:
            sub = sub.where(where, copy=False)
        return sub.group_by(*(k.copy() for k in keys), copy=False) if keys else sub

    def is_time(self, tree: exp.Expr) -> bool:
        """Whether `tree` names this model's time: metric_time, or its agg time dimension."""
        for n in tree.walk():
            if isinstance(n, DimRef):
                target = self._binding(n).target
                if target[0] == TIME or target == (self.model.name, self.time_dim):
                    return True
        return False

    def time_column(self, rel: Relation, at: int | None = None) -> exp.Expr:
        dim = self.model.dimension(self.time_dim) if self.time_dim else None
        if dim is None:
            raise GroupingError(
                f'metric "{self.metric}" has no agg_time_dimension, so it has no metric_time', position=at
            )
        return rel.own(dim.sql)

    def _binding(self, ref: DimRef) -> DimBinding:
        model = ref.args.get("model")
        return (self.index.scopes[model].dims if model else self.q.bindings)[ref.name]

    def render(self, tree: exp.Expr, rel: Relation) -> exp.Expr:
        def visit(n: exp.Expr) -> exp.Expr:
            return self._dimension(n, rel) if isinstance(n, DimRef) else n

        return tree.transform(visit)

    def leaf_sql(self, leaf: Leaf, rel: Relation) -> exp.Expr:
        when = exp.and_(*(self.render(f, rel) for f in leaf.filters)) if leaf.filters else None
        if leaf.adhoc is not None:
            agg = self.render(leaf.adhoc, rel)
            agg = exp.Filter(this=agg, expression=exp.Where(this=when)) if when is not None else agg
            counts = isinstance(leaf.adhoc, exp.Sum) and leaf.adhoc.this.is_int
            # SUM(1) (Tableau's Number of Records) is a bigint in Postgres; engines give a
            # 128-bit integer or a decimal, which would reach the client as numeric
            return exp.cast(agg, exp.DataType.build("bigint")) if counts else agg
        if leaf.measure is None:
            return aggregate(
                None, exp.Literal.number(1) if when is not None else exp.Star(), when, None, False
            )
        measure = self.model.measure(leaf.measure)
        assert measure is not None
        return measure_aggregate(measure, rel.own(measure.sql), when)

    def _dimension(self, ref: DimRef, rel: Relation) -> exp.Expr:
        binding = self._binding(ref)
        owner, field = binding.target
        model, at = self.model, ref.meta.get("position")
        if owner == TIME or (self.shift and (owner, field) == (model.name, self.time_dim)):
            return shifted(self.time_column(rel, at), self.shift, model.dimension(self.time_dim or ""))
        if owner == ENTITY:
            entity = model.entity(field)
            if entity is None:
                raise GroupingError(f'metric "{self.metric}" cannot be grouped or filtered by "{binding.name}": '
                                    f"model {model.name} has no entity {field}", position=at)  # fmt: skip
            return rel.own(entity.sql)
        if owner == model.name:
            own = model.dimension(field) or model.entity(field)
            assert own is not None
            return rel.own(own.sql)
        named = self.index.reach[model.name].get(binding.name) if binding.path else None
        if named is not None and named.path == binding.path:
            return rel.own(named.field.sql, named.path)
        reach = rel.reach(binding.target)
        if reach is None:
            raise GroupingError(f'metric "{self.metric}" cannot be grouped or filtered by "{binding.name}": '
                                f"model {model.name} does not reach {owner}", position=at)  # fmt: skip
        return rel.own(reach.field.sql, reach.path)


# -- time-aware aggregations: offsets, cumulative windows, semi-additive measures --------
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
    if not offset or offset.startswith(TO_GRAIN):  # offset_to_grain: joined, not shifted
        return column
    moved: exp.Expr = exp.Add(this=column, expression=interval(offset))
    if dim is None or dim.granularity is not Grain.hour:
        moved = exp.cast(moved, exp.DataType.build("date"))
    return moved


def _grain(sub: ModelSub, key: exp.Expr) -> str:
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


def cumulative_sub(sub: ModelSub, cum: Cumulative) -> exp.Select:
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
    periods = exp.select(
        *(sub.render(k, prel).as_(f"_k{i}", copy=False) for i, k in enumerate(sub.keys))
    ).distinct()
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
    main = exp.select(*(k.as_(f"_k{i}", copy=False) for i, k in enumerate(keys)))
    for leaf, alias in sub.leaves:
        main = main.select(sub.leaf_sql(leaf, rel).as_(alias, copy=False), copy=False)
    main = select_from(main, rel).join(
        periods.subquery("p", copy=False), on=exp.and_(*conds), join_type="INNER", copy=False
    )
    rows_filter = [c for c in _conjuncts(sub.where) if not sub.is_time(c)]
    if rows_filter:
        main = main.where(*(sub.render(c, rel) for c in rows_filter), copy=False)
    return main.group_by(*(k.copy() for k in keys), copy=False)


def semi_additive_sub(sub: ModelSub, nad: NonAdditiveDimension) -> exp.Select:
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
    inner = exp.select(
        *(k.as_(f"_k{i}", copy=False) for i, k in enumerate(keys)),
        at.as_("_at", copy=False),
        edge.as_("_edge", copy=False),
    )
    outer = exp.select(*(exp.column(f"_k{i}") for i in range(len(keys))))
    for j, (leaf, alias) in enumerate(sub.leaves):
        measure = sub.model.measure(leaf.measure or "")
        assert measure is not None
        inner = inner.select(rel.own(measure.sql).as_(f"_v{j}", copy=False), copy=False)
        when = None
        if leaf.filters:
            inner = inner.select(
                exp.and_(*(sub.render(f, rel) for f in leaf.filters)).as_(f"_w{j}", copy=False), copy=False
            )
            when = exp.column(f"_w{j}")
        outer = outer.select(
            measure_aggregate(measure, exp.column(f"_v{j}"), when).as_(alias, copy=False), copy=False
        )
    inner = select_from(inner, rel)
    if sub.where is not None:
        inner = inner.where(sub.render(sub.where, rel), copy=False)
    outer = outer.from_(inner.subquery("s", copy=False), copy=False).where(
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
